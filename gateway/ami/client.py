"""asyncio AMI connector: login, correlated actions, list actions, event stream, reconnect.

Why our own: the gateway must never block its event loop and must know when the link is down so
it can resync live calls after a reconnect; framing is in :mod:`gateway.ami.protocol`.

Delivery policy: events go to every subscriber in arrival order from the reader task; a
subscriber that needs to do I/O should queue the event itself (the call tracker does). While the
link is down events are lost by nature of AMI; ``on_connected`` callbacks run after every
(re)login so consumers can resync from ``CoreShowChannels``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable

from gateway.ami.protocol import Banner, Event, Parser, ProtocolError, Response, encode_action
from gateway.settings import Settings

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], None]
StateHandler = Callable[[], Awaitable[None] | None]


class AMIError(Exception):
    pass


class AMIAuthError(AMIError):
    """Asterisk refused the username/secret: retrying will not help."""


class AMIConnectionError(AMIError):
    pass


class AMIActionError(AMIError):
    def __init__(self, action: str, response: Response) -> None:
        super().__init__(f"AMI {action} failed: {response.message or 'no message'}")
        self.response = response


class AMIClient:
    def __init__(self, settings: Settings) -> None:
        self._a = settings.asterisk
        self._cfg = settings.ami
        self._ids = (str(i) for i in itertools.count(1))
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._lists: dict[str, list[Event]] = {}
        self._handlers: list[EventHandler] = []
        self._on_connected: list[StateHandler] = []
        self._on_disconnected: list[StateHandler] = []
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._supervisor: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self.protocol_errors = 0
        self.version: str | None = None

    # -- subscriptions -----------------------------------------------------------------------
    def on_event(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def on_connected(self, handler: StateHandler) -> None:
        self._on_connected.append(handler)

    def on_disconnected(self, handler: StateHandler) -> None:
        self._on_disconnected.append(handler)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- life cycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        """First connection: wrong credentials or a refused port raise at once."""
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        self._closing = True
        for t in (self._supervisor, self._reader_task):
            if t:
                t.cancel()
        if self._writer:
            self._writer.close()
        self._connected.clear()

    async def _open(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._a.host, self._a.ami_port), self._cfg.action_timeout_s)
        except (TimeoutError, OSError) as exc:
            raise AMIConnectionError(f"cannot reach AMI at {self._a.host}:{self._a.ami_port}: {exc}") from exc
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader, Parser(self._cfg.max_frame_bytes)),
                                                name="ami-reader")
        secret = self._a.ami_password.get_secret_value() if self._a.ami_password else ""
        try:
            await self.action("Login", _checked=False, Username=self._a.ami_username, Secret=secret,
                              Events="on")
        except AMIActionError as exc:
            writer.close()
            raise AMIAuthError(
                f"AMI at {self._a.host}:{self._a.ami_port} refused user {self._a.ami_username!r}: "
                f"{exc.response.message}; check asterisk.ami_username / ami_password") from None
        self._connected.set()
        for cb in self._on_connected:
            await _maybe_await(cb())

    async def _supervise(self) -> None:
        """Keepalive and reconnect with capped exponential backoff plus jitter."""
        while not self._closing:
            assert self._reader_task is not None
            ping = asyncio.create_task(self._keepalive())
            await asyncio.wait({self._reader_task, ping}, return_when=asyncio.FIRST_COMPLETED)
            ping.cancel()
            if self._closing:
                return
            self._lost()
            delay = self._cfg.reconnect_initial_s
            while not self._closing:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                try:
                    await self._open()
                    log.info("AMI reconnected")
                    break
                except AMIAuthError:
                    log.error("AMI credentials refused after reconnect; retrying")
                except AMIConnectionError as exc:
                    log.warning("AMI reconnect failed: %s", exc)
                delay = min(delay * 2, self._cfg.reconnect_max_s)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.keepalive_interval_s)
            try:
                await self.action("Ping")
            except (TimeoutError, AMIError):
                log.warning("AMI keepalive failed; reconnecting")
                if self._reader_task:
                    self._reader_task.cancel()
                return

    def _lost(self) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if self._writer:
            self._writer.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(AMIConnectionError("AMI link lost"))
        self._pending.clear()
        self._lists.clear()
        if was:
            for cb in self._on_disconnected:
                res = cb()
                if asyncio.iscoroutine(res):
                    asyncio.ensure_future(res)

    async def _read(self, reader: asyncio.StreamReader, parser: Parser) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for msg in parser.feed(data):
                if type(msg) is Event:
                    self._dispatch(msg)
                elif type(msg) is Response:
                    self._resolve(msg)
                elif type(msg) is Banner:
                    self.version = msg.version
                elif isinstance(msg, ProtocolError):
                    self.protocol_errors += 1
                    log.warning("AMI protocol error: %s", msg)

    def _resolve(self, resp: Response) -> None:
        fut = self._pending.get(resp.action_id or "")
        if fut is not None and not fut.done():
            fut.set_result(resp)

    def _dispatch(self, ev: Event) -> None:
        aid = ev.get("ActionID")
        if aid is not None and aid in self._lists:
            self._lists[aid].append(ev)
            if ev.get("EventList") == "Complete" or ev.name.endswith("Complete"):
                fut = self._pending.get(aid + "/list")
                if fut is not None and not fut.done():
                    fut.set_result(None)  # type: ignore[arg-type]
            return
        for h in self._handlers:
            try:
                h(ev)
            except Exception:  # a broken consumer must not kill the link
                log.exception("AMI event handler failed on %s", ev.name)

    # -- actions -----------------------------------------------------------------------------
    async def action(self, name: str, *, _checked: bool = True, timeout: float | None = None,
                     **fields: object) -> Response:
        # Login runs before the link counts as connected; everything else needs a live link.
        if self._writer is None or (_checked and not self._connected.is_set()):
            raise AMIConnectionError("AMI is not connected")
        aid = next(self._ids)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[aid] = fut
        try:
            self._writer.write(encode_action(name, aid, **fields))
            resp = await asyncio.wait_for(fut, timeout or self._cfg.action_timeout_s)
        finally:
            self._pending.pop(aid, None)
        if not resp.success:
            raise AMIActionError(name, resp)
        return resp

    async def action_list(self, name: str, *, timeout: float | None = None,
                          **fields: object) -> list[Event]:
        """An action answered by a list of events ending in ``...Complete`` (e.g. CoreShowChannels)."""
        if self._writer is None or not self._connected.is_set():
            raise AMIConnectionError("AMI is not connected")
        aid = next(self._ids)
        loop = asyncio.get_running_loop()
        resp_fut: asyncio.Future[Response] = loop.create_future()
        done_fut: asyncio.Future = loop.create_future()
        self._pending[aid], self._pending[aid + "/list"] = resp_fut, done_fut
        self._lists[aid] = []
        try:
            self._writer.write(encode_action(name, aid, **fields))
            t = timeout or self._cfg.action_timeout_s
            resp = await asyncio.wait_for(resp_fut, t)
            if not resp.success:
                raise AMIActionError(name, resp)
            await asyncio.wait_for(done_fut, t)
            return [e for e in self._lists[aid] if e.get("EventList") != "Complete"
                    and not e.name.endswith("Complete")]
        finally:
            self._pending.pop(aid, None)
            self._pending.pop(aid + "/list", None)
            self._lists.pop(aid, None)


async def _maybe_await(x):
    if asyncio.iscoroutine(x):
        return await x
    return x
