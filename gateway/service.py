"""The gateway service: database, AMI and ARI links, components and the HTTP app, as one unit.

Start order: migrate the database, wire every component (``setup``), connect AMI and ARI, start
the components, then serve HTTP, so a request never reaches a half-started part. Stop runs in
reverse. Finished calls are written by one writer task (never on the AMI reader); after each
commit the :class:`~gateway.events.CallSaved` event goes out on the bus.

Nothing crosses Asterisk unrecorded. After every AMI login the live channels are read back:
calls whose channels vanished while the link was down are closed with their true end from
Asterisk's CEL trail (:mod:`gateway.calls.reconcile`), channels we never saw begin are adopted,
and calls that started and ended entirely while we were away (or the gateway was stopped) are
rebuilt from CEL, each exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.ami.client import AMIClient
from gateway.ari.client import ARIClient
from gateway.bus import Bus
from gateway.calls.cel import CelReader
from gateway.calls.reconcile import close_from_cel, record_from_cel
from gateway.calls.store import CallStore
from gateway.calls.tracker import CallTracker
from gateway.component import Component, GatewayContext, load_components
from gateway.components import COMPONENTS
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.events import CallSaved
from gateway.http.app import create_app
from gateway.settings import Settings

log = logging.getLogger(__name__)


class GatewayService:
    def __init__(self, settings: Settings, components: list[Component] | None = None) -> None:
        """``components`` defaults to every part listed in :mod:`gateway.components`."""
        self.settings = settings
        self.ami = AMIClient(settings)
        self.ari = ARIClient(settings)
        self.bus = Bus()
        self.engine = None
        self.store: CallStore | None = None
        self.ctx: GatewayContext | None = None
        self.tracker = CallTracker()
        self.components = components if components is not None else load_components(COMPONENTS)
        self._started: list[Component] = []
        self._finished: asyncio.Queue = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.cel = CelReader(settings.asterisk.cel_url) if settings.asterisk.cel_url else None
        self._link_lost_at: datetime | None = None
        self._first_login = True
        self.ami.on_event(self._on_ami_event)
        self.ami.on_connected(self._resync)
        self.ami.on_disconnected(self._on_link_lost)

    def _on_link_lost(self) -> None:
        self._link_lost_at = datetime.now(UTC)

    async def _resync(self) -> None:
        """After every login: close vanished calls, adopt unknown channels, backfill from CEL."""
        if self.store is None:
            return
        now = datetime.now(UTC)
        lost_at = self._link_lost_at or now
        channels = await self.ami.action_list("CoreShowChannels")
        closed = self.tracker.resync({c.get("Uniqueid") for c in channels}, now, lost_at)
        adopted = self.tracker.adopt(channels, now)
        if self.cel is not None and closed:
            try:
                trail = await self.cel.events_for({c.linkedid for c in closed})
            except (SQLAlchemyError, OSError) as exc:  # no trail: they keep the link-lost end
                log.warning("CEL trail unreadable (%s); %d calls end when the link was lost",
                            exc, len(closed))
                trail = {}
            for call in closed:
                close_from_cel(call, trail.get(call.linkedid, []), lost_at)
        for call in closed:
            self._finished.put_nowait(call)
        if self._first_login:
            # Resume where the records end (a new, empty database starts fresh), at most
            # reconcile_lookback_s back.
            last = await self.store.last_end()
            floor = now - timedelta(seconds=self.settings.asterisk.reconcile_lookback_s)
            since = max(last, floor) if last is not None else None
        else:
            since = lost_at - timedelta(seconds=2)  # clock skew between PBX and gateway
        backfilled = 0
        if since is not None:
            backfilled = await self._backfill(since, now, {c.linkedid for c in closed})
        if closed or adopted or backfilled:
            log.info("AMI resync: %d calls closed, %d channels adopted, %d calls rebuilt from CEL",
                     len(closed), adopted, backfilled)
        self._first_login = False
        self._link_lost_at = None

    async def _backfill(self, since: datetime, until: datetime, skip: set[str]) -> int:
        """Calls that ended in ``[since, until]`` with no record and no live state: from CEL."""
        if self.cel is None:
            return 0
        try:
            trail = await self.cel.ended_between(since, until)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("CEL trail unreadable (%s); calls missed while away are not rebuilt", exc)
            return 0
        candidates = {lid for lid in trail if lid not in skip and not self.tracker.knows(lid)}
        known = await self.store.known(candidates)
        n = 0
        for lid in sorted(candidates - known):
            call = record_from_cel(lid, trail[lid])
            if call is not None:
                self.tracker.mark_finished(lid)
                self._finished.put_nowait(call)
                n += 1
        return n

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
            else:
                self.bus.publish(CallSaved(call))
            finally:
                self._finished.task_done()

    async def _sweep(self) -> None:
        """Calls held for their IVR result (see CallTracker.due) go to the writer when due."""
        while True:
            await asyncio.sleep(0.25)
            for call in self.tracker.due():
                self._finished.put_nowait(call)

    async def _db_ok(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def start(self) -> None:
        """Fatal errors here (wrong credentials, unreachable PBX) propagate to the caller."""
        await upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url, self.settings.database.echo)
        sessions = make_sessionmaker(self.engine)
        self.store = CallStore(sessions)
        readiness = {"ami": lambda: self.ami.connected, "ari": lambda: self.ari.connected,
                     "database": self._db_ok}
        app = create_app(readiness)
        self.ctx = ctx = GatewayContext(
            settings=self.settings, ami=self.ami, ari=self.ari, engine=self.engine,
            sessions=sessions, calls=self.store, tracker=self.tracker, bus=self.bus, app=app,
            readiness=readiness)
        for c in self.components:
            if c.name in ctx.components:
                raise ValueError(f"two components are named {c.name!r}")
            ctx.components[c.name] = c
        for c in self.components:
            c.setup(ctx)
        self._writer = asyncio.create_task(self._write_calls(), name="call-writer")
        self._sweeper = asyncio.create_task(self._sweep(), name="call-sweeper")
        await self.ami.connect()
        await self.ari.connect()
        for c in self.components:
            await c.start()
            self._started.append(c)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        h = self.settings.http
        site = web.TCPSite(self._runner, h.host, h.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1] if site._server else h.port
        log.info("gateway listening on http://%s:%s", h.host, self.port)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        for c in reversed(self._started):
            try:
                await c.stop()
            except Exception:
                log.exception("component %s failed to stop", c.name)
        self._started.clear()
        await self.ari.close()
        await self.ami.close()
        if self._sweeper:
            self._sweeper.cancel()
        for call in self.tracker.due(datetime.max.replace(tzinfo=UTC)):  # held ones: save now
            self._finished.put_nowait(call)
        if self._writer:
            try:
                await asyncio.wait_for(self._finished.join(), 10)
            except TimeoutError:
                log.error("%d finished calls not saved at shutdown", self._finished.qsize())
            self._writer.cancel()
        await self.bus.drain()
        if self.cel is not None:
            await self.cel.close()
        if self.engine:
            await self.engine.dispose()
