"""Typed call records: one record per call (Asterisk ``linkedid``), its legs and its timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Kind(str, Enum):
    START = "start"
    IVR_ENTER = "ivr_enter"
    IVR_LEAVE = "ivr_leave"
    QUEUE_JOIN = "queue_join"
    QUEUE_LEAVE = "queue_leave"
    AGENT_OFFERED = "agent_offered"
    AGENT_CONNECTED = "agent_connected"
    AGENT_COMPLETE = "agent_complete"
    HOLD_ON = "hold_on"
    HOLD_OFF = "hold_off"
    TRANSFER = "transfer"
    END = "end"
    HANGUP = "hangup"


@dataclass(slots=True)
class CallEvent:
    at: datetime
    kind: Kind
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Leg:
    uniqueid: str
    channel: str
    endpoint: str | None
    direction: str  # inbound | outbound | local
    started_at: datetime
    codec: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None


@dataclass(slots=True)
class CallRecord:
    linkedid: str
    started_at: datetime
    caller_number: str | None = None
    caller_name: str | None = None
    dialled: str | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    # Summary, kept in step with the timeline so dashboards need no timeline scan:
    queue: str | None = None  # the last queue the caller joined
    agent: str | None = None  # the last agent connected (queue member name)
    transfers: int = 0
    intent: str | None = None  # from the IVR (None: no intent, or no IVR)
    intent_confidence: float | None = None
    language: str | None = None
    ivr_via: str | None = None  # speech | dtmf | fallback | hangup
    transcript_id: int | None = None
    legs: list[Leg] = field(default_factory=list)
    timeline: list[CallEvent] = field(default_factory=list)

    def leg(self, uniqueid: str) -> Leg | None:
        return next((l for l in self.legs if l.uniqueid == uniqueid), None)
