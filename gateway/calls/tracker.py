"""Live call state from AMI events: pure logic, no I/O, so it can be tested from recordings.

A call is the set of channels sharing a ``Linkedid``; it is complete when its last channel hangs
up, and is then emitted exactly once. Late or duplicate events for a finished call are ignored.

Channels the gateway itself creates for media (the IVR's snoop and external-media channels, with
ids it picks under :data:`PLUMBING_PREFIX`) are plumbing, not calls or legs: Asterisk gives them
linkedids of their own, and counting them would turn every IVR call into three.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.calls.model import CallEvent, CallRecord, Kind, Leg

_UNKNOWN = ("", "<unknown>", None)
PLUMBING_PREFIX = "ivr-"  # channel ids the gateway chooses for its own media channels


def _endpoint(channel: str) -> tuple[str | None, str]:
    tech, _, rest = channel.partition("/")
    if tech.lower() == "local":
        return None, "local"
    return rest.rsplit("-", 1)[0] or None, "sip"


def _duration(hms: str | None) -> timedelta:
    """``CoreShowChannel``'s ``Duration`` (``HH:MM:SS``) as a timedelta (0 when unreadable)."""
    try:
        h, m, sec = (int(x) for x in (hms or "").split(":"))
    except ValueError:
        return timedelta(0)
    return timedelta(hours=h, minutes=m, seconds=sec)


def _in_ivr(call: CallRecord) -> bool:
    """Entered the IVR and has not left it (its result is still to come)."""
    inside = False
    for e in call.timeline:
        if e.kind is Kind.IVR_ENTER:
            inside = True
        elif e.kind is Kind.IVR_LEAVE:
            inside = False
    return inside


class CallTracker:
    def __init__(self, remember_finished: int = 10_000, ivr_grace_s: float = 3.0) -> None:
        self.live: dict[str, CallRecord] = {}
        self._channels: dict[str, str] = {}  # uniqueid -> linkedid
        self._open: dict[str, set[str]] = {}  # linkedid -> live uniqueids
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_finished
        self._parked: dict[str, tuple[CallRecord, datetime]] = {}  # ended in the IVR
        self._ivr_grace = timedelta(seconds=ivr_grace_s)

    def handle(self, event: Any, now: datetime | None = None) -> list[CallRecord]:
        """Feed one AMI event (``.name`` + ``.get()``, or a dict with ``Event``); returns finished calls."""
        if isinstance(event, Mapping):
            name, get = event.get("Event", ""), event.get
        else:
            name, get = event.name, event.get
        now = now or datetime.now(UTC)
        fn = getattr(self, f"_on_{name}", None)
        return fn(get, now) or [] if fn else []

    # -- helpers -----------------------------------------------------------------------------
    def _call_of(self, get) -> CallRecord | None:
        lid = get("Linkedid") or self._channels.get(get("Uniqueid") or "")
        return self.live.get(lid) if lid else None

    def _mark(self, get, now, kind: Kind, **data) -> None:
        call = self._call_of(get)
        if call is not None:
            call.timeline.append(CallEvent(now, kind, {k: v for k, v in data.items() if v is not None}))

    # -- channel life cycle ------------------------------------------------------------------
    def _on_Newchannel(self, get, now):
        uid, lid, chan = get("Uniqueid"), get("Linkedid") or get("Uniqueid"), get("Channel") or ""
        if not uid or uid in self._channels or lid in self._finished:
            return
        if uid.startswith(PLUMBING_PREFIX) or lid.startswith(PLUMBING_PREFIX):
            return
        call = self.live.get(lid)
        endpoint, tech = _endpoint(chan)
        if call is None:
            num = get("CallerIDNum")
            call = CallRecord(lid, now, caller_number=None if num in _UNKNOWN else num,
                              caller_name=None if get("CallerIDName") in _UNKNOWN else get("CallerIDName"),
                              dialled=get("Exten") or None)
            call.timeline.append(CallEvent(now, Kind.START, {"channel": chan}))
            self.live[lid] = call
            direction = "local" if tech == "local" else "inbound"
        else:
            direction = "local" if tech == "local" else "outbound"
        call.legs.append(Leg(uid, chan, endpoint, direction, now))
        self._channels[uid] = lid
        self._open.setdefault(lid, set()).add(uid)
        return

    def _on_Newstate(self, get, now):
        call = self._call_of(get)
        leg = call.leg(get("Uniqueid")) if call else None
        if leg and get("ChannelStateDesc") == "Up" and leg.answered_at is None:
            leg.answered_at = now

    def _on_NewCallerid(self, get, now):
        call = self._call_of(get)
        if call and call.legs and call.legs[0].uniqueid == get("Uniqueid"):
            num, name = get("CallerIDNum"), get("CallerIDName")
            call.caller_number = call.caller_number or (None if num in _UNKNOWN else num)
            call.caller_name = call.caller_name or (None if name in _UNKNOWN else name)

    def _on_Rename(self, get, now):
        call = self._call_of(get)
        leg = call.leg(get("Uniqueid")) if call else None
        if leg and get("Newname"):
            leg.channel = get("Newname")

    def _on_VarSet(self, get, now):
        if get("Variable") == "CHANNEL(audionativeformat)" or get("Variable") == "CENTRALINO_CODEC":
            call = self._call_of(get)
            leg = call.leg(get("Uniqueid")) if call else None
            if leg:
                leg.codec = get("Value")

    def _on_Hangup(self, get, now):
        uid = get("Uniqueid") or ""
        lid = self._channels.pop(uid, None)
        if lid is None:
            return None
        call = self.live[lid]
        leg = call.leg(uid)
        cause = int(get("Cause")) if (get("Cause") or "").isdigit() else None
        if leg:
            leg.ended_at, leg.hangup_cause = now, cause
            if leg is call.legs[0]:  # the caller's leg says why the call ended
                call.hangup_cause_text = get("Cause-txt")
        opened = self._open.get(lid, set())
        opened.discard(uid)
        if opened:
            return None
        del self._open[lid]
        del self.live[lid]
        call.ended_at = now
        first = call.legs[0] if call.legs else None
        call.hangup_cause = first.hangup_cause if first and first.hangup_cause is not None else cause
        call.timeline.append(CallEvent(now, Kind.HANGUP, {"cause": call.hangup_cause,
                                                          "cause_text": call.hangup_cause_text}))
        call.timeline.append(CallEvent(now, Kind.END))
        self._remember_finished(lid)
        if _in_ivr(call):
            # The IVR reports its result when it has cleaned up, which can be just after the
            # caller's Hangup: hold the record briefly so the result is in it (see due()).
            self._parked[lid] = (call, now + self._ivr_grace)
            return []
        return [call]

    def due(self, now: datetime | None = None) -> list[CallRecord]:
        """Finished calls that were held for their IVR result: it came, or the wait is over."""
        now = now or datetime.now(UTC)
        out = []
        for lid, (call, deadline) in list(self._parked.items()):
            if deadline <= now:
                del self._parked[lid]
                out.append(call)
        return out

    def resync(self, live_uniqueids: set[str], now: datetime | None = None,
               lost_at: datetime | None = None) -> list[CallRecord]:
        """After an AMI reconnect: close the calls none of whose channels still exist.

        Their true end happened while we were away: they are closed at ``lost_at`` (when the
        link was lost; ``now`` if unknown) with ``reconciled: link_lost`` in the hangup event,
        so each still gets exactly one record; the service then corrects them from CEL.
        """
        now = now or datetime.now(UTC)
        end = lost_at or now
        done = []
        for lid in list(self.live):
            opened = self._open.get(lid, set())
            if opened & live_uniqueids:
                continue
            call = self.live.pop(lid)
            self._open.pop(lid, None)
            for uid in opened:
                self._channels.pop(uid, None)
            for leg in call.legs:
                leg.ended_at = leg.ended_at or end
            call.ended_at = end
            call.timeline.append(CallEvent(end, Kind.HANGUP, {"reconciled": "link_lost"}))
            call.timeline.append(CallEvent(end, Kind.END))
            self._remember_finished(lid)
            done.append(call)
        return done

    def adopt(self, channels: list[Any], now: datetime | None = None) -> int:
        """Start tracking live channels we never saw begin (from ``CoreShowChannels``): calls
        in progress when the gateway starts, or that started while the link was down.
        Returns how many channels were adopted."""
        now = now or datetime.now(UTC)
        n = 0
        for ch in channels:
            get = ch.get
            uid = get("Uniqueid")
            if not uid or uid in self._channels or uid.startswith(PLUMBING_PREFIX):
                continue
            lid = get("Linkedid") or uid
            if lid in self._finished:
                continue
            started = now - _duration(get("Duration"))
            call = self.live.get(lid)
            chan = get("Channel") or ""
            endpoint, tech = _endpoint(chan)
            if call is None:
                num, name = get("CallerIDNum"), get("CallerIDName")
                call = CallRecord(lid, started, caller_number=None if num in _UNKNOWN else num,
                                  caller_name=None if name in _UNKNOWN else name,
                                  dialled=get("Exten") or None)
                call.timeline.append(CallEvent(started, Kind.START,
                                               {"channel": chan, "adopted": True}))
                self.live[lid] = call
                direction = "local" if tech == "local" else "inbound"
            else:
                call.started_at = min(call.started_at, started)
                direction = "local" if tech == "local" else "outbound"
            leg = Leg(uid, chan, endpoint, direction, started)
            if get("ChannelStateDesc") == "Up":
                leg.answered_at = started
            call.legs.append(leg)
            call.legs.sort(key=lambda l: (l.started_at, l.uniqueid))
            self._channels[uid] = lid
            self._open.setdefault(lid, set()).add(uid)
            n += 1
        return n

    def knows(self, linkedid: str) -> bool:
        """Live now, or finished recently: a backfill must not make a second record of it."""
        return linkedid in self.live or linkedid in self._finished or linkedid in self._parked

    def mark_finished(self, linkedid: str) -> None:
        """A record was made elsewhere (from CEL): later events for it make no second one."""
        self._remember_finished(linkedid)

    def _remember_finished(self, lid: str) -> None:
        self._finished[lid] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)

    # -- contact-centre events ---------------------------------------------------------------
    def _on_QueueCallerJoin(self, get, now):
        call = self._call_of(get)
        if call is not None and get("Queue"):
            call.queue = get("Queue")
        self._mark(get, now, Kind.QUEUE_JOIN, queue=get("Queue"), position=get("Position"))

    def _on_QueueCallerLeave(self, get, now):
        self._mark(get, now, Kind.QUEUE_LEAVE, queue=get("Queue"))

    def _on_QueueCallerAbandon(self, get, now):
        self._mark(get, now, Kind.QUEUE_LEAVE, queue=get("Queue"), abandoned=True)

    def _on_AgentCalled(self, get, now):
        self._mark(get, now, Kind.AGENT_OFFERED, queue=get("Queue"),
                   agent=get("MemberName") or get("Interface"))

    def _on_AgentConnect(self, get, now):
        call = self._call_of(get)
        if call is not None:
            call.agent = get("MemberName") or get("Interface") or call.agent
        self._mark(get, now, Kind.AGENT_CONNECTED, queue=get("Queue"),
                   agent=get("MemberName") or get("Interface"), wait_s=get("HoldTime"))

    def _on_AgentComplete(self, get, now):
        self._mark(get, now, Kind.AGENT_COMPLETE, queue=get("Queue"),
                   agent=get("MemberName") or get("Interface"), reason=get("Reason"))

    def _on_Hold(self, get, now):
        self._mark(get, now, Kind.HOLD_ON, channel=get("Channel"))

    def _on_Unhold(self, get, now):
        self._mark(get, now, Kind.HOLD_OFF, channel=get("Channel"))

    def _on_BlindTransfer(self, get, now):
        lid = get("TransfererLinkedid")
        call = self.live.get(lid or "")
        if call:
            call.transfers += 1
            call.timeline.append(CallEvent(now, Kind.TRANSFER, {"type": "blind",
                                                                "target": get("Extension")}))

    def _on_AttendedTransfer(self, get, now):
        lid = get("OrigTransfererLinkedid")
        call = self.live.get(lid or "")
        if call:
            call.transfers += 1
            call.timeline.append(CallEvent(now, Kind.TRANSFER, {"type": "attended"}))

    # -- IVR (called by the IVR runner) ------------------------------------------------------
    def ivr_enter(self, linkedid: str, flow: str, now: datetime | None = None) -> None:
        call = self.live.get(linkedid)
        if call:
            call.timeline.append(CallEvent(now or datetime.now(UTC), Kind.IVR_ENTER, {"flow": flow}))

    def ivr_leave(self, linkedid: str, now: datetime | None = None, **result: Any) -> None:
        """``result`` goes in the timeline; its known keys (``intent``, ``confidence``,
        ``language``, ``via``, ``transcript_id``) also fill the call's summary. Accepted for a
        call that hung up in the IVR a moment ago, too (it is held until then)."""
        now = now or datetime.now(UTC)
        call = self.live.get(linkedid)
        parked = self._parked.get(linkedid)
        if call is None and parked is not None:
            call = parked[0]
        if call is None:
            return
        call.intent = result.get("intent", call.intent)
        call.intent_confidence = result.get("confidence", call.intent_confidence)
        call.language = result.get("language", call.language)
        call.ivr_via = result.get("via", call.ivr_via)
        call.transcript_id = result.get("transcript_id", call.transcript_id)
        event = CallEvent(now, Kind.IVR_LEAVE, {k: v for k, v in result.items() if v is not None})
        if parked is not None:  # before the hangup, at the latest when the call ended
            event.at = min(now, call.ended_at or now)
            call.timeline.insert(len(call.timeline) - 2, event)
            self._parked[linkedid] = (call, now)  # complete: due at once
        else:
            call.timeline.append(event)
