"""`centralino db upgrade|current`: the database schema (the gateway also upgrades on start)."""

from __future__ import annotations

import click


@click.group(name="db")
def db() -> None:
    """Database schema: migrations for calls, IVR, CTI and quality."""


@db.command()
@click.pass_obj
def upgrade(settings) -> None:
    """Apply every pending migration (all domain branches) to the configured database."""
    from gateway.db.engine import make_url_safe
    from gateway.db.migrate import upgrade_sync

    try:
        upgrade_sync(settings.database_url)
    except Exception as exc:  # driver errors vary by backend; the message names the cause
        raise click.ClickException(f"migration failed on {make_url_safe(settings.database_url)}: "
                                   f"{exc}") from exc
    click.echo(f"database {make_url_safe(settings.database_url)} is up to date")


@db.command()
@click.pass_obj
def current(settings) -> None:
    """Print the applied revision of each branch."""
    import asyncio

    from sqlalchemy import text

    from gateway.db.engine import make_engine

    async def heads() -> list[str]:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                return [r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))]
        finally:
            await engine.dispose()

    try:
        for rev in sorted(asyncio.run(heads())):
            click.echo(rev)
    except Exception as exc:
        raise click.ClickException(f"cannot read the schema version: {exc}") from exc
