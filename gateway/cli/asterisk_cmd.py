"""`centralino asterisk` (not built yet)."""

import click


@click.group(name="asterisk")
def asterisk() -> None:
    """Not built yet."""
