"""`centralino quality` (not built yet)."""

import click


@click.group(name="quality")
def quality() -> None:
    """Not built yet."""
