"""Typed events and statistics of the SIP phones, shared by the host and the asyncio client.

Why separate from the wire: the JSON ``data`` of an event is converted exactly once, here, into
frozen dataclasses; test code, load benches and CTI never handle raw dicts.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from gateway.sip.wire import WireError


class CallState(StrEnum):
    """pjsip INVITE session states, in the order a call goes through them."""

    NULL = "null"
    CALLING = "calling"
    INCOMING = "incoming"
    EARLY = "early"
    CONNECTING = "connecting"
    CONFIRMED = "confirmed"
    DISCONNECTED = "disconnected"


class MediaStatus(StrEnum):
    NONE = "none"
    ACTIVE = "active"
    LOCAL_HOLD = "local_hold"  # we sent sendonly (we put the other side on hold)
    REMOTE_HOLD = "remote_hold"  # the other side put us on hold
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class HostReady:
    pid: int
    pjsua: str
    max_accounts: int
    max_calls: int
    clock_rate: int


@dataclass(frozen=True, slots=True)
class RegState:
    account: str
    code: int
    reason: str
    registered: bool
    expires: int


@dataclass(frozen=True, slots=True)
class IncomingCall:
    account: str
    call: str
    remote_uri: str
    local_uri: str


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    account: str
    call: str
    state: CallState
    code: int  # last SIP status code seen on the INVITE session (0 before any)
    reason: str


@dataclass(frozen=True, slots=True)
class MediaStateChanged:
    account: str
    call: str
    status: MediaStatus
    codec: str  # e.g. "PCMU/8000"; "" when no stream


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    account: str
    call: str
    digit: str
    method: str  # "rfc4733", "sip_info" or "inband"
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    account: str
    call: str
    playback: str
    completed: bool  # False when the call ended or the playback was stopped first


@dataclass(frozen=True, slots=True)
class TransferStatus:
    account: str
    call: str
    code: int  # status of the transfer as NOTIFYed by the peer (sipfrag), e.g. 100, 200, 503
    reason: str
    final: bool


@dataclass(frozen=True, slots=True)
class HostProblem:
    """Something went wrong inside the host outside any command (a callback, a bad line)."""

    message: str


PhoneEvent = (RegState | IncomingCall | CallStateChanged | MediaStateChanged | DtmfReceived
              | PlaybackFinished | TransferStatus | HostProblem | HostReady)


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One audio stream of a call, from pjmedia's RTP/RTCP counters.

    ``rx_*`` is what this phone received and measured itself; ``tx_loss`` and ``tx_jitter_ms``
    are what the far end reported about our stream in its RTCP receiver reports, so they stay 0
    until the first report arrives (``rtcp_reports``). ``final`` is True for the snapshot taken as
    the stream was torn down (a call that has ended). pjsua rebuilds a stream on some
    re-INVITEs (e.g. unhold on the side that held), which restarts its counters.
    """

    codec: str
    rx_packets: int
    rx_bytes: int
    rx_lost: int
    rx_discarded: int
    rx_jitter_ms: float  # mean interarrival jitter (RFC 3550)
    rx_jitter_max_ms: float
    tx_packets: int
    tx_bytes: int
    tx_loss: int
    tx_jitter_ms: float
    rtt_ms: float  # mean round-trip time from RTCP; 0 until measured
    rtt_max_ms: float
    rtcp_reports: int
    duration_s: float
    final: bool = False

    @property
    def rx_loss_ratio(self) -> float:
        expected = self.rx_packets + self.rx_lost
        return self.rx_lost / expected if expected else 0.0


@dataclass(frozen=True, slots=True)
class Recording:
    call: str
    path: str
    duration_s: float
    bytes: int


_EVENTS: dict[str, type] = {
    "ready": HostReady,
    "reg_state": RegState,
    "incoming_call": IncomingCall,
    "call_state": CallStateChanged,
    "media_state": MediaStateChanged,
    "dtmf": DtmfReceived,
    "playback_done": PlaybackFinished,
    "transfer_status": TransferStatus,
    "host_problem": HostProblem,
}
_NAMES = {cls: name for name, cls in _EVENTS.items()}
_CONVERT = {CallState: CallState, MediaStatus: MediaStatus}


def event_name(ev: PhoneEvent) -> str:
    return _NAMES[type(ev)]


def to_data(obj: Any) -> dict[str, Any]:
    """A dataclass as plain JSON-able dict (enums become their string values)."""
    return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(obj).items()}


def _build(cls: type, data: dict[str, Any], what: str) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is not MISSING:
                continue
            raise WireError(f"{what}: missing field '{f.name}'")
        value = data[f.name]
        ftype = _TYPES.get(f.type) if isinstance(f.type, str) else f.type
        try:
            if ftype in _CONVERT:
                value = _CONVERT[ftype](value)
            elif ftype is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif ftype is not None and (not isinstance(value, ftype)
                                        or ftype is int and isinstance(value, bool)):
                raise TypeError(f"expected {ftype.__name__}, got {type(value).__name__}")
        except (TypeError, ValueError) as exc:
            raise WireError(f"{what}: bad field '{f.name}' ({exc})") from None
        kwargs[f.name] = value
    return cls(**kwargs)


_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool,
                           "CallState": CallState, "MediaStatus": MediaStatus}


def event_from_wire(name: str, data: dict[str, Any]) -> PhoneEvent | None:
    """The typed event for a wire event; ``None`` for an event name this version does not know.

    A known event with missing or mistyped fields raises :class:`WireError`.
    """
    cls = _EVENTS.get(name)
    if cls is None:
        return None
    return _build(cls, data, f"event {name!r}")


def stats_from_wire(data: dict[str, Any]) -> StreamStats:
    return _build(StreamStats, data, "stats")


def recording_from_wire(data: dict[str, Any]) -> Recording:
    return _build(Recording, data, "recording")
