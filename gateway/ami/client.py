"""asyncio AMI connector: login, correlated actions, list actions, event stream, reconnect.

Why our own: the gateway must never block its event loop and must know when the link is down so
it can resync live calls after a reconnect; framing lives in :mod:`gateway.ami.protocol`.

Actions. Every action gets a fresh ``ActionID`` and its own timeout; the reply is matched by that
id, whatever events are interleaved. An action answered with ``EventList: start`` (CoreShowChannels,
QueueStatus, Status, QueueSummary, ...) completes when its list ends (``EventList: Complete`` or an
event named ``...Complete``); the list items come back in ``Response.events`` and are not
dispatched to subscribers. A reply that arrives after its action timed out is dropped.

Events, delivery policy. Events are delivered in arrival order, from the one reader task:

- ``on_event(callback)``: called inline; must be quick and must not block (queue work yourself).
- ``events()``: an async iterator over a bounded queue. When a queue is full the policy decides:
  ``"block"`` (default) stops reading the socket until the consumer catches up, so nothing is
  lost in the gateway: TCP pushes back on Asterisk, and while blocked the keepalive does not
  count the silence as a dead link. ``"error"`` ends that one subscription with
  :class:`AMIEventOverflow` once its queued events are read; the reader and every other
  subscriber go on, and the consumer knows it must resubscribe and resync.

Nothing is dropped while connected. While the link is down events are lost by nature of AMI;
after every (re)login ``on_connected`` callbacks run, then ``on_resync`` callbacks get the live
channels from ``CoreShowChannels`` so consumers can rebuild their state.

Link supervision: a ``Ping`` every ``ami.keepalive_interval_s`` (a reply missing for
``ami.action_timeout_s`` means a dead link), reconnect with exponential backoff from
``ami.reconnect_initial_s`` capped at ``ami.reconnect_max_s``, each wait jittered to 50-100 %
so that many gateways do not reconnect in lockstep after a PBX restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal, Self

from gateway.ami.protocol import Banner, Event, Parser, ProtocolError, Response, encode_action
from gateway.settings import Settings

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], None]
StateHandler = Callable[[], Awaitable[None] | None]
ResyncHandler = Callable[[list[Event]], Awaitable[None] | None]
Overflow = Literal["block", "error"]

_READ_SIZE = 1 << 16


class AMIError(Exception):
    pass


class AMIAuthError(AMIError):
    """Asterisk refused the username/secret: retrying will not help."""


class AMIConnectionError(AMIError):
    """Asterisk could not be reached, or the link was lost."""


class AMITimeoutError(AMIError, TimeoutError):
    """No (complete) reply to an action within its timeout."""


class AMIActionError(AMIError):
    def __init__(self, action: str, response: Response) -> None:
        super().__init__(f"AMI {action} failed: {response.message or 'no message'}")
        self.response = response


class AMIEventOverflow(AMIError):
    """An ``overflow="error"`` subscriber fell a full queue behind: resubscribe and resync."""


class EventStream:
    """One subscriber's bounded queue of events; iterate it with ``async for``."""

    def __init__(self, client: AMIClient, maxsize: int, overflow: Overflow) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if overflow not in ("block", "error"):
            raise ValueError(f"overflow must be 'block' or 'error', not {overflow!r}")
        self._client = client
        self._q: deque[Event] = deque()
        self.maxsize = maxsize
        self.overflow = overflow
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: AMIEventOverflow | None = None

    def __len__(self) -> int:
        return len(self._q)

    def _push(self, ev: Event) -> None:
        if len(self._q) >= self.maxsize:  # only "error" streams get here when full
            self._error = AMIEventOverflow(
                f"AMI event subscriber fell {self.maxsize} events behind; resubscribe and resync")
            self._client._unsubscribe(self)
            self._closed = True
        else:
            self._q.append(ev)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _end(self) -> None:
        self._closed = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        self._client._unsubscribe(self)
        self._end()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._q:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        ev = self._q.popleft()
        room = self._client._room
        if room is not None and not room.done():
            room.set_result(None)
        return ev

    async def get(self, timeout: float | None = None) -> Event:
        """The next event (``StopAsyncIteration`` once closed and drained)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _List:
    __slots__ = ("abandoned", "events", "response")

    def __init__(self, response: Response) -> None:
        self.response = response
        self.events: list[Event] = []
        self.abandoned = False  # its action timed out: late items are swallowed


class AMIClient:
    def __init__(self, settings: Settings, *, event_queue_size: int = 10_000) -> None:
        self._a = settings.asterisk
        self._cfg = settings.ami
        self._queue_size = event_queue_size
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._lists: dict[str, _List] = {}
        self._expired: deque[str] = deque(maxlen=256)
        self._handlers: list[EventHandler] = []
        self._streams: list[EventStream] = []
        self._blocking: list[EventStream] = []
        self._on_connected: list[StateHandler] = []
        self._on_disconnected: list[StateHandler] = []
        self._on_resync: list[ResyncHandler] = []
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None  # set while a full "block" stream stalls the reader
        self._connected = False
        self._logged_in = False  # this link got past login (so its loss is news)
        self._closing = False
        self.protocol_errors = 0
        self.connects = 0
        self.version: str | None = None

    # -- subscriptions -----------------------------------------------------------------------
    def on_event(self, handler: EventHandler) -> None:
        """``handler(event)`` for every event, inline on the reader: keep it quick."""
        self._handlers.append(handler)

    def events(self, maxsize: int | None = None, overflow: Overflow = "block") -> EventStream:
        """Subscribe: ``async for ev in client.events(): ...`` (see the module doc for policy)."""
        stream = EventStream(self, maxsize or self._queue_size, overflow)
        # Copy on write: the reader may be iterating the old lists right now.
        self._streams = [*self._streams, stream]
        if overflow == "block":
            self._blocking = [*self._blocking, stream]
        return stream

    def _unsubscribe(self, stream: EventStream) -> None:
        self._streams = [s for s in self._streams if s is not stream]
        self._blocking = [s for s in self._blocking if s is not stream]
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def on_connected(self, handler: StateHandler) -> None:
        """Called after every successful login, the first one included."""
        self._on_connected.append(handler)

    def on_disconnected(self, handler: StateHandler) -> None:
        """Called once each time a working link is lost."""
        self._on_disconnected.append(handler)

    def on_resync(self, handler: ResyncHandler) -> None:
        """``handler(channels)`` after every login, with the ``CoreShowChannels`` list."""
        self._on_resync.append(handler)

    @property
    def connected(self) -> bool:
        return self._connected

    # -- life cycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        """First connection: wrong credentials or an unreachable port raise at once."""
        if self._supervisor is not None:
            raise RuntimeError("AMIClient.connect() called twice")
        self._closing = False
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")
        await self._after_login()

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._supervisor, self._reader_task) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = self._reader_task = None
        self._drop_link(AMIConnectionError("AMI client closed"))
        streams, self._streams, self._blocking = self._streams, [], []
        for stream in streams:
            stream._end()

    async def _open(self) -> None:
        where = f"{self._a.host}:{self._a.ami_port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._a.host, self._a.ami_port), self._cfg.action_timeout_s)
        except (TimeoutError, OSError) as exc:
            raise AMIConnectionError(f"cannot reach AMI at {where}: {exc or 'timed out'}") from None
        self._writer = writer
        self._reader_task = asyncio.create_task(
            self._read(reader, Parser(self._cfg.max_frame_bytes)), name="ami-reader")
        secret = self._a.ami_password.get_secret_value() if self._a.ami_password else ""
        try:
            await self._send("Login", None, Username=self._a.ami_username, Secret=secret,
                             Events="on")
        except AMIActionError as exc:
            await self._abandon()
            raise AMIAuthError(
                f"AMI at {where} refused user {self._a.ami_username!r}: {exc.response.message}; "
                f"check asterisk.ami_username / asterisk.ami_password") from None
        except (AMIConnectionError, AMITimeoutError) as exc:
            await self._abandon()
            raise AMIConnectionError(f"AMI at {where} did not answer the login: {exc}") from None
        self._connected = self._logged_in = True
        self.connects += 1

    async def _abandon(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        self._drop_link(AMIConnectionError("AMI link closed"))

    async def _after_login(self) -> None:
        for cb in self._on_connected:
            await _call_quietly(cb, "on_connected")
        if self._on_resync and self._connected:
            try:
                channels = (await self.action("CoreShowChannels")).events
            except AMIError as exc:
                log.warning("AMI resync: CoreShowChannels failed: %s", exc)
                return
            for cb in self._on_resync:
                await _call_quietly(cb, "on_resync", channels)

    async def _supervise(self) -> None:
        """Keepalive while up; on loss, reconnect with capped exponential backoff plus jitter."""
        while not self._closing:
            assert self._reader_task is not None
            ping = asyncio.create_task(self._keepalive(), name="ami-keepalive")
            await asyncio.wait({self._reader_task, ping}, return_when=asyncio.FIRST_COMPLETED)
            ping.cancel()
            self._reader_task.cancel()
            await asyncio.gather(ping, self._reader_task, return_exceptions=True)
            if self._closing:
                return
            was = self._logged_in
            self._drop_link(AMIConnectionError("AMI link lost"))
            if was:
                log.warning("AMI link to %s:%s lost", self._a.host, self._a.ami_port)
                for cb in self._on_disconnected:
                    await _call_quietly(cb, "on_disconnected")
            for delay in backoff(self._cfg.reconnect_initial_s, self._cfg.reconnect_max_s):
                if self._closing:
                    return
                await asyncio.sleep(delay)
                try:
                    await self._open()
                except AMIAuthError as exc:
                    log.error("AMI reconnect: %s", exc)
                except AMIConnectionError as exc:
                    log.warning("AMI reconnect failed: %s", exc)
                else:
                    log.info("AMI reconnected to %s:%s", self._a.host, self._a.ami_port)
                    await self._after_login()
                    break

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.keepalive_interval_s)
            try:
                await self.action("Ping")
            except AMITimeoutError:
                if self._room is not None:  # our own subscriber stalls the reader: not dead
                    continue
                log.warning("AMI keepalive: no Pong within %.1f s; reconnecting",
                            self._cfg.action_timeout_s)
                return
            except AMIError:
                return

    def _drop_link(self, reason: AMIError) -> None:
        self._connected = self._logged_in = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(reason)
        self._pending.clear()
        self._lists.clear()
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.cancel()

    # -- reading and dispatch ----------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader, parser: Parser) -> None:
        """Until EOF; then every action still waiting fails at once instead of timing out."""
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    return
                msgs = parser.feed(data)
                i = self._deliver(msgs, 0)
                while i < len(msgs):  # a full "block" subscriber: wait for room
                    self._room = asyncio.get_running_loop().create_future()
                    try:
                        await self._room
                    finally:
                        self._room = None
                    i = self._deliver(msgs, i)
        except (ConnectionError, OSError) as exc:
            log.warning("AMI read failed: %s", exc)
        finally:
            self._connected = False
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(AMIConnectionError("AMI link lost"))

    def _deliver(self, msgs: list, i: int) -> int:
        """Route ``msgs[i:]``; returns ``len(msgs)``, or the index of an event no one got yet
        because a ``block`` subscriber is full."""
        lists = self._lists
        handlers = self._handlers
        blocking = self._blocking
        n = len(msgs)
        while i < n:
            msg = msgs[i]
            if type(msg) is Event:
                if lists:
                    aid = msg.get("ActionID")
                    if aid is not None and aid in lists:
                        self._list_item(aid, msg)
                        i += 1
                        continue
                for s in blocking:
                    if len(s._q) >= s.maxsize:
                        return i
                for h in handlers:
                    try:
                        h(msg)
                    except Exception:  # a broken consumer must not kill the link
                        log.exception("AMI event handler %r failed on %s", h, msg.name)
                for s in self._streams:
                    s._push(msg)
            elif type(msg) is Response:
                self._response(msg)
            elif type(msg) is ProtocolError:
                self.protocol_errors += 1
                log.warning("AMI protocol error: %s", msg)
            elif type(msg) is Banner:
                self.version = msg.version
            i += 1
        return n

    def _response(self, resp: Response) -> None:
        aid = resp.action_id or ""
        fut = self._pending.get(aid)
        if fut is None:
            if aid not in self._expired:
                log.debug("AMI response for unknown ActionID %r dropped", aid)
            return
        el = resp.get("EventList")
        if el is not None and el.lower() == "start" and resp.success:
            self._lists[aid] = _List(resp)
        elif not fut.done():
            fut.set_result(resp)

    def _list_item(self, aid: str, ev: Event) -> None:
        lst = self._lists[aid]
        el = ev.get("EventList")
        if (el is not None and el.lower() == "complete") or ev.name.endswith("Complete"):
            del self._lists[aid]
            if lst.abandoned:
                return
            lst.response.events = lst.events
            fut = self._pending.get(aid)
            if fut is not None and not fut.done():
                fut.set_result(lst.response)
        elif not lst.abandoned:
            lst.events.append(ev)

    # -- actions -----------------------------------------------------------------------------
    async def action(self, name: str, *, timeout: float | None = None, **fields: object) -> Response:
        """Send one action and wait for its reply (and its list, if it answers with one).

        Raises :class:`AMIActionError` on ``Response: Error``, :class:`AMITimeoutError` after
        ``timeout`` (default ``ami.action_timeout_s``), :class:`AMIConnectionError` when down.
        """
        if not self._connected:
            raise AMIConnectionError("AMI is not connected")
        return await self._send(name, timeout, **fields)

    async def action_list(self, name: str, *, timeout: float | None = None,
                          **fields: object) -> list[Event]:
        """The list events of an action such as ``CoreShowChannels`` (``Response.events``)."""
        return (await self.action(name, timeout=timeout, **fields)).events

    async def _send(self, name: str, timeout: float | None, **fields: object) -> Response:
        writer = self._writer
        if writer is None:
            raise AMIConnectionError("AMI is not connected")
        aid = str(next(self._ids))
        raw = encode_action(name, aid, **fields)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[aid] = fut
        t = self._cfg.action_timeout_s if timeout is None else timeout
        try:
            writer.write(raw)
            resp = await asyncio.wait_for(fut, t)
        except TimeoutError:
            self._expired.append(aid)
            lst = self._lists.get(aid)
            if lst is not None:  # keep swallowing its late items, for a while
                lst.abandoned = True
                asyncio.get_running_loop().call_later(60, self._lists.pop, aid, None)
            raise AMITimeoutError(f"AMI {name}: no complete reply within {t:g} s") from None
        finally:
            if self._pending.get(aid) is fut:
                del self._pending[aid]
            lst = self._lists.get(aid)
            if lst is not None and not lst.abandoned:
                del self._lists[aid]
        if not resp.success:
            raise AMIActionError(name, resp)
        return resp


def backoff(initial: float, cap: float, rnd: random.Random | None = None) -> Iterator[float]:
    """Endless reconnect waits: doubling from ``initial`` up to ``cap``, each one drawn from
    50-100 % of its step so that clients restarted together spread out."""
    uniform = (rnd or random).uniform
    step = initial
    while True:
        yield step * uniform(0.5, 1.0)
        step = min(step * 2, cap)


async def _call_quietly(cb: Callable, what: str, *args: object) -> None:
    """State callbacks belong to other parts: their failure is logged, never fatal to the link."""
    try:
        res = cb(*args)
        if asyncio.iscoroutine(res):
            await res
    except Exception:
        log.exception("AMI %s callback %r failed", what, cb)
