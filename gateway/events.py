"""Domain events on the gateway's bus (:mod:`gateway.bus`): the facts components share.

Each event is published by exactly one part and may be consumed by any; the publisher is named
in each docstring. Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.calls.model import CallRecord


@dataclass(frozen=True, slots=True)
class CallSaved:
    """Published by the service after a finished call's record is committed (rows exist)."""

    call: CallRecord


@dataclass(frozen=True, slots=True)
class IvrCompleted:
    """Published by the IVR runner when it hands a call to a queue (or gives up).

    ``via`` is how the intent was reached: ``speech``, ``dtmf``, ``fallback`` (no intent after
    the retries: the flow's fallback intent) or ``hangup`` (the caller left in the IVR).
    ``transcript`` is already masked (card-like digit runs).
    """

    linkedid: str
    channel_id: str
    flow: str
    language: str
    intent: str | None
    confidence: float | None
    via: str
    queue: str | None
    transcript: str | None
    transcript_id: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class WrapUpSubmitted:
    """Published by the CTI when an agent submits the wrap-up form: after-call work ends."""

    linkedid: str
    username: str
    endpoint: str | None
    disposition: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """Published by the CTI when an agent logs in/out, pauses or becomes ready.

    ``state`` is one of ``logged_out``, ``ready``, ``paused``, ``ringing``, ``on_call``,
    ``wrap_up``. Going ``ready`` after a call also ends its after-call work.
    """

    username: str
    endpoint: str | None
    state: str
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class MediaStats:
    """Published by a part that terminates RTP itself (the IVR's external media) when a stream
    ends: what the gateway measured as receiver, per RFC 3550. ``jitter_ms`` is the interarrival
    jitter estimate; ``lost`` counts sequence gaps; ``rtt_ms`` is None without RTCP."""

    linkedid: str
    uniqueid: str
    source: str
    codec: str
    packets: int
    lost: int
    jitter_ms_avg: float
    jitter_ms_max: float
    rtt_ms: float | None
    started_at: datetime
    ended_at: datetime
