"""`centralino demo` (not built yet)."""

import click


@click.group(name="demo")
def demo() -> None:
    """Not built yet."""
