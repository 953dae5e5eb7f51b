"""Run one database job from the CLI: migrate, open the engine, run, dispose."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.settings import Settings

T = TypeVar("T")


def run_db(settings: Settings,
           job: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def main() -> T:
        await upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            return await job(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())
