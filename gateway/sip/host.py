"""The phone host: one process, one thread, one pjsua2 Endpoint, several SIP accounts.

Run as ``python -m gateway.sip.host`` and drive it with JSON lines (:mod:`gateway.sip.wire`) on
stdin; replies and events come back on stdout. :mod:`gateway.sip.client` does that for asyncio.

Why a process of its own: pjsua2 wants every call from one thread it polls itself
(``threadCnt=0``, ``mainThreadOnly``), aborts the whole process on some misuse, and must be torn
down in a strict order (calls, accounts, ``gc.collect()``, ``libDestroy``). Kept apart, a crash
is a dead child with an exit code, never a hung event loop.

Why stdout is duplicated first: pjlib prints to file descriptor 1 before any log configuration
applies; fd 1 is pointed at stderr so nothing but protocol lines reach the client.

Limits of the pjsua2-python 2.15.1 wheel (compile-time, measured): 8 accounts and 4 calls per
host, incoming and outgoing together (``maxCalls`` above 4 is silently capped). Going past the
account limit aborts pjsua, so the host refuses both limits itself with a clear error; more
calls need more hosts (see :mod:`gateway.sip.load`).
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import signal
import sys
import time
import traceback
import wave
from collections.abc import Callable
from typing import Any

from gateway.sip.model import CallState, MediaStatus
from gateway.sip.wire import (
    Command,
    EventMessage,
    LineSplitter,
    Reply,
    WireError,
    decode_command,
    encode,
)

MAX_ACCOUNTS = 8
MAX_CALLS = 4
PJ_ETOOMANY = 70010
SLOT_WAIT_S = 2.0
POLL_MS = 10
HANGUP_GRACE_S = 3.0

try:
    import pjsua2 as pj
except ImportError:  # reported when the host starts, as a clear exit message
    pj = None


class HostError(Exception):
    """A command that cannot be done; ``kind`` tells the client which error class to raise."""

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind


Emit = Callable[[str, dict[str, Any]], None]

_STATES = {}
_MEDIA = {}
if pj is not None:
    _STATES = {
        pj.PJSIP_INV_STATE_NULL: CallState.NULL, pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
        pj.PJSIP_INV_STATE_INCOMING: CallState.INCOMING, pj.PJSIP_INV_STATE_EARLY: CallState.EARLY,
        pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
        pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONFIRMED,
        pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
    }
    _MEDIA = {
        pj.PJSUA_CALL_MEDIA_NONE: MediaStatus.NONE, pj.PJSUA_CALL_MEDIA_ACTIVE: MediaStatus.ACTIVE,
        pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: MediaStatus.LOCAL_HOLD,
        pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: MediaStatus.REMOTE_HOLD,
        pj.PJSUA_CALL_MEDIA_ERROR: MediaStatus.ERROR,
    }
_DTMF_METHODS = {0: "rfc4733", 1: "sip_info"}
_BASE_CODECS = ("PCMU/8000", "PCMA/8000", "G722/16000")


def _pj_error(exc: Exception) -> str:
    reason = getattr(exc, "reason", "") or str(exc)
    title = getattr(exc, "title", "")
    return f"{reason} ({title})" if title else reason


def _guard(method: Callable) -> Callable:
    """A pjsua2 callback must never raise into C++: report the problem as an event instead."""

    def wrapper(self: Any, prm: Any) -> None:
        try:
            method(self, prm)
        except Exception:  # noqa: BLE001 - anything escaping here would abort or be lost
            self.host.problem(f"{method.__qualname__}: {traceback.format_exc(limit=3)}")

    wrapper.__name__ = method.__name__
    return wrapper


class _Account(pj.Account if pj else object):
    def __init__(self, host: Host, name: str, server: str, codec: str, auto_ring: bool) -> None:
        super().__init__()
        self.host = host
        self.name = name
        self.server = server  # "host:port" of the PBX
        self.codec = codec
        self.auto_ring = auto_ring

    @_guard
    def onRegState(self, prm: Any) -> None:
        self.host.emit("reg_state", {
            "account": self.name, "code": int(prm.code), "reason": str(prm.reason),
            "registered": prm.code // 100 == 2 and prm.expiration > 0,
            "expires": int(prm.expiration)})

    @_guard
    def onIncomingCall(self, prm: Any) -> None:
        call = _Call(self.host, self, "in", prm.callId)
        info = call.getInfo()
        call.report_state(info)  # "incoming" first, so the call is complete once announced
        self.host.emit("incoming_call", {"account": self.name, "call": call.cid,
                                         "remote_uri": info.remoteUri, "local_uri": info.localUri})
        if self.auto_ring:
            prm_ring = pj.CallOpParam()
            prm_ring.statusCode = 180
            call.answer(prm_ring)


class _Call(pj.Call if pj else object):
    def __init__(self, host: Host, acc: _Account, direction: str,
                 call_id: int | None = None) -> None:
        if call_id is None:
            super().__init__(acc)
        else:
            super().__init__(acc, call_id)
        self.host = host
        self.acc = acc
        self.direction = direction
        self.cid = host.new_id("c")
        self.state = CallState.NULL
        self.ended = False
        self.active_media = False
        self.media_status = MediaStatus.NONE
        self.final_stats: dict[str, Any] | None = None
        self.transferred = False
        host.calls[self.cid] = self

    def report_state(self, info: Any) -> None:
        state = _STATES.get(info.state, CallState.NULL)
        if state is self.state and state is not CallState.EARLY:
            return
        self.state = state
        self.host.emit("call_state", {
            "account": self.acc.name, "call": self.cid, "state": state.value,
            "code": int(info.lastStatusCode), "reason": str(info.lastReason)})
        if state is CallState.DISCONNECTED:
            self.ended = True
            self.host.call_ended(self)

    @_guard
    def onCallState(self, prm: Any) -> None:
        self.report_state(self.getInfo())

    @_guard
    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, med in enumerate(info.media):
            if med.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = _MEDIA.get(med.status, MediaStatus.ERROR)
            codec = ""
            if status in (MediaStatus.ACTIVE, MediaStatus.LOCAL_HOLD, MediaStatus.REMOTE_HOLD):
                try:
                    si = self.getStreamInfo(i)
                    codec = f"{si.codecName}/{si.codecClockRate}"
                except pj.Error:
                    codec = ""
            self.media_status = status
            if status is MediaStatus.ACTIVE:
                self.active_media = True
                self.host.reconnect_media(self)
            self.host.emit("media_state", {"account": self.acc.name, "call": self.cid,
                                           "status": status.value, "codec": codec})
            break

    @_guard
    def onStreamDestroyed(self, prm: Any) -> None:
        try:
            self.final_stats = self.host.stream_stats(self, prm.streamIdx, final=True)
        except pj.Error:
            pass

    @_guard
    def onDtmfEvent(self, prm: Any) -> None:
        if prm.flags & 2 == 0:  # PJMEDIA_STREAM_DTMF_IS_END: report each digit once, when done
            return
        self.host.emit("dtmf", {"account": self.acc.name, "call": self.cid,
                                "digit": str(prm.digit),
                                "method": _DTMF_METHODS.get(prm.method, str(prm.method)),
                                "duration_ms": int(prm.duration)})

    @_guard
    def onCallTransferStatus(self, prm: Any) -> None:
        """A blind transfer that succeeded leaves us to hang up, as a desk phone does."""
        self.host.emit("transfer_status", {
            "account": self.acc.name, "call": self.cid, "code": int(prm.statusCode),
            "reason": str(prm.reason), "final": bool(prm.finalNotify)})
        if prm.finalNotify and 200 <= prm.statusCode < 300:
            self.transferred = True
        prm.cont = True


class _Player(pj.AudioMediaPlayer if pj else object):
    """``onEof2`` runs on pjmedia's clock thread: it only sets a flag the main loop reads."""

    def __init__(self, pid: str, call: _Call) -> None:
        super().__init__()
        self.pid = pid
        self.cid = call.cid  # the id, never the Call: see Host.call_ended
        self.account = call.acc.name
        self.eof = False

    def onEof2(self) -> None:
        self.eof = True


def _wav_seconds(path: str) -> float:
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (OSError, wave.Error, EOFError, ZeroDivisionError):
        return 0.0


class Host:
    """Everything the commands do, on the pjsua2 thread. ``emit`` writes one event line."""

    def __init__(self, emit: Emit, *, bind: str = "127.0.0.1", clock_rate: int = 16000,
                 log_level: int = 0, user_agent: str = "Centralino-Softphone",
                 log_file: str = "") -> None:
        self._emit = emit
        self.bind = bind
        self.clock_rate = clock_rate
        self.log_level = log_level
        self.log_file = log_file
        self.user_agent = user_agent
        self.ep: Any = None
        self.accounts: dict[str, _Account] = {}
        self.calls: dict[str, _Call] = {}
        self.ended: dict[str, dict[str, Any]] = {}  # call id -> final facts (stats, recording)
        self.players: dict[str, _Player] = {}
        self.recorders: dict[str, tuple[Any, str]] = {}  # call id -> (recorder, path)
        self.stopping = False
        self.shutdown_id: int | None = None  # the shutdown command, answered after libDestroy
        self._ids = 0
        self._codecs: list[str] = []
        self.sip_port = 0

    # -- plumbing ------------------------------------------------------------------------------
    def emit(self, event: str, data: dict[str, Any]) -> None:
        self._emit(event, data)

    def problem(self, message: str) -> None:
        self.emit("host_problem", {"message": message})

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = self.user_agent
        cfg.logConfig.level = 5 if self.log_file else self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        if self.log_file:
            cfg.logConfig.filename = self.log_file
        cfg.medConfig.noVad = True  # keep RTP flowing through silence, as a real phone line does
        cfg.medConfig.clockRate = self.clock_rate
        cfg.medConfig.sndClockRate = self.clock_rate
        cfg.medConfig.ecTailLen = 0
        # The null sound device is the conference bridge's only clock: no clock, no RTP sent.
        # pjsua closes it 1 s after the host last had no call (``snd_auto_close_time``) and
        # does not cancel that timer when a call starts, so a call placed or answered within
        # that second stopped sending after the rest of it (~43 packets). Never close it.
        cfg.medConfig.sndAutoCloseTime = -1
        ep.libInit(cfg)
        self.ep = ep
        tcfg = pj.TransportConfig()
        tcfg.port = 0
        tcfg.boundAddress = self.bind
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.sip_port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._codecs = [c.codecId for c in ep.codecEnum2()]
        self._use_codec(None)

    def poll(self, ms: int = POLL_MS) -> None:
        self.ep.libHandleEvents(ms)

    def tick(self) -> None:
        """Deferred work that pjsua2 forbids inside its callbacks (deleting media objects)."""
        for pid in [p for p, pl in self.players.items() if pl.eof or pl.cid not in self.calls]:
            self._finish_player(pid, completed=self.players[pid].eof)
        for cid in [c for c in self.recorders if c not in self.calls]:
            self.ended.setdefault(cid, {"stats": None})["recording"] = self._stop_recorder(cid)
        for cid in [c for c, call in self.calls.items() if call.transferred]:
            self.calls[cid].transferred = False
            self._hangup_cid(cid)

    def call_ended(self, call: _Call) -> None:
        """Runs inside the DISCONNECTED callback: the one moment a pjsua2 Call may be deleted.

        pjsua2 keeps a Call's slot id after DISCONNECTED and pjsua reuses a freed slot at once,
        so deleting the object any later would clear (and hang up) whichever new call took the
        slot. The last reference goes here; everything else refers to calls by their id.
        """
        stats = call.final_stats
        if call.active_media:
            try:
                stats = self.stream_stats(call, final=True)
            except (pj.Error, HostError):
                pass
        self.ended[call.cid] = {"stats": stats, "recording": None}
        self.calls.pop(call.cid, None)

    def shutdown(self) -> None:
        """Hang up, stop media, delete calls, shut accounts down, then ``libDestroy``.

        No local variable may keep a Call or player alive past ``libDestroy`` (pjsua would
        abort in the destructor), hence the small helpers whose frames end before it.
        """
        if self.ep is None:
            return
        for pid in list(self.players):
            self._finish_player(pid, completed=False)
        self._hangup(list(self.calls))
        for cid in list(self.recorders):
            self._stop_recorder(cid)
        self._drop_accounts(list(self.accounts))
        gc.collect()
        self.ep.libDestroy()
        self.ep = None

    def _hangup(self, cids: list[str]) -> None:
        """Hang these calls up and give the BYEs a moment; calls that do not end are dropped."""
        for cid in cids:
            self._hangup_cid(cid)
        deadline = time.monotonic() + HANGUP_GRACE_S
        while time.monotonic() < deadline and any(c in self.calls for c in cids):
            self.poll(20)
        for cid in cids:
            self.calls.pop(cid, None)  # still ours: its destructor hangs it up
        gc.collect()

    def _hangup_cid(self, cid: str) -> None:
        """By id, so no frame of ours holds the Call once it has disconnected."""
        call = self.calls.get(cid)
        if call is not None and not call.ended:
            try:
                call.hangup(pj.CallOpParam())
            except pj.Error:
                pass

    def _drop_accounts(self, names: list[str]) -> None:
        for name in names:
            self.accounts.pop(name).shutdown()
        gc.collect()

    # -- helpers -------------------------------------------------------------------------------
    def _account(self, args: dict[str, Any]) -> _Account:
        name = _arg(args, "account", str)
        acc = self.accounts.get(name)
        if acc is None:
            raise HostError(f"no account {name!r} in this phone host", "not_found")
        return acc

    def _call(self, args: dict[str, Any]) -> _Call:
        cid = _arg(args, "call", str)
        call = self.calls.get(cid)
        if call is None or call.ended:
            state = "has ended" if cid in self.ended else "is unknown"
            raise HostError(f"call {cid} {state}", "call_gone")
        return call

    def _codec_id(self, codec: str) -> str:
        for cid in self._codecs:
            if cid == codec or cid.startswith(codec + "/") or cid.split("/")[0] == codec:
                return cid
        raise HostError(f"codec {codec!r} is not available; have {', '.join(self._codecs)}",
                        "bad_args")

    def _use_codec(self, codec: str | None) -> None:
        """Codec priorities are global in pjsua, and a PBX answers in its own order whatever
        ours is; so an account's offer (INVITE, hold, unhold, built synchronously) carries its
        one codec only, and in between the host answers offers with G.711 and G.722."""
        chosen = self._codec_id(codec) if codec else None
        base = [self._codec_id(c) for c in _BASE_CODECS]
        for cid in self._codecs:
            if chosen is not None:
                prio = 255 if cid == chosen else 0
            else:
                prio = 200 - base.index(cid) if cid in base else 0
            self.ep.codecSetPriority(cid, prio)

    def _uri(self, acc: _Account, target: str) -> str:
        if target.startswith(("sip:", "sips:")):
            return target
        return f"sip:{target}@{acc.server}"

    def _audio(self, call: _Call) -> Any:
        try:
            return call.getAudioMedia(-1)
        except pj.Error as exc:
            raise HostError(f"call {call.cid} has no active audio yet ({_pj_error(exc)})",
                            "no_media") from None

    def reconnect_media(self, call: _Call) -> None:
        """A re-INVITE may rebuild the stream's conference port: rewire player and recorder."""
        try:
            am = call.getAudioMedia(-1)
        except pj.Error:
            return
        for player in self.players.values():
            if player.cid == call.cid:
                player.startTransmit(am)
        if call.cid in self.recorders:
            am.startTransmit(self.recorders[call.cid][0])

    def stream_stats(self, call: _Call, idx: int = -1, *, final: bool = False) -> dict[str, Any]:
        if idx < 0:
            info = call.getInfo()
            idx = next((i for i, m in enumerate(info.media)
                        if m.type == pj.PJMEDIA_TYPE_AUDIO), -1)
            if idx < 0:
                raise HostError(f"call {call.cid} has no audio stream", "no_media")
        st = call.getStreamStat(idx)
        si = call.getStreamInfo(idx)
        rt = st.rtcp
        start = rt.start.sec + rt.start.msec / 1000.0
        return {
            "codec": f"{si.codecName}/{si.codecClockRate}",
            "rx_packets": int(rt.rxStat.pkt), "rx_bytes": int(rt.rxStat.bytes),
            "rx_lost": int(rt.rxStat.loss), "rx_discarded": int(rt.rxStat.discard),
            "rx_jitter_ms": rt.rxStat.jitterUsec.mean / 1000.0,
            "rx_jitter_max_ms": rt.rxStat.jitterUsec.max / 1000.0 if rt.rxStat.jitterUsec.n else 0.0,
            "tx_packets": int(rt.txStat.pkt), "tx_bytes": int(rt.txStat.bytes),
            "tx_loss": int(rt.txStat.loss), "tx_jitter_ms": rt.txStat.jitterUsec.mean / 1000.0,
            "rtt_ms": rt.rttUsec.mean / 1000.0,
            "rtt_max_ms": rt.rttUsec.max / 1000.0 if rt.rttUsec.n else 0.0,
            "rtcp_reports": int(rt.txStat.updateCount),
            "duration_s": round(max(0.0, time.time() - start), 3) if start > 0 else 0.0,
            "final": final,
        }

    def _finish_player(self, pid: str, *, completed: bool) -> None:
        player = self.players.pop(pid)
        self.emit("playback_done", {"account": player.account, "call": player.cid,
                                    "playback": pid, "completed": completed})
        del player
        gc.collect()

    def _stop_recorder(self, cid: str) -> dict[str, Any]:
        rec, path = self.recorders.pop(cid)
        del rec
        gc.collect()
        self._await_wav_closed(path)
        size = os.path.getsize(path) if os.path.exists(path) else 0
        return {"call": cid, "path": path, "duration_s": round(_wav_seconds(path), 3),
                "bytes": size}

    def _await_wav_closed(self, path: str, timeout: float = 2.0) -> None:
        """pjmedia's conference bridge removes ports asynchronously (since 2.14): the WAV header
        is written on the clock thread a tick or two after the recorder is destroyed. Keep pjsua
        polled until the RIFF size matches the file."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(8)
                    size = os.fstat(fh.fileno()).st_size
                if len(head) == 8 and int.from_bytes(head[4:8], "little") == size - 8:
                    return
            except OSError:
                return
            self.poll(5)
        self.problem(f"recording {path} was not finalised within {timeout:g} s")

    # -- commands ------------------------------------------------------------------------------
    def handle(self, cmd: Command) -> dict[str, Any]:
        fn = getattr(self, f"cmd_{cmd.cmd}", None)
        if fn is None:
            names = sorted([n[4:] for n in dir(self) if n.startswith("cmd_")] + ["shutdown"])
            raise HostError(f"unknown command {cmd.cmd!r}; known: {', '.join(names)}",
                            "unknown_command")
        try:
            return fn(cmd.args) or {}
        except pj.Error as exc:
            raise HostError(f"{cmd.cmd}: {_pj_error(exc)}", "pjsua") from None

    def cmd_ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"accounts": sorted(self.accounts), "calls": sorted(self.calls),
                "sip_port": self.sip_port}

    def cmd_add_account(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _arg(args, "account", str)
        password = _arg(args, "password", str)
        server_host = _arg(args, "host", str)
        port = _arg(args, "port", int)
        register = _arg(args, "register", bool, True)
        codec = _arg(args, "codec", str, "PCMU/8000")
        user = _arg(args, "user", str, name)
        expires = _arg(args, "expires", int, 300)
        auto_ring = _arg(args, "auto_ring", bool, True)
        if name in self.accounts:
            raise HostError(f"account {name!r} already exists in this phone host", "exists")
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise HostError(f"a phone host holds at most {MAX_ACCOUNTS} accounts (pjsua2 wheel "
                            "limit); start another host", "limit")
        self._codec_id(codec)
        server = f"{server_host}:{port}"
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{user}@{server}"
        if register:
            ac.regConfig.registrarUri = f"sip:{server}"
            ac.regConfig.timeoutSec = expires
            ac.regConfig.retryIntervalSec = 0  # a refused registration is reported, not retried
        ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        ac.natConfig.contactRewriteUse = 0
        ac.natConfig.viaRewriteUse = 0
        ac.natConfig.sdpNatRewriteUse = 0
        ac.natConfig.sipOutboundUse = 0
        ac.mediaConfig.transportConfig.boundAddress = self.bind
        acc = _Account(self, name, server, codec, auto_ring)
        acc.create(ac)
        self.accounts[name] = acc
        return {"account": name, "uri": ac.idUri}

    def cmd_unregister(self, args: dict[str, Any]) -> dict[str, Any]:
        self._account(args).setRegistration(False)
        return {}

    def cmd_remove_account(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._account(args).name
        self._hangup([cid for cid, c in self.calls.items() if c.acc.name == name])
        self._drop_accounts([name])
        return {}

    def cmd_call(self, args: dict[str, Any]) -> dict[str, Any]:
        """INVITE. pjsua frees a call slot a little after DISCONNECTED (its media is torn down
        on the clock thread), so a full host with fewer than the maximum of live calls keeps
        polling for up to ``SLOT_WAIT_S`` before it refuses."""
        acc = self._account(args)
        uri = self._uri(acc, _arg(args, "number", str))
        deadline = time.monotonic() + SLOT_WAIT_S
        while True:
            call = _Call(self, acc, "out")
            try:
                self._use_codec(acc.codec)
                call.makeCall(uri, pj.CallOpParam(True))
                return {"call": call.cid, "uri": uri}
            except pj.Error as exc:
                self.calls.pop(call.cid, None)
                if getattr(exc, "status", 0) != PJ_ETOOMANY:
                    raise
            finally:
                self._use_codec(None)
            live = sum(not c.ended for c in self.calls.values())
            if live >= MAX_CALLS or time.monotonic() > deadline:
                raise HostError(
                    f"a phone host carries at most {MAX_CALLS} calls at once (pjsua2 wheel "
                    f"limit, incoming calls included; {live} live here, the rest still "
                    "closing); start another host", "limit")
            self.poll(10)

    def cmd_answer(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        prm = pj.CallOpParam()
        prm.statusCode = _arg(args, "code", int, 200)
        call.answer(prm)
        return {}

    def cmd_hangup(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        prm = pj.CallOpParam()
        code = _arg(args, "code", int, 0)
        if code:
            prm.statusCode = code
        call.hangup(prm)
        return {}

    def cmd_hold(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        try:
            self._use_codec(call.acc.codec)
            call.setHold(pj.CallOpParam(True))
        finally:
            self._use_codec(None)
        return {}

    def cmd_unhold(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        try:
            self._use_codec(call.acc.codec)
            call.reinvite(prm)
        finally:
            self._use_codec(None)
        return {}

    def cmd_transfer(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        uri = self._uri(call.acc, _arg(args, "target", str))
        call.xfer(uri, pj.CallOpParam(True))
        return {"uri": uri}

    def cmd_transfer_replaces(self, args: dict[str, Any]) -> dict[str, Any]:
        """Attended transfer: REFER the far end of ``call`` to the far end of ``consult``, which
        it replaces (RFC 3891). Both calls must be this host's, the first one usually on hold."""
        call = self._call(args)
        consult = self._call({"call": _arg(args, "consult", str)})
        if consult is call:
            raise HostError("an attended transfer needs two different calls", "bad_args")
        call.xferReplaces(consult, pj.CallOpParam(True))
        return {}

    def cmd_dtmf(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        digits = _arg(args, "digits", str)
        bad = sorted(set(digits) - set("0123456789*#ABCDabcd"))
        if not digits or bad:
            raise HostError(f"DTMF digits must be 0-9, *, #, A-D; got {digits!r}", "bad_args")
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.duration = _arg(args, "duration_ms", int, 160)
        call.sendDtmf(prm)
        return {}

    def cmd_play(self, args: dict[str, Any]) -> dict[str, Any]:
        call = self._call(args)
        path = _arg(args, "path", str)
        am = self._audio(call)
        playing = [p.pid for p in self.players.values() if p.cid == call.cid]
        if playing:
            raise HostError(f"call {call.cid} is already playing {playing[0]}", "busy")
        player = _Player(self.new_id("p"), call)
        try:
            player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as exc:
            raise HostError(f"cannot play {path}: {_pj_error(exc)}", "bad_args") from None
        player.startTransmit(am)
        self.players[player.pid] = player
        return {"playback": player.pid, "duration_s": round(_wav_seconds(path), 3)}

    def cmd_stop_play(self, args: dict[str, Any]) -> dict[str, Any]:
        pid = _arg(args, "playback", str)
        if pid in self.players:
            self._finish_player(pid, completed=False)
        return {}

    def cmd_record_start(self, args: dict[str, Any]) -> dict[str, Any]:
        """Record what the call receives; before the call has audio, from when it has."""
        call = self._call(args)
        path = _arg(args, "path", str)
        if call.cid in self.recorders:
            raise HostError(f"call {call.cid} is already recording to "
                            f"{self.recorders[call.cid][1]}", "busy")
        rec = pj.AudioMediaRecorder()
        try:
            rec.createRecorder(path)
        except pj.Error as exc:
            raise HostError(f"cannot record to {path}: {_pj_error(exc)}", "bad_args") from None
        self.recorders[call.cid] = (rec, path)
        if call.media_status is MediaStatus.ACTIVE:
            self.reconnect_media(call)
        return {"path": path}

    def cmd_record_stop(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = _arg(args, "call", str)
        if cid in self.recorders:
            info = self._stop_recorder(cid)
            if cid not in self.calls:
                self.ended.setdefault(cid, {"stats": None})["recording"] = info
            return info
        done = self.ended.get(cid, {}).get("recording")
        if done is not None:
            return done
        raise HostError(f"call {cid} is not recording", "not_found")

    def cmd_stats(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = _arg(args, "call", str)
        call = self.calls.get(cid)
        if call is not None and call.active_media:
            return self.stream_stats(call)
        final = self.ended.get(cid, {}).get("stats")
        if final is not None:
            return final
        if call is None and cid not in self.ended:
            raise HostError(f"call {cid} is unknown", "call_gone")
        raise HostError(f"call {cid} has no audio stream (yet)", "no_media")


_MISSING = object()


def _arg(args: dict[str, Any], key: str, typ: type, default: Any = _MISSING) -> Any:
    if key not in args:
        if default is _MISSING:
            raise HostError(f"missing argument {key!r}", "bad_args")
        return default
    value = args[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise HostError(f"argument {key!r} must be {typ.__name__}, got {value!r}", "bad_args")
    return value


def serve(host: Host, infd: int, write: Callable[[bytes], None]) -> None:
    """Poll pjsua and stdin in turn until shutdown, stdin EOF or SIGTERM."""
    splitter = LineSplitter()
    os.set_blocking(infd, False)
    while not host.stopping:
        host.poll()
        while True:
            ready, _, _ = select.select([infd], [], [], 0)
            if not ready:
                break
            try:
                data = os.read(infd, 1 << 16)
            except BlockingIOError:
                break
            if not data:  # the client is gone: tidy up and leave
                host.stopping = True
                break
            for item in splitter.feed(data):
                if isinstance(item, WireError):
                    host.problem(str(item))
                    continue
                lineno, raw = item
                try:
                    cmd = decode_command(raw, lineno)
                except WireError as exc:
                    if exc.id is not None:
                        write(encode(Reply(exc.id, False, error=str(exc), kind="bad_message")))
                    else:
                        host.problem(str(exc))
                    continue
                _run(host, cmd, write)
                if host.stopping:
                    break
        host.tick()


def _run(host: Host, cmd: Command, write: Callable[[bytes], None]) -> None:
    if cmd.cmd == "shutdown":  # answered once everything is torn down, then the host exits
        host.stopping = True
        host.shutdown_id = cmd.id
        return
    try:
        result = host.handle(cmd)
        reply = Reply(cmd.id, True, result=result)
    except HostError as exc:
        reply = Reply(cmd.id, False, error=str(exc), kind=exc.kind)
    except Exception as exc:  # noqa: BLE001 - a bug in one command must not kill every call
        reply = Reply(cmd.id, False, error=f"{cmd.cmd}: internal error: {exc!r}", kind="internal")
        print(traceback.format_exc(), file=sys.stderr)
    write(encode(reply))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.sip.host", description=__doc__.split("\n")[0])
    ap.add_argument("--bind", default="127.0.0.1", help="address for SIP and RTP sockets")
    ap.add_argument("--clock-rate", type=int, default=16000, choices=(8000, 16000, 32000, 48000))
    ap.add_argument("--log-level", type=int, default=0, help="pjsua log level 0-6, to stderr")
    ap.add_argument("--log-file", default="",
                    help="also write pjsua's log at level 5 (SIP messages) to this file")
    opts = ap.parse_args(argv)

    # Only protocol lines may reach the client: keep the real stdout, point fd 1 at stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = os.fdopen(out_fd, "wb", buffering=0)
    broken = False

    def write(line: bytes) -> None:
        nonlocal broken
        if broken:
            return
        try:
            out.write(line)
        except (BrokenPipeError, OSError):
            broken = True
            host.stopping = True

    def emit(event: str, data: dict[str, Any]) -> None:
        write(encode(EventMessage(event, data)))

    if pj is None:
        print("pjsua2 is not installed: pip install 'centralino[sip]' (pjsua2-python)",
              file=sys.stderr)
        return 3
    host = Host(emit, bind=opts.bind, clock_rate=opts.clock_rate, log_level=opts.log_level,
                log_file=opts.log_file)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the client, which closes us
    signal.signal(signal.SIGTERM, lambda *_: setattr(host, "stopping", True))
    try:
        host.start()
    except pj.Error as exc:
        print(f"pjsua2 failed to start: {_pj_error(exc)}", file=sys.stderr)
        return 3
    emit("ready", {"pid": os.getpid(), "pjsua": host.ep.libVersion().full,
                   "max_accounts": MAX_ACCOUNTS, "max_calls": MAX_CALLS,
                   "clock_rate": opts.clock_rate})
    try:
        serve(host, 0, write)
    finally:
        host.shutdown()
    if host.shutdown_id is not None:
        write(encode(Reply(host.shutdown_id, True, result={})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
