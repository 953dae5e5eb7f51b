"""asyncio client of the phone host: scriptable SIP phones for tests, load and agents' headsets.

    async with PhoneHost() as phones:
        await phones.register("agent1", pw, "127.0.0.1", 5060)
        await phones.add_account("caller1", pw, "127.0.0.1", 5060, register=False)
        out = await phones.call("caller1", "6001")
        inc = await phones.wait_for_incoming("agent1", timeout=15)
        await phones.answer(inc)
        await phones.wait_for_state(out, CallState.CONFIRMED)
        ...

Why a child process: see :mod:`gateway.sip.host`. This side never blocks the event loop: it
writes command lines, and one reader task turns the host's lines into replies and typed events.

Failure model. Every wait has a timeout and raises :class:`PhoneTimeout`. A call that ends before
the awaited state raises :class:`CallEnded` at once (with the SIP code), not after the timeout. A
host that dies (crash, kill, pjsua abort) fails every pending command and wait with
:class:`PhoneHostDied`, naming the exit status and the last lines it wrote to stderr; so do all
later commands. ``close()`` (also ``async with`` on the way out of a failed test) hangs up,
shuts pjsua down in the order it needs and reaps the process; a host that does not exit in time
is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import wave
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from gateway.sip.model import (
    CallState,
    CallStateChanged,
    DtmfReceived,
    HostProblem,
    HostReady,
    IncomingCall,
    MediaStateChanged,
    MediaStatus,
    PhoneEvent,
    PlaybackFinished,
    Recording,
    RegState,
    StreamStats,
    TransferStatus,
    event_from_wire,
    recording_from_wire,
    stats_from_wire,
)
from gateway.sip.wire import Command, EventMessage, Reply, WireError, decode_host_message, encode

log = logging.getLogger(__name__)
host_log = logging.getLogger("gateway.sip.host")

DEFAULT_TIMEOUT = 15.0
_host_numbers = itertools.count(1)
_ORDER = {s: i for i, s in enumerate(CallState)}
_ORDER[CallState.INCOMING] = _ORDER[CallState.CALLING]  # two first states, one per direction


class PhoneError(Exception):
    """Anything the phones could not do."""


class PhoneHostDied(PhoneError):
    """The host process is gone; nothing more can be done with its phones."""


class PhoneTimeout(PhoneError, TimeoutError):
    pass


class CommandError(PhoneError):
    """The host refused a command; ``kind`` is its error class (``not_found``, ``pjsua``...)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class RegistrationError(PhoneError):
    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class CallEnded(PhoneError):
    """The call was disconnected before what was awaited happened."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class Call:
    """A call on one of the host's accounts; its fields follow the host's events."""

    host: PhoneHost = field(repr=False)
    id: str
    account: str
    direction: str  # "out" or "in"
    remote_uri: str = ""
    state: CallState = CallState.NULL
    code: int = 0
    reason: str = ""
    media: MediaStatus = MediaStatus.NONE
    codec: str = ""
    dtmf: str = ""  # every digit received so far
    states: list[CallState] = field(default_factory=list)
    transfer: TransferStatus | None = None
    _dtmf_read: int = field(default=0, repr=False)

    @property
    def ended(self) -> bool:
        return self.state is CallState.DISCONNECTED

    # Sugar: every method is the host's, with this call.
    async def answer(self, code: int = 200) -> None:
        await self.host.answer(self, code)

    async def hangup(self) -> None:
        await self.host.hangup(self)

    async def wait_for_state(self, state: CallState | str,
                             timeout: float = DEFAULT_TIMEOUT) -> CallStateChanged:
        return await self.host.wait_for_state(self, state, timeout)


@dataclass(eq=False)
class Playback:
    id: str
    call: Call
    duration_s: float
    _done: asyncio.Future[bool] = field(repr=False)

    @property
    def done(self) -> bool:
        return self._done.done()

    async def wait(self, timeout: float | None = None) -> bool:
        """Until the file has played out: True, or False when stopped or the call ended first."""
        if timeout is None:
            timeout = self.duration_s + DEFAULT_TIMEOUT
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            raise PhoneTimeout(f"playback {self.id} on call {self.call.id} did not finish "
                               f"within {timeout:g} s") from None


_NO = object()


class _Waiter:
    __slots__ = ("fut", "match")

    def __init__(self, match: Callable[[PhoneEvent | None], Any]) -> None:
        self.match = match  # returns _NO, a value, or an exception instance to raise
        self.fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


def check_wav(path: str | os.PathLike[str]) -> float:
    """Seconds of audio in a WAV the phones can play (8 or 16 kHz, mono, 16-bit PCM).

    Raises :class:`PhoneError` naming the file and what is wrong with it.
    """
    try:
        with wave.open(os.fspath(path), "rb") as w:
            rate, ch, width, frames = (w.getframerate(), w.getnchannels(), w.getsampwidth(),
                                       w.getnframes())
    except FileNotFoundError:
        raise PhoneError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise PhoneError(f"{path}: not a PCM WAV file ({exc})") from None
    if rate not in (8000, 16000) or ch != 1 or width != 2:
        raise PhoneError(f"{path}: {rate} Hz, {ch} channel(s), {8 * width}-bit; the phones play "
                         "8 or 16 kHz mono 16-bit PCM (sox in.wav -r 8000 -c 1 -b 16 out.wav)")
    return frames / rate


class PhoneHost:
    """One phone-host process: up to 8 SIP accounts and 4 calls (the pjsua2 wheel's limits).

    A call between two accounts of the same host takes two of the four call slots. Scenarios
    with more calls use several hosts (e.g. callers in one, agents in another).
    """

    def __init__(self, *, bind: str = "127.0.0.1", clock_rate: int = 16000, log_level: int = 0,
                 command_timeout: float = DEFAULT_TIMEOUT, start_timeout: float = 30.0,
                 python: str | None = None, command: Sequence[str] | None = None,
                 log_file: str | os.PathLike[str] | None = None) -> None:
        """``command`` replaces the host's command line (fault injection in tests).

        ``log_file`` (default: ``$CENTRALINO_PHONE_LOG_DIR/phone-host-<n>.log`` when that is set)
        receives pjsua's full log with every SIP message: what a rare media or signalling
        problem needs, without flooding stderr."""
        self.bind = bind
        self.clock_rate = clock_rate
        self.log_level = log_level
        self.command_timeout = command_timeout
        self.start_timeout = start_timeout
        self.python = python or sys.executable
        self.command = list(command) if command else [
            self.python, "-m", "gateway.sip.host", "--bind", bind,
            "--clock-rate", str(clock_rate), "--log-level", str(log_level)]
        log_dir = os.environ.get("CENTRALINO_PHONE_LOG_DIR")
        if log_file is None and log_dir:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            log_file = Path(log_dir) / f"phone-host-{os.getpid()}-{next(_host_numbers)}.log"
        self.log_file = Path(log_file) if log_file else None
        if self.log_file and not command:
            self.command += ["--log-file", str(self.log_file)]
        self.ready: HostReady | None = None
        self.history: list[PhoneEvent] = []
        self.problems: list[str] = []  # host problems and unreadable lines, kept for the report
        self.calls: dict[str, Call] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[_Waiter] = []
        self._incoming: dict[str, deque[Call]] = defaultdict(deque)
        self._accounts: dict[str, tuple[str, int]] = {}
        self._regs: dict[str, RegState] = {}
        self._playbacks: dict[str, Playback] = {}
        self._early: dict[str, list[PhoneEvent]] = {}  # events of our calls seen before the reply
        self._handlers: list[Callable[[PhoneEvent], None]] = []
        self._stderr: deque[str] = deque(maxlen=40)
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self._dead: PhoneError | None = None
        self._closing = False
        self._exited = asyncio.Event()

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> Self:
        if self._proc is not None:
            raise PhoneError("this phone host was already started")
        self._proc = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=1 << 21)
        self._stderr_task = asyncio.create_task(self._read_stderr(), name="phone-host-stderr")
        self._tasks = [asyncio.create_task(self._read(), name="phone-host-reader"),
                       self._stderr_task]
        try:
            self.ready = await self._wait(lambda ev: ev if isinstance(ev, HostReady) else _NO,
                                          self.start_timeout, "the phone host did not start")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            await self.close()
        except PhoneError:
            if exc is None:
                raise
            log.exception("phone host did not close cleanly (while handling another error)")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._dead is None

    async def close(self, timeout: float = 20.0) -> None:
        """Hang up every call, unregister, tear pjsua down, reap the process.

        Raises :class:`PhoneHostDied` when a host that was still alive did not exit cleanly
        (e.g. pjsua aborted in ``libDestroy``). A host that had already died is not reported
        twice: its death was raised where it happened.
        """
        proc = self._proc
        if proc is None or self._closing:
            return
        already_dead = self._dead is not None
        self._closing = True
        if not already_dead and proc.returncode is None:
            with contextlib.suppress(PhoneError):
                await self._request("shutdown", {}, timeout=timeout)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_all(self._dead or PhoneHostDied("the phone host is closed"))
        if not already_dead and proc.returncode != 0:
            raise PhoneHostDied(f"the phone host did not shut down cleanly: {self._exit_text()}")

    def _exit_text(self) -> str:
        rc = self.returncode
        how = f"exit status {rc}"
        if rc is not None and rc < 0:
            with contextlib.suppress(ValueError):
                how = f"killed by {signal.Signals(-rc).name}"
        tail = "\n".join(self._stderr)
        return f"pid {self.pid}, {how}" + (f"; last stderr lines:\n{tail}" if tail else "")

    # -- reading the host ----------------------------------------------------------------------
    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        lineno = 0
        try:
            while True:
                try:
                    raw = await self._proc.stdout.readline()
                except ValueError:  # a line over the limit: report it, keep the stream
                    lineno += 1
                    self._problem(f"line {lineno}: over-long line from the phone host dropped")
                    continue
                if not raw:
                    break
                lineno += 1
                try:
                    msg = decode_host_message(raw, lineno)
                except WireError as exc:
                    self._problem(f"unreadable line from the phone host: {exc}")
                    if exc.id is not None and exc.id in self._pending:
                        self._settle(exc.id, CommandError(str(exc), "bad_message"))
                    continue
                if isinstance(msg, Reply):
                    if msg.ok:
                        self._settle(msg.id, msg.result)
                    else:
                        self._settle(msg.id, _command_error(msg))
                else:
                    self._on_event(msg)
        finally:
            await self._proc.wait()
            with contextlib.suppress(TimeoutError):  # the last stderr lines explain a death
                if self._stderr_task is not None:
                    await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
            if self._dead is None:
                if self._closing:
                    self._dead = PhoneHostDied("the phone host is closed")
                else:
                    self._dead = PhoneHostDied(f"the phone host died: {self._exit_text()}")
                    log.error("%s", self._dead)
            self._fail_all(self._dead)
            self._exited.set()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while True:
            try:
                raw = await self._proc.stderr.readline()
            except ValueError:
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr.append(line)
            host_log.debug("%s", line)

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        log.warning("phone host: %s", text)

    def _settle(self, mid: int, outcome: dict[str, Any] | Exception) -> None:
        fut = self._pending.pop(mid, None)
        if fut is None or fut.done():
            return
        if isinstance(outcome, Exception):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)

    def _fail_all(self, exc: PhoneError) -> None:
        for mid in list(self._pending):
            self._settle(mid, exc)
        for w in self._waiters:
            if not w.fut.done():
                w.fut.set_exception(exc)
        self._waiters.clear()
        for pb in self._playbacks.values():
            if not pb._done.done():
                pb._done.set_exception(exc)
                pb._done.exception()  # retrieved: nobody may be waiting on it

    def _on_event(self, msg: EventMessage) -> None:
        try:
            ev = event_from_wire(msg.event, msg.data)
        except WireError as exc:
            self._problem(f"bad event from the phone host: {exc}")
            return
        if ev is None:
            log.debug("ignoring unknown phone host event %r", msg.event)
            return
        self.history.append(ev)
        self._apply(ev)
        for handler in self._handlers:
            try:
                handler(ev)
            except Exception:
                log.exception("phone event handler failed")
        self._check_waiters(ev)

    def _apply(self, ev: PhoneEvent) -> None:
        """Keep the Call handles and registration states current."""
        if isinstance(ev, IncomingCall):
            call = Call(self, ev.call, ev.account, "in", remote_uri=ev.remote_uri)
            self.calls[ev.call] = call
            for early in self._early.pop(ev.call, ()):
                self._apply(early)
            self._incoming[ev.account].append(call)
        elif isinstance(ev, CallStateChanged | MediaStateChanged | DtmfReceived | TransferStatus):
            call = self.calls.get(ev.call)
            if call is None:
                # pjsua reports "calling" before the reply to our INVITE, and a PBX on loopback
                # can answer (state, media, even DTMF) before the caller has read that reply.
                self._early.setdefault(ev.call, []).append(ev)
            elif isinstance(ev, CallStateChanged):
                call.state, call.code, call.reason = ev.state, ev.code, ev.reason
                call.states.append(ev.state)
            elif isinstance(ev, MediaStateChanged):
                call.media = ev.status
                call.codec = ev.codec or call.codec
            elif isinstance(ev, DtmfReceived):
                call.dtmf += ev.digit
            else:
                call.transfer = ev
        elif isinstance(ev, PlaybackFinished):
            pb = self._playbacks.pop(ev.playback, None)
            if pb is not None and not pb._done.done():
                pb._done.set_result(ev.completed)
        elif isinstance(ev, RegState):
            self._regs[ev.account] = ev
        elif isinstance(ev, HostProblem):
            self._problem(ev.message)

    def _check_waiters(self, ev: PhoneEvent | None) -> None:
        keep = []
        for w in self._waiters:
            if w.fut.done():
                continue
            out = w.match(ev)
            if out is _NO:
                keep.append(w)
            elif isinstance(out, BaseException):
                w.fut.set_exception(out)
            else:
                w.fut.set_result(out)
        self._waiters = keep

    async def _wait(self, match: Callable[[PhoneEvent | None], Any], timeout: float,
                    what: str) -> Any:
        """Until ``match`` gives a value; it is first tried with ``None`` (state already there)."""
        if self._dead is not None:
            raise self._dead
        w = _Waiter(match)
        first = match(None)
        if isinstance(first, BaseException):
            raise first
        if first is not _NO:
            return first
        self._waiters.append(w)
        try:
            return await asyncio.wait_for(w.fut, timeout)
        except TimeoutError:
            extra = f"; phone host problems: {' | '.join(self.problems[-3:])}" if self.problems else ""
            if self.log_file:
                extra += f"; pjsua log: {self.log_file}"
            raise PhoneTimeout(f"{what} within {timeout:g} s{extra}") from None
        finally:
            if w in self._waiters:
                self._waiters.remove(w)

    def on_event(self, handler: Callable[[PhoneEvent], None]) -> None:
        """``handler(event)`` for every typed event, inline on the reader: keep it quick."""
        self._handlers.append(handler)

    # -- commands ------------------------------------------------------------------------------
    async def _request(self, cmd: str, args: dict[str, Any],
                       timeout: float | None = None) -> dict[str, Any]:
        if self._proc is None:
            raise PhoneError("the phone host is not started (use `async with PhoneHost()`)")
        if self._dead is not None:
            raise self._dead
        assert self._proc.stdin is not None
        mid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        try:
            self._proc.stdin.write(encode(Command(mid, cmd, args)))
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._pending.pop(mid, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 5)
            raise self._dead or PhoneHostDied("the phone host closed its input") from None
        timeout = self.command_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(mid, None)
            raise PhoneTimeout(f"the phone host did not answer {cmd!r} within {timeout:g} s") \
                from None

    # accounts -------------------------------------------------------------------------------
    async def add_account(self, account: str, password: str, host: str = "127.0.0.1",
                          port: int = 5060, *, codec: str = "PCMU/8000", register: bool = True,
                          user: str | None = None, expires: int = 300, auto_ring: bool = True,
                          timeout: float = DEFAULT_TIMEOUT) -> RegState | None:
        """Add a SIP account; with ``register`` wait for the registrar's verdict.

        ``account`` names the account in this host and is the SIP user unless ``user`` is
        given. ``codec`` (``PCMU/8000``, ``PCMA/8000``, ``G722/16000``, ``GSM/8000``,
        ``iLBC/8000``, ``speex/8000``...) is the only codec in this account's own offers (INVITE,
        hold, unhold); an incoming call is answered from G.711/G.722 in the PBX's order.
        ``auto_ring`` sends 180 Ringing on incoming calls.
        Without ``register`` the account can still place authenticated calls (load callers).
        """
        args = {"account": account, "password": password, "host": host, "port": port,
                "register": register, "codec": codec, "user": user or account,
                "expires": expires, "auto_ring": auto_ring}
        if not register:
            await self._request("add_account", args)
            self._accounts[account] = (host, port)
            return None
        self._regs.pop(account, None)
        verdict = asyncio.ensure_future(self._wait(
            lambda ev: ev if isinstance(ev, RegState) and ev.account == account else _NO,
            timeout, f"no answer to the registration of {account} at {host}:{port}"))
        try:
            await self._request("add_account", args)
        except BaseException:
            verdict.cancel()
            raise
        self._accounts[account] = (host, port)
        try:
            reg: RegState = await verdict
        except PhoneTimeout:
            await self._forget(account)
            raise
        if not reg.registered:
            await self._forget(account)
            hint = {401: " (wrong password?)", 403: " (wrong password?)",
                    404: " (unknown endpoint?)", 408: " (is the PBX reachable?)"}
            raise RegistrationError(
                f"registration of {account} at {host}:{port} refused: {reg.code} {reg.reason}"
                + hint.get(reg.code, ""), reg.code, reg.reason)
        return reg

    async def register(self, account: str, password: str, host: str = "127.0.0.1",
                       port: int = 5060, *, codec: str = "PCMU/8000",
                       timeout: float = DEFAULT_TIMEOUT, **kw: Any) -> RegState:
        """Add the account and REGISTER it; raises :class:`RegistrationError` when refused."""
        reg = await self.add_account(account, password, host, port, codec=codec, register=True,
                                     timeout=timeout, **kw)
        assert reg is not None
        return reg

    async def _forget(self, account: str) -> None:
        with contextlib.suppress(CommandError):
            await self._request("remove_account", {"account": account})
        self._accounts.pop(account, None)

    async def unregister(self, account: str, timeout: float = DEFAULT_TIMEOUT) -> RegState:
        """REGISTER with expiry 0 (the phone stays usable for outgoing calls)."""
        verdict = asyncio.ensure_future(self._wait(
            lambda ev: ev if isinstance(ev, RegState) and ev.account == account else _NO,
            timeout, f"no answer to the unregistration of {account}"))
        try:
            await self._request("unregister", {"account": account})
        except BaseException:
            verdict.cancel()
            raise
        return await verdict

    async def remove_account(self, account: str) -> None:
        """Hang up the account's calls, unregister and delete it."""
        await self._request("remove_account", {"account": account})
        self._accounts.pop(account, None)

    # calls ----------------------------------------------------------------------------------
    async def call(self, account: str, number: str) -> Call:
        """INVITE ``number`` (an extension at the account's PBX, or a full ``sip:`` URI)."""
        res = await self._request("call", {"account": account, "number": number})
        cid = res["call"]
        call = self.calls.get(cid)
        if call is None:
            call = Call(self, cid, account, "out", remote_uri=res["uri"])
            self.calls[cid] = call
            for ev in self._early.pop(cid, ()):  # the host reports "calling" before its reply
                self._apply(ev)
        return call

    async def wait_for_incoming(self, account: str, timeout: float = DEFAULT_TIMEOUT) -> Call:
        """The next incoming call on ``account`` not yet taken by an earlier wait."""
        def match(ev: PhoneEvent | None) -> Any:
            q = self._incoming[account]
            return q.popleft() if q else _NO
        return await self._wait(match, timeout, f"no incoming call on {account}")

    async def wait_for_state(self, call: Call, state: CallState | str,
                             timeout: float = DEFAULT_TIMEOUT) -> CallStateChanged:
        """Until ``call`` reaches ``state`` (or already has); :class:`CallEnded` if it ends first."""
        want = CallState(state)

        def match(ev: PhoneEvent | None) -> Any:
            if want in call.states:
                return CallStateChanged(call.account, call.id, want, call.code, call.reason)
            if call.ended:
                return CallEnded(f"call {call.id} ({call.account}) ended with {call.code} "
                                 f"{call.reason} before reaching {want.value}",
                                 call.code, call.reason)
            return _NO
        return await self._wait(match, timeout, f"call {call.id} ({call.account}) did not reach "
                                f"{want.value} (it is {call.state.value})")

    async def wait_for_media(self, call: Call, status: MediaStatus | str = MediaStatus.ACTIVE,
                             timeout: float = DEFAULT_TIMEOUT) -> MediaStateChanged:
        """Until the call's audio is in ``status`` (active, local_hold, remote_hold...)."""
        want = MediaStatus(status)

        def match(ev: PhoneEvent | None) -> Any:
            if call.media is want:
                return MediaStateChanged(call.account, call.id, want, call.codec)
            if call.ended:
                return CallEnded(f"call {call.id} ended before its media was {want.value}",
                                 call.code, call.reason)
            return _NO
        return await self._wait(match, timeout, f"call {call.id} ({call.account}) media did not "
                                f"become {want.value} (it is {call.media.value}; call states "
                                f"{'>'.join(s.value for s in call.states) or 'none'}, last SIP "
                                f"{call.code} {call.reason})")

    async def wait_for_dtmf(self, call: Call, count: int = 1,
                            timeout: float = DEFAULT_TIMEOUT) -> str:
        """The next ``count`` DTMF digits received on ``call`` (each digit is returned once)."""
        def match(ev: PhoneEvent | None) -> Any:
            if len(call.dtmf) - call._dtmf_read >= count:
                got = call.dtmf[call._dtmf_read:call._dtmf_read + count]
                call._dtmf_read += count
                return got
            if call.ended:
                return CallEnded(f"call {call.id} ended after DTMF {call.dtmf!r}",
                                 call.code, call.reason)
            return _NO
        return await self._wait(match, timeout, f"call {call.id} did not receive {count} DTMF "
                                f"digit(s) (has {call.dtmf[call._dtmf_read:]!r})")

    async def wait_for_transfer(self, call: Call,
                                timeout: float = DEFAULT_TIMEOUT) -> TransferStatus:
        """The final NOTIFY of a blind or attended transfer made on ``call``."""
        def match(ev: PhoneEvent | None) -> Any:
            t = call.transfer
            return t if t is not None and t.final else _NO
        return await self._wait(match, timeout, f"transfer on call {call.id} did not complete")

    async def wait_for_event(self, predicate: Callable[[PhoneEvent], bool],
                             timeout: float = DEFAULT_TIMEOUT) -> PhoneEvent:
        """The next event (from now on) for which ``predicate`` is true."""
        return await self._wait(
            lambda ev: ev if ev is not None and predicate(ev) else _NO, timeout,
            "no matching phone event")

    async def answer(self, call: Call, code: int = 200) -> None:
        await self._request("answer", {"call": call.id, "code": code})

    async def reject(self, call: Call, code: int = 603) -> None:
        """Refuse a ringing incoming call (603 Decline by default)."""
        if not 400 <= code <= 699:
            raise PhoneError(f"a rejection needs a 4xx-6xx code, not {code}")
        await self._request("hangup", {"call": call.id, "code": code})

    async def busy(self, call: Call) -> None:
        await self.reject(call, 486)

    async def hangup(self, call: Call) -> None:
        """BYE (or CANCEL while ringing); a call that has already ended is left alone."""
        if call.ended:
            return
        try:
            await self._request("hangup", {"call": call.id})
        except CommandError as exc:
            if exc.kind != "call_gone":
                raise

    async def hold(self, call: Call) -> None:
        """re-INVITE with a=sendonly; await ``wait_for_media(call, "local_hold")`` if needed."""
        await self._request("hold", {"call": call.id})

    async def unhold(self, call: Call) -> None:
        await self._request("unhold", {"call": call.id})

    async def transfer(self, call: Call, target: str) -> None:
        """Blind transfer: REFER the far end to ``target`` (extension or ``sip:`` URI)."""
        await self._request("transfer", {"call": call.id, "target": target})

    async def transfer_attended(self, call: Call, consult: Call) -> None:
        """Attended (consultative) transfer: the far end of ``call`` (the caller, usually on
        hold) is connected to the far end of ``consult`` (the colleague just consulted).
        ``wait_for_transfer(call)`` gives its outcome; this phone then leaves both calls."""
        await self._request("transfer_replaces", {"call": call.id, "consult": consult.id})

    async def send_dtmf(self, call: Call, digits: str, duration_ms: int = 160) -> None:
        """RFC 4733 telephone-events, queued one after another by the host."""
        await self._request("dtmf", {"call": call.id, "digits": digits,
                                     "duration_ms": duration_ms})

    async def play(self, call: Call, wav: str | os.PathLike[str]) -> Playback:
        """Play a WAV once into the call; ``await playback.wait()`` until it has played out."""
        path = os.path.abspath(wav)
        check_wav(path)
        res = await self._request("play", {"call": call.id, "path": path})
        pb = Playback(res["playback"], call, float(res["duration_s"]),
                      asyncio.get_running_loop().create_future())
        self._playbacks[pb.id] = pb
        for ev in self.history[::-1]:  # finished before we got the reply (a very short file)
            if isinstance(ev, PlaybackFinished) and ev.playback == pb.id:
                self._apply(ev)
                break
        return pb

    async def stop_playback(self, playback: Playback) -> None:
        await self._request("stop_play", {"playback": playback.id})

    async def start_recording(self, call: Call, path: str | os.PathLike[str]) -> Path:
        """Record what the call receives to a WAV (16-bit mono at the host's clock rate)."""
        p = Path(path).absolute()
        p.parent.mkdir(parents=True, exist_ok=True)
        await self._request("record_start", {"call": call.id, "path": str(p)})
        return p

    async def stop_recording(self, call: Call) -> Recording:
        """Close the WAV (also works after the call ended, which closes it by itself)."""
        return recording_from_wire(await self._request("record_stop", {"call": call.id}))

    async def stats(self, call: Call) -> StreamStats:
        """RTP/RTCP statistics of the call's audio stream (the last snapshot once ended)."""
        return stats_from_wire(await self._request("stats", {"call": call.id}))

    async def ping(self) -> dict[str, Any]:
        """The host's ``accounts``, live ``calls`` and ``sip_port`` (its UDP SIP port, to call
        it directly as ``sip:ACCOUNT@BIND:PORT`` without a PBX)."""
        return await self._request("ping", {})


def _command_error(reply: Reply) -> CommandError:
    return CommandError(reply.error, reply.kind)
