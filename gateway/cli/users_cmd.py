"""`centralino users` (not built yet)."""

import click


@click.group(name="users")
def users() -> None:
    """Not built yet."""
