"""Helpers shared by the CTI's integration and browser tests (this module holds no tests).

A real gateway (every component) on the session's sandbox Asterisk, with a fresh database and
a team of users; desk clients speak the real HTTP API and websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cti.auth import add_user
from cti.site import site_names
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.service import GatewayService

PW = "desk password 1"
# username -> (role, team, phone, queues).
TEAM = {
    "alice": ("agent", "red", "agent1", ("billing", "tech_support")),
    "bob": ("agent", "blue", "agent2", ("billing", "lost_card")),
    "carl": ("agent", "red", "agent3", ("tech_support",)),
    "sue": ("supervisor", "red", None, ()),
    "sam": ("supervisor", "blue", None, ()),
    "max": ("manager", None, None, ()),
    "root": ("admin", None, None, ()),
}


async def create_team(db_url: str, settings, users: dict = TEAM) -> None:
    await upgrade(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    site = site_names(settings)
    try:
        for name, (role, team, phone, queues) in users.items():
            await add_user(sessions, name, role, PW, team=team, endpoint=phone, queues=queues,
                           site=site)
    finally:
        await engine.dispose()


async def start_gateway(sandbox, tmp_path, *, cti: dict | None = None, auth: dict | None = None,
                        ami_port: int | None = None, db_url: str | None = None) -> GatewayService:
    s = sandbox.settings
    updates: dict[str, Any] = {"data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0})}
    if cti:
        updates["cti"] = s.cti.model_copy(update=cti)
    if auth:
        updates["auth"] = s.auth.model_copy(update=auth)
    if ami_port is not None:
        updates["asterisk"] = s.asterisk.model_copy(update={"ami_port": ami_port})
    if db_url is not None:
        updates["database"] = s.database.model_copy(update={"url": db_url})
    settings = s.model_copy(update=updates)
    await create_team(settings.database_url, settings)
    service = GatewayService(settings)
    await service.start()
    return service


async def stop_gateway(service: GatewayService) -> None:
    """Leave the shared sandbox as found: no dynamic members left behind."""
    with contextlib.suppress(Exception):
        resp = await service.ami.action("QueueStatus")
        for ev in resp.events:
            if ev.name == "QueueMember":
                with contextlib.suppress(Exception):
                    await service.ami.action("QueueRemove", Queue=ev.get("Queue"),
                                             Interface=ev.get("Location") or ev.get("Interface"))
    await service.stop()


async def members(service: GatewayService) -> dict[tuple[str, str], dict[str, str | None]]:
    """``(queue, interface) -> {name, paused, reason}`` as Asterisk reports right now."""
    resp = await service.ami.action("QueueStatus")
    out = {}
    for ev in resp.events:
        if ev.name == "QueueMember":
            iface = ev.get("Location") or ev.get("Interface")
            out[(ev.get("Queue"), iface)] = {"name": ev.get("Name") or ev.get("MemberName"),
                                             "paused": ev.get("Paused"),
                                             "reason": ev.get("PausedReason") or None}
    return out


async def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    end = asyncio.get_running_loop().time() + timeout
    while True:
        res = check()
        if asyncio.iscoroutine(res):
            res = await res
        if res:
            return res
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.1)


@dataclass
class Desk:
    """One person at a desktop: a token, the REST API and (optionally) the websocket."""

    base: str
    http: aiohttp.ClientSession
    token: str = ""
    ws: aiohttp.ClientWebSocketResponse | None = None
    frames: list[dict] = field(default_factory=list)
    _reader: asyncio.Task | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def login(cls, base: str, username: str, password: str = PW) -> Desk:
        http = aiohttp.ClientSession()
        async with http.post(base + "/api/v1/auth/login",
                             json={"username": username, "password": password}) as r:
            body = await r.json()
            if r.status != 200:
                await http.close()
                raise AssertionError(f"login {username}: {r.status} {body}")
        return cls(base, http, body["token"])

    def _h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path, headers=self._h()) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: dict | None = None) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body or {}, headers=self._h()) as r:
            return r.status, await r.json()

    async def connect(self) -> dict:
        self.ws = await self.http.ws_connect(self.base.replace("http", "ws", 1) + "/api/v1/ws")
        await self.ws.send_json({"type": "auth", "token": self.token})
        self._reader = asyncio.create_task(self._read())
        return await self.frame(lambda f: f["type"] == "hello")

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))
                self._new.set()

    async def frame(self, pred: Callable[[dict], bool], timeout: float = 20.0,
                    after: int = 0) -> dict:
        """The first frame (from index ``after``) matching ``pred``."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            for f in self.frames[after:]:
                if pred(f):
                    return f
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no matching frame; got {[f['type'] for f in self.frames]}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self.http.close()
