"""The gateway service: database, AMI and ARI links, and the HTTP app, started and stopped together."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from gateway.ami.client import AMIClient
from gateway.ari.client import ARIClient
from gateway.calls.store import CallStore
from gateway.calls.tracker import CallTracker
from gateway.db.engine import make_engine, make_sessionmaker
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
        self.store: CallStore | None = None
        self.tracker = CallTracker()
        self._finished: asyncio.Queue = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.ami.on_event(self._on_ami_event)
        self.ami.on_connected(self._resync)

    async def _resync(self) -> None:
        """After every (re)login: calls that ended while the link was down are closed once."""
        if self.store is None:  # first login happens before the store exists: nothing to resync
            return
        channels = await self.ami.action_list("CoreShowChannels")
        for call in self.tracker.resync({c.get("Uniqueid") for c in channels}):
            self._finished.put_nowait(call)

    def _on_ami_event(self, event) -> None:
        """Runs on the AMI reader: never blocks; finished calls go to the writer task."""
        for call in self.tracker.handle(event):
            self._finished.put_nowait(call)

    async def _write_calls(self) -> None:
        while True:
            call = await self._finished.get()
            try:
                await self.store.save(call)
            except Exception:
                log.exception("could not save call %s; retrying in 1 s", call.linkedid)
                await asyncio.sleep(1)
                self._finished.put_nowait(call)
            finally:
                self._finished.task_done()

    async def _db_ok(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def start(self) -> None:
        """Fatal errors here (wrong credentials, unreachable PBX) propagate to the caller."""
        await upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url, self.settings.database.echo)
        self.store = CallStore(make_sessionmaker(self.engine))
        self._writer = asyncio.create_task(self._write_calls(), name="call-writer")
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
        if self._writer:
            try:
                await asyncio.wait_for(self._finished.join(), 10)
            except TimeoutError:
                log.error("%d finished calls not saved at shutdown", self._finished.qsize())
            self._writer.cancel()
        if self.engine:
            await self.engine.dispose()
