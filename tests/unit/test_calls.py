"""Call records from AMI events: one record per linkedid, legs and a typed timeline."""

from datetime import UTC, datetime, timedelta

from gateway.calls.model import Kind
from gateway.calls.store import CallStore
from gateway.calls.tracker import CallTracker
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def ev(name, **h):
    return {"Event": name, **h}


QUEUE_CALL = [
    ev("Newchannel", Channel="PJSIP/caller1-00000001", Uniqueid="1.1", Linkedid="1.1",
       CallerIDNum="3351234567", CallerIDName="Mario", Exten="6001"),
    ev("Newstate", Channel="PJSIP/caller1-00000001", Uniqueid="1.1", Linkedid="1.1", ChannelStateDesc="Up"),
    ev("QueueCallerJoin", Uniqueid="1.1", Linkedid="1.1", Queue="billing", Position="1"),
    ev("Newchannel", Channel="PJSIP/agent1-00000002", Uniqueid="1.2", Linkedid="1.1"),
    ev("AgentCalled", Uniqueid="1.1", Linkedid="1.1", Queue="billing", MemberName="agent1"),
    ev("Newstate", Channel="PJSIP/agent1-00000002", Uniqueid="1.2", Linkedid="1.1", ChannelStateDesc="Up"),
    ev("AgentConnect", Uniqueid="1.1", Linkedid="1.1", Queue="billing", MemberName="agent1", HoldTime="4"),
    ev("QueueCallerLeave", Uniqueid="1.1", Linkedid="1.1", Queue="billing"),
    ev("Hold", Channel="PJSIP/caller1-00000001", Uniqueid="1.1", Linkedid="1.1"),
    ev("Unhold", Channel="PJSIP/caller1-00000001", Uniqueid="1.1", Linkedid="1.1"),
    ev("AgentComplete", Uniqueid="1.1", Linkedid="1.1", Queue="billing", MemberName="agent1", Reason="caller"),
    ev("Hangup", Channel="PJSIP/caller1-00000001", Uniqueid="1.1", Linkedid="1.1", Cause="16",
       **{"Cause-txt": "Normal Clearing"}),
    ev("Hangup", Channel="PJSIP/agent1-00000002", Uniqueid="1.2", Linkedid="1.1", Cause="16"),
]


def replay(events, tracker=None):
    tracker = tracker or CallTracker()
    done = []
    for i, e in enumerate(events):
        done += tracker.handle(e, now=T0 + timedelta(seconds=i))
    return tracker, done


def test_a_queue_call_becomes_one_record_with_legs_and_timeline():
    _, (call,) = replay(QUEUE_CALL)
    assert call.linkedid == "1.1" and call.caller_number == "3351234567"
    assert [(l.endpoint, l.direction) for l in call.legs] == [("caller1", "inbound"), ("agent1", "outbound")]
    assert call.legs[1].answered_at == T0 + timedelta(seconds=5)
    assert [e.kind for e in call.timeline] == [
        Kind.START, Kind.QUEUE_JOIN, Kind.AGENT_OFFERED, Kind.AGENT_CONNECTED, Kind.QUEUE_LEAVE,
        Kind.HOLD_ON, Kind.HOLD_OFF, Kind.AGENT_COMPLETE, Kind.HANGUP, Kind.END]
    assert call.hangup_cause == 16 and call.hangup_cause_text == "Normal Clearing"
    assert call.ended_at == T0 + timedelta(seconds=12)


def test_the_call_is_complete_only_when_its_last_channel_hangs_up():
    tracker, done = replay(QUEUE_CALL[:-1])
    assert done == [] and "1.1" in tracker.live


def test_duplicate_and_late_events_never_make_a_second_record():
    _, done = replay(QUEUE_CALL + QUEUE_CALL[:3] + QUEUE_CALL[-2:])
    assert len(done) == 1


def test_events_for_unknown_channels_are_ignored():
    _, done = replay([ev("Hangup", Uniqueid="9.9", Cause="16"), ev("Hold", Uniqueid="9.9")])
    assert done == []


async def test_records_persist_once_per_call_on_both_backends(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    store = CallStore(make_sessionmaker(engine))
    _, (call,) = replay(QUEUE_CALL)
    await store.save(call)
    await store.save(call)  # replay after a crash or reconciliation: still one record
    assert await store.count() == 1
    back = await store.get("1.1")
    await engine.dispose()
    assert [l.uniqueid for l in back.legs] == ["1.1", "1.2"]
    assert [e.kind for e in back.timeline] == [e.kind for e in call.timeline]
    assert back.timeline[3].data == {"queue": "billing", "agent": "agent1", "wait_s": "4"}
    assert back.hangup_cause == 16


def test_caller_id_set_after_the_channel_exists_is_recorded():
    _, (call,) = replay([
        ev("Newchannel", Channel="Local/199@x-1;1", Uniqueid="2.1", Linkedid="2.1", CallerIDNum=""),
        ev("NewCallerid", Channel="Local/199@x-1;1", Uniqueid="2.1", Linkedid="2.1",
           CallerIDNum="3351234500", CallerIDName="Demo"),
        ev("Hangup", Uniqueid="2.1", Linkedid="2.1", Cause="16"),
    ])
    assert (call.caller_number, call.caller_name) == ("3351234500", "Demo")


def test_resync_closes_calls_whose_channels_vanished_while_disconnected():
    tracker, _ = replay(QUEUE_CALL[:4])
    replay([ev("Newchannel", Channel="PJSIP/caller2-3", Uniqueid="3.1", Linkedid="3.1")], tracker)
    (closed,) = tracker.resync({"3.1"}, now=T0)
    assert closed.linkedid == "1.1" and closed.timeline[-2].data == {"reconciled": True}
    assert set(tracker.live) == {"3.1"}
    assert tracker.handle(QUEUE_CALL[-1]) == []  # a late Hangup makes no second record
