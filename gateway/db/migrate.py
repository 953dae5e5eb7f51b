"""Run the Alembic migrations from code: the gateway upgrades its database on start.

Each domain (calls, CTI, quality) keeps its own migration branch off ``0001_base``; upgrading to
``heads`` applies them all, so domains can evolve without a single shared chain.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from gateway.db.engine import normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, target: str = "heads") -> None:
    u = make_url(normalise_url(url))
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), target)


async def upgrade(url: str, target: str = "heads") -> None:
    """Upgrade without blocking the event loop (Alembic's env runs its own loop in a thread)."""
    await asyncio.to_thread(upgrade_sync, url, target)
