"""`centralino run` (not built yet)."""

import click


@click.group(name="run")
def run() -> None:
    """Not built yet."""
