"""Run the Alembic migrations from code: the gateway upgrades its database on start.

Each domain (calls, CTI, quality) keeps its own migration branch off ``0001_base``; upgrading to
``heads`` applies them all, so domains can evolve without a single shared chain.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.db.engine import normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, target: str = "heads") -> None:
    command.upgrade(alembic_config(url), target)


async def upgrade(url: str, target: str = "heads") -> None:
    """Upgrade without blocking the event loop (Alembic's env runs its own loop in a thread)."""
    await asyncio.to_thread(upgrade_sync, url, target)
