"""Live call state from AMI events: pure logic, no I/O, so it can be tested from recordings.

A call is the set of channels sharing a ``Linkedid``; it is complete when its last channel hangs
up, and is then emitted exactly once. Late or duplicate events for a finished call are ignored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.calls.model import CallEvent, CallRecord, Kind, Leg

_UNKNOWN = ("", "<unknown>", None)


def _endpoint(channel: str) -> tuple[str | None, str]:
    tech, _, rest = channel.partition("/")
    if tech.lower() == "local":
        return None, "local"
    return rest.rsplit("-", 1)[0] or None, "sip"


class CallTracker:
    def __init__(self, remember_finished: int = 10_000) -> None:
        self.live: dict[str, CallRecord] = {}
        self._channels: dict[str, str] = {}  # uniqueid -> linkedid
        self._open: dict[str, set[str]] = {}  # linkedid -> live uniqueids
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_finished

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
        self._finished[lid] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)
        return [call]

    def resync(self, live_uniqueids: set[str], now: datetime | None = None) -> list[CallRecord]:
        """After an AMI reconnect: close the calls none of whose channels still exist.

        Their end is not known exactly (it happened while we were away): they are closed at
        ``now`` with ``reconciled`` in the hangup event, so each still gets exactly one record.
        """
        now = now or datetime.now(UTC)
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
                leg.ended_at = leg.ended_at or now
            call.ended_at = now
            call.timeline.append(CallEvent(now, Kind.HANGUP, {"reconciled": True}))
            call.timeline.append(CallEvent(now, Kind.END))
            self._finished[lid] = None
            done.append(call)
        return done

    # -- contact-centre events ---------------------------------------------------------------
    def _on_QueueCallerJoin(self, get, now):
        self._mark(get, now, Kind.QUEUE_JOIN, queue=get("Queue"), position=get("Position"))

    def _on_QueueCallerLeave(self, get, now):
        self._mark(get, now, Kind.QUEUE_LEAVE, queue=get("Queue"))

    def _on_QueueCallerAbandon(self, get, now):
        self._mark(get, now, Kind.QUEUE_LEAVE, queue=get("Queue"), abandoned=True)

    def _on_AgentCalled(self, get, now):
        self._mark(get, now, Kind.AGENT_OFFERED, queue=get("Queue"),
                   agent=get("MemberName") or get("Interface"))

    def _on_AgentConnect(self, get, now):
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
            call.timeline.append(CallEvent(now, Kind.TRANSFER, {"type": "blind",
                                                                "target": get("Extension")}))

    def _on_AttendedTransfer(self, get, now):
        lid = get("OrigTransfererLinkedid")
        call = self.live.get(lid or "")
        if call:
            call.timeline.append(CallEvent(now, Kind.TRANSFER, {"type": "attended"}))

    # -- IVR (called by the IVR runner) ------------------------------------------------------
    def ivr_enter(self, linkedid: str, flow: str, now: datetime | None = None) -> None:
        call = self.live.get(linkedid)
        if call:
            call.timeline.append(CallEvent(now or datetime.now(UTC), Kind.IVR_ENTER, {"flow": flow}))

    def ivr_leave(self, linkedid: str, now: datetime | None = None, **result: Any) -> None:
        call = self.live.get(linkedid)
        if call:
            call.timeline.append(CallEvent(now or datetime.now(UTC), Kind.IVR_LEAVE, result))
