"""The gateway service: database, AMI and ARI links, and the HTTP app, started and stopped together."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

from gateway.ami.client import AMIClient
from gateway.ari.client import ARIClient
from gateway.db.engine import make_engine
from gateway.db.migrate import upgrade
from gateway.http.app import create_app
from gateway.settings import Settings

log = logging.getLogger(__name__)


class GatewayService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ami = AMIClient(settings)
        self.ari = ARIClient(settings)
        self.engine = None
        self._runner: web.AppRunner | None = None

    async def _db_ok(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def start(self) -> None:
        """Fatal errors here (wrong credentials, unreachable PBX) propagate to the caller."""
        await upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url, self.settings.database.echo)
        await self.ami.connect()
        await self.ari.connect()
        app = create_app({"ami": lambda: self.ami.connected, "ari": lambda: self.ari.connected,
                          "database": self._db_ok})
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        h = self.settings.http
        await web.TCPSite(self._runner, h.host, h.port).start()
        log.info("gateway listening on http://%s:%s", h.host, h.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        await self.ari.close()
        await self.ami.close()
        if self.engine:
            await self.engine.dispose()
