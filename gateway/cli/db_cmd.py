"""`centralino db` (not built yet)."""

import click


@click.group(name="db")
def db() -> None:
    """Not built yet."""
