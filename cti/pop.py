"""The screen pop: what an agent's desktop shows about a call while the phone is still ringing.

Why a per-call :class:`CallInfo` kept beside the call tracker: the customer and their history
are looked up once (prefetched when the caller joins a queue, or when the IVR finishes), so the
pop on ``AgentCalled`` is built from memory with no database round trip; the same info then
serves the connect/hold/transfer/hangup updates, the history checks of the API and the wrap-up,
and outlives the call until the last agent has wrapped it up.

A pop frame (JSON, ``type: "pop"``) carries::

    linkedid, agent, status (ringing | connected | wrap_up), queue, offered_at,
    caller {number, e164, status (ok | withheld | invalid), name},
    match (customer | unknown | withheld | loading), customer {id, name, segment, language,
    notes, phones} or null, ivr {intent, confidence, language, via, transcript} or null,
    history [last interactions, newest first], cases [open cases], repeat_contact, transfers,
    hold

``pop_end`` (``linkedid``, ``agent``, ``reason``) removes it from a desktop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cti.customers import CustomerContext
from cti.phones import Number, normalise


@dataclass
class CallInfo:
    linkedid: str
    number: Number
    caller_name: str | None
    started_at: datetime
    queue: str | None = None
    intent: str | None = None
    intent_confidence: float | None = None
    language: str | None = None
    ivr_via: str | None = None
    transcript_id: int | None = None
    transcript: str | None = None
    transfers: int = 0
    hold: bool = False
    ended: bool = False  # the call's last channel hung up
    saved: bool = False  # its interaction row was written from the call record
    ctx: CustomerContext | None = None
    lookup: asyncio.Task | None = None
    offered_at: dict[str, datetime] = field(default_factory=dict)  # agent -> first offer
    audited: set[tuple[str, str]] = field(default_factory=set)  # (username, via)
    _public: tuple | None = None  # (ctx, customer, history, cases) as plain dicts, built once

    @property
    def customer_id(self) -> int | None:
        c = self.ctx.customer if self.ctx else None
        return c.id if c else None

    @property
    def topic(self) -> str | None:
        return self.intent or self.queue

    def refresh(self, live) -> None:
        """Copy the tracker's live summary (``CallRecord``) while the call exists."""
        if live is None:
            return
        self.queue = live.queue or self.queue
        self.transfers = max(self.transfers, live.transfers)
        for f in ("intent", "intent_confidence", "language", "ivr_via", "transcript_id"):
            v = getattr(live, f)
            if v is not None:
                setattr(self, f, v)


def new_info(linkedid: str, caller_number: str | None, caller_name: str | None,
             started_at: datetime | None = None,
             aliases: dict[str, str] | None = None) -> CallInfo:
    """``aliases`` (``cti.caller_aliases``) map non-numeric caller IDs to the number they
    stand for (an internal extension's public number)."""
    n = normalise(caller_number)
    if n.status == "invalid" and aliases and caller_number in aliases:
        alias = normalise(aliases[caller_number])
        n = Number(alias.status, alias.e164, caller_number or "")
    return CallInfo(linkedid, n, caller_name, started_at or datetime.now(UTC))


def pop_payload(info: CallInfo, agent: str, status: str, window: timedelta) -> dict:
    n = info.number
    ctx = info.ctx
    if n.status == "withheld":
        match = "withheld"
    elif ctx is None:
        match = "loading"
    else:
        match = "customer" if ctx.customer is not None else "unknown"
    ivr = None
    if info.intent is not None or info.ivr_via is not None or info.transcript is not None:
        ivr = {"intent": info.intent, "confidence": info.intent_confidence,
               "language": info.language, "via": info.ivr_via, "transcript": info.transcript}
    offered = info.offered_at.get(agent)
    pub = info._public
    if pub is None or pub[0] is not ctx:
        pub = info._public = (ctx, ctx.customer.public() if ctx and ctx.customer else None,
                              [i.public() for i in ctx.last] if ctx else [],
                              [c.public() for c in ctx.cases] if ctx else [])
    return {
        "type": "pop", "linkedid": info.linkedid, "agent": agent, "status": status,
        "queue": info.queue, "offered_at": offered.isoformat() if offered else None,
        "caller": {"number": n.display, "e164": n.e164, "status": n.status,
                   "name": info.caller_name},
        "match": match,
        "customer": pub[1],
        "ivr": ivr,
        "history": pub[2],
        "cases": pub[3],
        "repeat_contact": bool(ctx and ctx.is_repeat(info.topic, info.started_at,
                                                     info.linkedid, window)),
        "transfers": info.transfers,
        "hold": info.hold,
    }
