"""``python -m gateway.cli.entry`` runs the same CLI as the ``centralino`` script."""

from gateway.cli import main

if __name__ == "__main__":
    main()
