"""Closing and rebuilding calls from Asterisk's CEL trail: pure functions, exact results."""

from datetime import UTC, datetime, timedelta

from gateway.ami.protocol import Event
from gateway.calls.cel import CelEvent
from gateway.calls.model import Kind
from gateway.calls.reconcile import close_from_cel, record_from_cel
from gateway.calls.tracker import CallTracker

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def cel(event, s, uid, chan, **kw):
    return CelEvent(event, T0 + timedelta(seconds=s), uid, "9.1", chan, **kw)


TRAIL = [
    cel("CHAN_START", 0, "9.1", "PJSIP/caller1-01", cid_num="3351234567", cid_name="Mario", exten="6001"),
    cel("ANSWER", 0.5, "9.1", "PJSIP/caller1-01"),
    cel("APP_START", 1, "9.1", "PJSIP/caller1-01", app="Queue", appdata="billing,,,,300"),
    cel("CHAN_START", 2, "9.2", "PJSIP/agent1-02"),
    cel("ANSWER", 5, "9.2", "PJSIP/agent1-02"),
    cel("BLINDTRANSFER", 40, "9.2", "PJSIP/agent1-02"),
    cel("HANGUP", 60, "9.1", "PJSIP/caller1-01", extra={"hangupcause": 16}),
    cel("CHAN_END", 60, "9.1", "PJSIP/caller1-01"),
    cel("HANGUP", 60.2, "9.2", "PJSIP/agent1-02", extra={"hangupcause": "17"}),
    cel("CHAN_END", 60.2, "9.2", "PJSIP/agent1-02"),
    cel("LINKEDID_END", 60.2, "9.2", "PJSIP/agent1-02"),
]


def live_call():
    t = CallTracker()
    t.handle({"Event": "Newchannel", "Channel": "PJSIP/caller1-01", "Uniqueid": "9.1",
              "Linkedid": "9.1", "CallerIDNum": "3351234567"}, now=T0)
    t.handle({"Event": "Newchannel", "Channel": "PJSIP/agent1-02", "Uniqueid": "9.2",
              "Linkedid": "9.1"}, now=T0 + timedelta(seconds=2))
    return t


def test_a_call_that_ended_while_we_were_away_gets_its_true_end_from_cel():
    t = live_call()
    lost = T0 + timedelta(seconds=30)
    (call,) = t.resync(set(), now=T0 + timedelta(seconds=90), lost_at=lost)
    close_from_cel(call, TRAIL, lost)
    assert call.ended_at == T0 + timedelta(seconds=60.2)
    assert [(l.ended_at, l.hangup_cause) for l in call.legs] == [
        (T0 + timedelta(seconds=60), 16), (T0 + timedelta(seconds=60.2), 17)]
    assert call.legs[1].answered_at == T0 + timedelta(seconds=5)
    assert [e.kind for e in call.timeline][-2:] == [Kind.HANGUP, Kind.END]
    assert call.timeline[-2].data == {"reconciled": "cel", "cause": 16}
    assert sum(e.kind is Kind.HANGUP for e in call.timeline) == 1


def test_without_a_trail_the_call_ends_when_the_link_was_lost_and_says_so():
    t = live_call()
    lost = T0 + timedelta(seconds=30)
    (call,) = t.resync(set(), now=T0 + timedelta(seconds=90), lost_at=lost)
    close_from_cel(call, [], lost)
    assert call.ended_at == lost and all(l.ended_at == lost for l in call.legs)
    assert call.timeline[-2].data == {"reconciled": "link_lost"}


def test_a_call_we_never_saw_is_rebuilt_with_legs_queue_and_transfer():
    call = record_from_cel("9.1", TRAIL)
    assert (call.caller_number, call.caller_name, call.dialled) == ("3351234567", "Mario", "6001")
    assert [(l.endpoint, l.direction) for l in call.legs] == [("caller1", "inbound"), ("agent1", "outbound")]
    assert call.queue == "billing" and call.transfers == 1
    assert call.started_at == T0 and call.ended_at == T0 + timedelta(seconds=60.2)
    assert [e.kind for e in call.timeline] == [Kind.START, Kind.QUEUE_JOIN, Kind.TRANSFER,
                                               Kind.HANGUP, Kind.END]
    assert call.hangup_cause == 16


def test_a_trail_without_a_start_makes_no_record():
    assert record_from_cel("9.1", TRAIL[5:]) is None


def test_channels_we_never_saw_begin_are_adopted_once():
    t = CallTracker()
    now = T0 + timedelta(minutes=5)
    chans = [Event.from_headers({"Event": "CoreShowChannel", "Channel": "PJSIP/caller2-03",
                                 "Uniqueid": "8.1", "Linkedid": "8.1", "CallerIDNum": "0612345678",
                                 "ChannelStateDesc": "Up", "Duration": "00:01:05", "Exten": "6002"}),
             Event.from_headers({"Event": "CoreShowChannel", "Channel": "PJSIP/agent2-04",
                                 "Uniqueid": "8.2", "Linkedid": "8.1", "ChannelStateDesc": "Up",
                                 "Duration": "00:00:40"})]
    assert t.adopt(chans, now) == 2 and t.adopt(chans, now) == 0
    call = t.live["8.1"]
    assert call.started_at == now - timedelta(seconds=65) and call.caller_number == "0612345678"
    assert [l.direction for l in call.legs] == ["inbound", "outbound"]
    assert call.timeline[0].data["adopted"] is True
    t.handle({"Event": "Hangup", "Uniqueid": "8.2", "Linkedid": "8.1", "Cause": "16"}, now=now)
    (done,) = t.handle({"Event": "Hangup", "Uniqueid": "8.1", "Linkedid": "8.1", "Cause": "16"}, now=now)
    assert done.linkedid == "8.1" and t.knows("8.1")
