"""`centralino speech` (not built yet)."""

import click


@click.group(name="speech")
def speech() -> None:
    """Not built yet."""
