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
    assert closed.linkedid == "1.1" and closed.timeline[-2].data == {"reconciled": "link_lost"}
    assert set(tracker.live) == {"3.1"}
    assert tracker.handle(QUEUE_CALL[-1]) == []  # a late Hangup makes no second record


def test_the_summary_names_the_last_queue_and_agent_and_counts_transfers():
    transfer = ev("BlindTransfer", TransfererLinkedid="1.1", Extension="6002")
    _, (call,) = replay(QUEUE_CALL[:-1] + [transfer] + QUEUE_CALL[-1:])
    assert (call.queue, call.agent, call.transfers) == ("billing", "agent1", 1)


def test_the_ivr_result_fills_the_summary_and_the_timeline():
    tracker, _ = replay(QUEUE_CALL[:1])
    tracker.ivr_enter("1.1", "demo-en", now=T0)
    tracker.ivr_leave("1.1", now=T0, intent="billing", confidence=0.91, language="en",
                      via="speech", transcript_id=7, transcript="a question about my bill")
    _, (call,) = replay(QUEUE_CALL[1:], tracker)
    assert (call.intent, call.intent_confidence, call.language, call.ivr_via, call.transcript_id) == (
        "billing", 0.91, "en", "speech", 7)
    assert call.timeline[2].kind is Kind.IVR_LEAVE and call.timeline[2].data["via"] == "speech"


async def test_the_summary_is_stored_with_the_record(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    store = CallStore(make_sessionmaker(engine))
    tracker, _ = replay(QUEUE_CALL[:1])
    tracker.ivr_leave("1.1", intent="lost_card", confidence=0.75, language="en", via="dtmf")
    _, (call,) = replay(QUEUE_CALL[1:], tracker)
    await store.save(call)
    back = await store.get("1.1")
    await engine.dispose()
    assert (back.queue, back.agent, back.intent, back.intent_confidence, back.ivr_via) == (
        "billing", "agent1", "lost_card", 0.75, "dtmf")


def test_the_gateways_own_media_channels_are_neither_calls_nor_legs():
    snoop = [ev("Newchannel", Channel="Snoop/1.1-00000000", Uniqueid="ivr-snoop-1", Linkedid="ivr-snoop-1"),
             ev("Newchannel", Channel="UnicastRTP/127.0.0.1:4000-0x1", Uniqueid="ivr-media-1",
                Linkedid="ivr-media-1")]
    tracker, done = replay(QUEUE_CALL[:2] + snoop + [ev("Hangup", Uniqueid="ivr-snoop-1", Cause="16"),
                                                       ev("Hangup", Uniqueid="ivr-media-1", Cause="16")])
    assert done == [] and list(tracker.live) == ["1.1"] and len(tracker.live["1.1"].legs) == 1
    _, (call,) = replay(QUEUE_CALL[2:], tracker)
    assert [l.uniqueid for l in call.legs] == ["1.1", "1.2"]


def test_a_caller_who_hangs_up_in_the_ivr_is_held_until_the_ivr_reports():
    tracker, _ = replay(QUEUE_CALL[:1])
    tracker.ivr_enter("1.1", "demo-en", now=T0)
    hangup = ev("Hangup", Uniqueid="1.1", Linkedid="1.1", Cause="16")
    assert tracker.handle(hangup, now=T0 + timedelta(seconds=5)) == []
    assert tracker.due(T0 + timedelta(seconds=5)) == [] and tracker.knows("1.1")
    tracker.ivr_leave("1.1", now=T0 + timedelta(seconds=5.2), via="hangup", transcript_id=9,
                      language="en")
    (call,) = tracker.due(T0 + timedelta(seconds=5.2))
    assert (call.ivr_via, call.transcript_id) == ("hangup", 9)
    assert [e.kind for e in call.timeline] == [Kind.START, Kind.IVR_ENTER, Kind.IVR_LEAVE,
                                               Kind.HANGUP, Kind.END]
    assert call.timeline[2].at == call.ended_at  # never after the call ended
    assert tracker.due(T0 + timedelta(seconds=60)) == []  # exactly once


def test_a_held_call_is_released_after_the_grace_even_without_an_ivr_result():
    tracker, _ = replay(QUEUE_CALL[:1])
    tracker.ivr_enter("1.1", "demo-en", now=T0)
    tracker.handle(ev("Hangup", Uniqueid="1.1", Linkedid="1.1", Cause="16"), now=T0)
    assert tracker.due(T0 + timedelta(seconds=2.9)) == []
    (call,) = tracker.due(T0 + timedelta(seconds=3))
    assert call.linkedid == "1.1"


def test_a_call_that_left_the_ivr_is_not_held():
    tracker, _ = replay(QUEUE_CALL[:1])
    tracker.ivr_enter("1.1", "demo-en", now=T0)
    tracker.ivr_leave("1.1", now=T0, intent="billing", via="speech")
    (call,) = tracker.handle(ev("Hangup", Uniqueid="1.1", Linkedid="1.1", Cause="16"), now=T0)
    assert call.intent == "billing"
