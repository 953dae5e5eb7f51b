"""Close or rebuild call records from Asterisk's CEL trail: pure functions, no I/O.

Two cases, both ending with exactly one record per call:

- the gateway saw a call start, then lost AMI; the call's channels are gone at reconnect:
  :func:`close_from_cel` sets the real end time, per-leg ends and hangup causes from CEL, or,
  when CEL has nothing (Asterisk itself crashed), ends it when the link was lost, said so in the
  record (``reconciled: link_lost``) because the true end is unknowable;
- the call started and ended entirely while the gateway was away: :func:`record_from_cel`
  builds the record from CEL alone (``reconciled: cel``).
"""

from __future__ import annotations

from datetime import datetime

from gateway.calls.cel import CelEvent
from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.calls.tracker import PLUMBING_PREFIX, _endpoint

_NO_NUMBER = ("", "<unknown>", None)


def _cause(e: CelEvent) -> int | None:
    c = e.extra.get("hangupcause")
    try:
        return int(c) if c is not None else None
    except (TypeError, ValueError):
        return None


def close_from_cel(call: CallRecord, events: list[CelEvent], link_lost_at: datetime) -> CallRecord:
    """``call`` was closed by a resync; give it its true end (mutates and returns it)."""
    ends = [e for e in events if e.event in ("CHAN_END", "LINKEDID_END", "HANGUP")]
    by_leg: dict[str, CelEvent] = {}
    for e in events:
        if e.event == "HANGUP":
            by_leg[e.uniqueid] = e
    if ends:
        end = max(e.at for e in ends)
        for leg in call.legs:
            h = by_leg.get(leg.uniqueid)
            leg_end = next((e.at for e in reversed(events)
                            if e.uniqueid == leg.uniqueid and e.event == "CHAN_END"), None)
            if h is not None:
                leg.hangup_cause = _cause(h)
            if leg_end is not None:  # the resync's end was a placeholder: the trail knows better
                leg.ended_at = leg_end
            if leg.answered_at is None:
                ans = next((e.at for e in events
                            if e.uniqueid == leg.uniqueid and e.event == "ANSWER"), None)
                leg.answered_at = ans
        how = "cel"
    else:
        end = link_lost_at
        for leg in call.legs:
            if leg.ended_at is None or leg.ended_at > end:
                leg.ended_at = end
        how = "link_lost"
    first = call.legs[0] if call.legs else None
    call.hangup_cause = first.hangup_cause if first is not None else None
    call.ended_at = end
    tail = [e for e in call.timeline if e.kind in (Kind.HANGUP, Kind.END)]
    call.timeline = [e for e in call.timeline if e not in tail]
    data = {"reconciled": how}
    if call.hangup_cause is not None:
        data["cause"] = call.hangup_cause
    call.timeline.append(CallEvent(end, Kind.HANGUP, data))
    call.timeline.append(CallEvent(end, Kind.END))
    return call


def record_from_cel(linkedid: str, events: list[CelEvent]) -> CallRecord | None:
    """A whole call from CEL only; None when the trail has no start for it."""
    if linkedid.startswith(PLUMBING_PREFIX):
        return None
    starts = [e for e in events if e.event == "CHAN_START" and not e.uniqueid.startswith(PLUMBING_PREFIX)]
    if not starts:
        return None
    first = starts[0]
    call = CallRecord(linkedid, first.at,
                      caller_number=None if first.cid_num in _NO_NUMBER else first.cid_num,
                      caller_name=None if first.cid_name in _NO_NUMBER else first.cid_name,
                      dialled=first.exten)
    call.timeline.append(CallEvent(first.at, Kind.START, {"channel": first.channel,
                                                          "reconciled": "cel"}))
    for i, s in enumerate(starts):
        endpoint, tech = _endpoint(s.channel)
        direction = "local" if tech == "local" else ("inbound" if i == 0 else "outbound")
        call.legs.append(Leg(s.uniqueid, s.channel, endpoint, direction, s.at))
    for e in events:
        leg = call.leg(e.uniqueid)
        if e.event == "ANSWER" and leg and leg.answered_at is None:
            leg.answered_at = e.at
        elif e.event == "HANGUP" and leg:
            leg.hangup_cause = _cause(e)
        elif e.event == "CHAN_END" and leg:
            leg.ended_at = e.at
        elif e.event == "APP_START" and (e.app or "").lower() == "queue" and e.appdata:
            queue = e.appdata.split(",", 1)[0]
            call.queue = queue
            call.timeline.append(CallEvent(e.at, Kind.QUEUE_JOIN, {"queue": queue,
                                                                   "reconciled": "cel"}))
        elif e.event in ("BLINDTRANSFER", "ATTENDEDTRANSFER"):
            call.transfers += 1
            call.timeline.append(CallEvent(e.at, Kind.TRANSFER, {"reconciled": "cel"}))
    end = max((e.at for e in events), default=first.at)
    call.ended_at = end
    call.hangup_cause = call.legs[0].hangup_cause
    data = {"reconciled": "cel"}
    if call.hangup_cause is not None:
        data["cause"] = call.hangup_cause
    call.timeline.append(CallEvent(end, Kind.HANGUP, data))
    call.timeline.append(CallEvent(end, Kind.END))
    return call
