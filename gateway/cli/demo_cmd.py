"""`centralino demo`: the end-to-end demo on the embedded defaults."""

import click


@click.command(name="demo")
def demo() -> None:
    """Run the demo (the end-to-end demo is not built yet: it needs the Asterisk sandbox)."""
    raise click.ClickException(
        "the end-to-end demo is not built yet (it needs the Asterisk sandbox and the IVR); "
        "try: centralino quality mos --codec pcmu --loss-pct 2 --delay-ms 150"
    )
