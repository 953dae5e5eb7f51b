"""`centralino customers` (not built yet)."""

import click


@click.group(name="customers")
def customers() -> None:
    """Not built yet."""
