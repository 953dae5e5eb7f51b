"""Fixtures every test can use: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL runs on this machine (127.0.0.1:5432, trust auth). Each test that asks for ``db_url``
gets a database of its own (created and dropped here), so helpers and CI runs never share state.
Set ``CENTRALINO_TEST_PG`` to another server URL, or to ``off`` to run only SQLite (the run then
says so in its summary: PostgreSQL tests are *skipped*, never silently passed).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("CENTRALINO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_exec(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'centralino.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    if PG_ADMIN_URL == "off":
        pytest.skip("PostgreSQL disabled by CENTRALINO_TEST_PG=off")
    name = f"centralino_t_{uuid.uuid4().hex[:12]}"
    try:
        _pg_exec(f'CREATE DATABASE "{name}"')
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated-from-nothing database URL; the test runs once on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
