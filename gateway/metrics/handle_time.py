"""Handle time of one call from its saved timeline: pure, so every rule is unit-tested.

Why from the saved :class:`~gateway.calls.model.CallRecord`: the timeline already holds every
contact-centre fact in order (IVR, queue, ringing, answer, hold, transfer, hangup) with the
gateway's receipt times, so the figures need no second AMI consumer and can be recomputed for
any stored call. After-call work (ACW) is the only part that happens after the call: it opens
when the (last) agent's leg ends and closes when the agent submits the wrap-up or goes ready
(:func:`close_acw`); a forgotten wrap-up is closed at a configured maximum and flagged, so one
agent who walked away never turns a day's average handle time into nonsense.

Definitions (seconds):

* ``ivr_s``: sum of IVR stays (``ivr_enter`` .. ``ivr_leave``; an open stay ends at the first
  queue join, else at hangup).
* ``queue_wait_s``: sum of queue stays (``queue_join`` .. ``queue_leave``, or the agent's answer
  or the hangup if that came first).
* ``ring_s``: for each answer, from the last offer to that agent to the answer.
* ``hold_s``: the union of hold intervals (``hold_on`` .. ``hold_off`` per channel; a hold still
  open at the end of the talk ends there), within talk segments; ``hold_count`` how many holds.
* ``talk_s``: connected time (answer .. ``agent_complete`` or hangup) minus ``hold_s``.
* ``aht_s`` = ``talk_s + hold_s + acw_s`` once ACW has closed (None before, or if no agent).
* ``answered_within_sl``: answered and queue wait <= the queue's service-level seconds;
  None when the call never reached a queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.calls.model import CallRecord, Kind

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class HandleTime:
    linkedid: str
    started_at: datetime
    ended_at: datetime | None
    ivr_s: float
    queue_wait_s: float
    ring_s: float
    talk_s: float
    hold_s: float
    hold_count: int
    transfers: int
    queued: bool
    answered: bool
    abandoned: bool
    agent: str | None  # the last agent connected (queue member name)
    agent_endpoint: str | None  # that agent's phone, from the answered outbound leg
    service_level_s: float | None
    answered_within_sl: bool | None
    acw_started_at: datetime | None  # the agent's hangup; None: no agent, no ACW
    acw_ended_at: datetime | None = None
    acw_s: float | None = None
    acw_capped: bool = False

    @property
    def acw_open(self) -> bool:
        return self.acw_started_at is not None and self.acw_ended_at is None

    @property
    def aht_s(self) -> float | None:
        if self.acw_started_at is None or self.acw_s is None:
            return None
        return self.talk_s + self.hold_s + self.acw_s


def _secs(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def _union(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _clip(intervals: list[Interval], within: list[Interval]) -> list[Interval]:
    out = []
    for a, b in intervals:
        for c, d in within:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return _union(out)


def _total(intervals: list[Interval]) -> float:
    return sum(_secs(a, b) for a, b in intervals)


def handle_time(call: CallRecord, service_level_s: float | None = None) -> HandleTime:
    """Every figure except ACW's end; ``service_level_s`` is the call's queue's target."""
    tl = sorted(call.timeline, key=lambda e: e.at)  # stable: equal times keep their order
    end = call.ended_at or (tl[-1].at if tl else call.started_at)

    ivr: list[Interval] = []
    queue: list[Interval] = []
    talk: list[Interval] = []
    holds: list[Interval] = []
    ring = 0.0
    hold_count = 0
    ivr_open: datetime | None = None
    queue_open: datetime | None = None
    talk_open: datetime | None = None
    hold_open: dict[str, datetime] = {}
    offered: dict[str, datetime] = {}
    agent = None
    queued = answered = abandoned = False

    def close_holds(at: datetime) -> None:
        for ch, since in list(hold_open.items()):
            holds.append((since, at))
            del hold_open[ch]

    for ev in tl:
        k, d = ev.kind, ev.data
        if k is Kind.IVR_ENTER and ivr_open is None:
            ivr_open = ev.at
        elif k is Kind.IVR_LEAVE and ivr_open is not None:
            ivr.append((ivr_open, ev.at))
            ivr_open = None
        elif k is Kind.QUEUE_JOIN:
            queued = True
            if ivr_open is not None:
                ivr.append((ivr_open, ev.at))
                ivr_open = None
            if queue_open is None:
                queue_open = ev.at
        elif k is Kind.QUEUE_LEAVE:
            if queue_open is not None:
                queue.append((queue_open, ev.at))
                queue_open = None
            if d.get("abandoned"):
                abandoned = True
        elif k is Kind.AGENT_OFFERED:
            offered[str(d.get("agent"))] = ev.at
        elif k is Kind.AGENT_CONNECTED:
            who = str(d.get("agent"))
            if who in offered:
                ring += _secs(offered.pop(who), ev.at)
            if queue_open is not None:
                queue.append((queue_open, ev.at))
                queue_open = None
            if talk_open is None:
                talk_open = ev.at
            agent = d.get("agent") or agent
            answered = True
        elif k is Kind.AGENT_COMPLETE:
            if talk_open is not None:
                close_holds(ev.at)
                talk.append((talk_open, ev.at))
                talk_open = None
        elif k is Kind.HOLD_ON:
            ch = str(d.get("channel"))
            if ch not in hold_open:
                hold_open[ch] = ev.at
                hold_count += 1
        elif k is Kind.HOLD_OFF:
            ch = str(d.get("channel"))
            if ch in hold_open:
                holds.append((hold_open.pop(ch), ev.at))
    for opened, target in ((ivr_open, ivr), (queue_open, queue)):
        if opened is not None:
            target.append((opened, end))
    if talk_open is not None:
        talk.append((talk_open, end))
    close_holds(end)

    talk = _union(talk)
    hold = _clip(_union(holds), talk)
    hold_s = _total(hold)
    talk_s = max(0.0, _total(talk) - hold_s)
    queue_wait = _total(queue)
    within = None
    if queued and service_level_s is not None:
        within = answered and queue_wait <= service_level_s
    acw_start = talk[-1][1] if talk else None
    return HandleTime(
        linkedid=call.linkedid, started_at=call.started_at, ended_at=call.ended_at,
        ivr_s=_total(_union(ivr)), queue_wait_s=queue_wait, ring_s=ring, talk_s=talk_s,
        hold_s=hold_s, hold_count=hold_count, transfers=call.transfers, queued=queued,
        answered=answered, abandoned=abandoned and not answered, agent=agent,
        agent_endpoint=_agent_endpoint(call) if answered else None,
        service_level_s=service_level_s, answered_within_sl=within, acw_started_at=acw_start)


def _agent_endpoint(call: CallRecord) -> str | None:
    """The phone of the last answered outbound SIP leg: the agent who took the call."""
    legs = [leg for leg in call.legs if leg.direction == "outbound" and leg.endpoint
            and leg.answered_at is not None]
    return max(legs, key=lambda leg: leg.answered_at).endpoint if legs else None


def acw_span(started_at: datetime, at: datetime, max_s: float
             ) -> tuple[float, bool, datetime]:
    """(ACW seconds, capped, end) for after-call work from ``started_at`` closed at ``at``:
    at most ``max_s`` (then capped); a close before the start counts as zero."""
    span = _secs(started_at, at)
    if span >= max_s:
        return float(max_s), True, started_at + timedelta(seconds=max_s)
    return span, False, max(at, started_at)


def close_acw(ht: HandleTime, at: datetime, max_s: float) -> HandleTime:
    """ACW ends at ``at`` (wrap-up submitted or agent ready), at most ``max_s`` after it began.

    Closing twice keeps the first close; an ``at`` before the hangup (a ready click racing the
    hangup) counts as zero ACW.
    """
    if ht.acw_started_at is None or ht.acw_ended_at is not None:
        return ht
    acw, capped, ended = acw_span(ht.acw_started_at, at, max_s)
    return replace(ht, acw_s=acw, acw_capped=capped, acw_ended_at=ended)


def expire_acw(ht: HandleTime, now: datetime, max_s: float) -> HandleTime:
    """Close an ACW still open ``max_s`` after it began, at the maximum, flagged."""
    if ht.acw_open and _secs(ht.acw_started_at, now) >= max_s:  # type: ignore[arg-type]
        return close_acw(ht, now, max_s)
    return ht

