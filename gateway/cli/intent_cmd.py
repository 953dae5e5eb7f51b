"""`centralino intent` (not built yet)."""

import click


@click.group(name="intent")
def intent() -> None:
    """Not built yet."""
