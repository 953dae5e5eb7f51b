"""`centralino dialplan` (not built yet)."""

import click


@click.group(name="dialplan")
def dialplan() -> None:
    """Not built yet."""
