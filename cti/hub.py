"""Websockets of the desktops: who is connected, and pushing frames only to whom they are for.

Why a queue and a sender task per socket: the AMI reader must never wait on a slow browser, and
frames for one desktop must stay in order. ``send`` only appends to that socket's queue; its own
task writes. A socket more than ``MAX_BACKLOG`` frames behind is closed (the desktop reconnects
and gets the current state), so one stuck browser cannot grow the gateway's memory.

Authentication: browsers cannot set headers on a WebSocket, and a token in the URL ends up in
proxy and access logs, so the first message must be ``{"type": "auth", "token": ...}`` within
``auth.ws_auth_timeout_s``. The token is re-checked every ``auth.ws_recheck_s`` (expiry,
disable, password change) and a logout closes the sockets of that token at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from cti.auth import Authenticator, Principal, token_hash

log = logging.getLogger(__name__)

MAX_BACKLOG = 1000
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BACKLOG = 4008


class Later(str):
    """A frame that may wait for other desktops' pops (agent state): the sender yields first."""

    __slots__ = ()


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    principal: Principal
    token_hash: str
    watch_team: bool = False  # a supervisor following their team's pops
    watch_agents: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | int] = field(default_factory=asyncio.Queue)  # frame, or close code
    sent: int = 0

    def send(self, text: str) -> None:
        if self.queue.qsize() >= MAX_BACKLOG:
            self.queue.put_nowait(CLOSE_BACKLOG)
            return
        self.queue.put_nowait(text)

    def close(self, code: int = 1000) -> None:
        self.queue.put_nowait(code)


class Hub:
    def __init__(self, auth: Authenticator,
                 on_sent: Callable[[Conn, str], None] | None = None) -> None:
        self.auth = auth
        self.by_user: dict[str, set[Conn]] = {}
        self.watchers: dict[str, set[Conn]] = {}  # team -> supervisors watching it
        self.on_sent = on_sent  # instrumentation (bench): called after each frame is written
        auth.on_revoke(self._revoked)

    # -- fan-out ---------------------------------------------------------------------------------
    def to_user(self, username: str, text: str) -> int:
        n = 0
        for c in self.by_user.get(username, ()):
            c.send(text)
            n += 1
        return n

    def watchers_of(self, username: str, team: str | None) -> list[Conn]:
        out = []
        if team is not None:
            out.extend(c for c in self.watchers.get(team, ()) if
                       c.watch_team or username in c.watch_agents)
        return out

    def all_conns(self) -> list[Conn]:
        return [c for conns in self.by_user.values() for c in conns]

    def close_user(self, username: str) -> None:
        for c in list(self.by_user.get(username, ())):
            c.close(CLOSE_UNAUTHORIZED)

    def _revoked(self, h: str) -> None:
        for c in self.all_conns():
            if c.token_hash == h:
                c.close(CLOSE_UNAUTHORIZED)

    # -- one connection ----------------------------------------------------------------------------
    async def serve(self, request: web.Request, on_open: Callable[[Conn], None],
                    on_message: Callable[[Conn, dict], None]) -> web.WebSocketResponse:
        # no per-message deflate: pops are small and the time to the agent's screen counts
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024, compress=False)
        await ws.prepare(request)
        cfg = self.auth.settings
        try:
            msg = await ws.receive(timeout=cfg.ws_auth_timeout_s)
        except TimeoutError:
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"authenticate first")
            return ws
        token = None
        if msg.type == WSMsgType.TEXT:
            try:
                first = msg.json()
            except ValueError:
                first = None
            if isinstance(first, dict) and first.get("type") == "auth":
                token = first.get("token") if isinstance(first.get("token"), str) else None
        p = await self.auth.principal(token)
        if p is None:
            await ws.send_json({"type": "error", "error": "missing, invalid or expired token"})
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
            return ws
        conn = Conn(ws, p, token_hash(token or ""))
        self.by_user.setdefault(p.username, set()).add(conn)
        sender = asyncio.create_task(self._sender(conn), name=f"ws-send:{p.username}")
        recheck = asyncio.create_task(self._recheck(conn, token or ""), name="ws-recheck")
        try:
            on_open(conn)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = msg.json()
                except ValueError:
                    conn.send('{"type":"error","error":"messages are JSON objects"}')
                    continue
                if isinstance(data, dict):
                    on_message(conn, data)
        finally:
            self._forget(conn)
            recheck.cancel()
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sender, 5)
        return ws

    def watch(self, conn: Conn, team: str) -> None:
        self.watchers.setdefault(team, set()).add(conn)

    def _forget(self, conn: Conn) -> None:
        conns = self.by_user.get(conn.principal.username)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_user[conn.principal.username]
        for team, ws in list(self.watchers.items()):
            ws.discard(conn)
            if not ws:
                del self.watchers[team]

    async def _sender(self, conn: Conn) -> None:
        q = conn.queue
        on_sent = self.on_sent
        try:
            while True:
                text = await q.get()
                if type(text) is int:
                    await conn.ws.close(code=text)
                    return
                if type(text) is Later:
                    await asyncio.sleep(0)  # a burst's pops to every desktop go first
                await conn.ws.send_str(text)
                conn.sent += 1
                if on_sent is not None:
                    on_sent(conn, text)
        except (ConnectionError, RuntimeError) as exc:  # the browser went away mid-write
            log.debug("websocket of %s closed while sending: %s", conn.principal.username, exc)
        finally:
            self._forget(conn)

    async def _recheck(self, conn: Conn, token: str) -> None:
        every = self.auth.settings.ws_recheck_s
        while True:
            await asyncio.sleep(every)
            if await self.auth.principal(token) is None:
                conn.close(CLOSE_UNAUTHORIZED)
                return
