"""Handle time from a call's timeline: each part is what a stopwatch on the script would say."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.metrics.handle_time import close_acw, expire_acw, handle_time
from gateway.metrics.review import ReviewRules, is_repeat, review_reasons, topic

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def call(*events: tuple[float, Kind, dict], end: float, transfers: int = 0,
         agent_leg: tuple[str, float] | None = ("agent1", 0)) -> CallRecord:
    c = CallRecord("L1", T0, caller_number="3351234567", transfers=transfers)
    c.legs.append(Leg("L1", "PJSIP/caller1-1", "caller1", "inbound", T0, answered_at=T0))
    if agent_leg:
        ep, answered = agent_leg
        c.legs.append(Leg("L1.1", f"PJSIP/{ep}-2", ep, "outbound", at(answered - 1),
                          answered_at=at(answered)))
    c.timeline = [CallEvent(T0, Kind.START)] + [CallEvent(at(s), k, d) for s, k, d in events]
    c.timeline += [CallEvent(at(end), Kind.HANGUP), CallEvent(at(end), Kind.END)]
    c.ended_at = at(end)
    return c


def scripted(hold_from=40.0, hold_for=30.0, talk_end=100.0):
    """IVR 10 s, queue 12 s, ring 4 s, talk with one hold, the agent hangs up."""
    return call(
        (1, Kind.IVR_ENTER, {"flow": "demo-en"}),
        (11, Kind.IVR_LEAVE, {"intent": "billing"}),
        (11, Kind.QUEUE_JOIN, {"queue": "billing"}),
        (19, Kind.AGENT_OFFERED, {"queue": "billing", "agent": "agent1"}),
        (23, Kind.QUEUE_LEAVE, {"queue": "billing"}),
        (23, Kind.AGENT_CONNECTED, {"queue": "billing", "agent": "agent1"}),
        (hold_from, Kind.HOLD_ON, {"channel": "PJSIP/agent1-2"}),
        (hold_from + hold_for, Kind.HOLD_OFF, {"channel": "PJSIP/agent1-2"}),
        (talk_end, Kind.AGENT_COMPLETE, {"agent": "agent1", "reason": "agent"}),
        end=talk_end, agent_leg=("agent1", 23))


def test_each_part_of_a_scripted_call():
    ht = handle_time(scripted(), service_level_s=20)
    assert ht.ivr_s == 10
    assert ht.queue_wait_s == 12
    assert ht.ring_s == 4
    assert ht.hold_s == 30 and ht.hold_count == 1
    assert ht.talk_s == 100 - 23 - 30
    assert ht.answered and ht.queued and not ht.abandoned
    assert ht.agent == "agent1" and ht.agent_endpoint == "agent1"
    assert ht.answered_within_sl is True
    assert ht.acw_started_at == at(100) and ht.acw_open and ht.aht_s is None


def test_aht_is_talk_plus_hold_plus_after_call_work():
    ht = close_acw(handle_time(scripted()), at(145), max_s=300)
    assert ht.acw_s == 45 and not ht.acw_capped and not ht.acw_open
    assert ht.aht_s == 47 + 30 + 45


def test_forgotten_wrap_up_is_closed_at_the_maximum_and_flagged():
    ht = handle_time(scripted())
    assert expire_acw(ht, at(100 + 299), max_s=300).acw_open
    closed = expire_acw(ht, at(100 + 300), max_s=300)
    assert closed.acw_s == 300 and closed.acw_capped and closed.acw_ended_at == at(400)
    late = close_acw(ht, at(100 + 3600), max_s=300)
    assert late.acw_s == 300 and late.acw_capped


def test_the_first_close_wins_and_a_ready_before_the_hangup_counts_as_zero():
    ht = handle_time(scripted())
    first = close_acw(ht, at(110), 300)
    assert close_acw(first, at(200), 300).acw_s == 10
    assert close_acw(ht, at(90), 300).acw_s == 0


def test_a_hold_still_open_at_hangup_ends_with_the_talk():
    c = scripted()
    c.timeline = [e for e in c.timeline if e.kind is not Kind.HOLD_OFF]
    ht = handle_time(c)
    assert ht.hold_s == 100 - 40
    assert ht.talk_s == 40 - 23


def test_overlapping_holds_from_both_ends_count_once():
    c = scripted()
    c.timeline.insert(7, CallEvent(at(50), Kind.HOLD_ON, {"channel": "PJSIP/caller1-1"}))
    c.timeline.insert(9, CallEvent(at(80), Kind.HOLD_OFF, {"channel": "PJSIP/caller1-1"}))
    ht = handle_time(c)
    assert ht.hold_s == 80 - 40
    assert ht.hold_count == 2


def test_a_repeated_hold_event_does_not_restart_the_hold():
    c = scripted()
    c.timeline.insert(7, CallEvent(at(45), Kind.HOLD_ON, {"channel": "PJSIP/agent1-2"}))
    assert handle_time(c).hold_s == 30


def test_an_abandoned_call_has_queue_wait_but_no_talk_and_no_acw():
    c = call((0, Kind.QUEUE_JOIN, {"queue": "billing"}),
             (2, Kind.AGENT_OFFERED, {"agent": "agent1"}),
             (35, Kind.QUEUE_LEAVE, {"queue": "billing", "abandoned": True}),
             end=35, agent_leg=None)
    ht = handle_time(c, service_level_s=20)
    assert ht.queue_wait_s == 35 and ht.ring_s == 0 and ht.talk_s == 0
    assert ht.abandoned and not ht.answered and ht.answered_within_sl is False
    assert ht.acw_started_at is None and ht.aht_s is None
    assert close_acw(ht, at(60), 300).aht_s is None


def test_service_level_is_about_the_queue_wait():
    slow = call((0, Kind.QUEUE_JOIN, {}), (25, Kind.AGENT_CONNECTED, {"agent": "agent1"}),
                end=60)
    assert handle_time(slow, service_level_s=20).answered_within_sl is False
    assert handle_time(slow, service_level_s=30).answered_within_sl is True
    no_queue = call(end=5, agent_leg=None)
    assert handle_time(no_queue, service_level_s=20).answered_within_sl is None


def test_a_transferred_call_adds_both_talk_segments_and_acw_starts_after_the_last():
    c = call((0, Kind.QUEUE_JOIN, {"queue": "billing"}),
             (5, Kind.AGENT_CONNECTED, {"agent": "agent1"}),
             (30, Kind.TRANSFER, {"type": "blind"}),
             (30, Kind.AGENT_COMPLETE, {"agent": "agent1", "reason": "transfer"}),
             (30, Kind.QUEUE_JOIN, {"queue": "tech_support"}),
             (36, Kind.AGENT_CONNECTED, {"agent": "agent2"}),
             (90, Kind.AGENT_COMPLETE, {"agent": "agent2"}),
             end=90, transfers=1, agent_leg=("agent2", 36))
    ht = handle_time(c)
    assert ht.talk_s == 25 + 54 and ht.queue_wait_s == 5 + 6
    assert ht.transfers == 1 and ht.agent == "agent2" and ht.agent_endpoint == "agent2"
    assert ht.acw_started_at == at(90)


def test_an_ivr_call_that_never_leaves_the_ivr_counts_ivr_time_until_hangup():
    c = call((0, Kind.IVR_ENTER, {}), end=42, agent_leg=None)
    ht = handle_time(c)
    assert ht.ivr_s == 42 and not ht.queued and ht.queue_wait_s == 0


@given(st.lists(st.tuples(st.floats(0.5, 20), st.floats(0.5, 20)), max_size=6),
       st.floats(1, 60))
def test_talk_plus_hold_is_always_the_connected_time(gaps_and_holds, tail):
    events, t = [(0, Kind.AGENT_CONNECTED, {"agent": "a"})], 0.0
    expected_hold = 0.0
    for gap, hold in gaps_and_holds:
        t += gap
        events.append((t, Kind.HOLD_ON, {"channel": "x"}))
        t += hold
        expected_hold += hold
        events.append((t, Kind.HOLD_OFF, {"channel": "x"}))
    t += tail
    events.append((t, Kind.AGENT_COMPLETE, {"agent": "a"}))
    ht = handle_time(call(*events, end=t))
    assert ht.hold_s == pytest.approx(expected_hold, abs=1e-4)  # datetimes hold microseconds
    assert ht.talk_s + ht.hold_s == pytest.approx(t, abs=1e-4)
    assert ht.hold_count == len(gaps_and_holds)


def test_review_reasons_name_every_rule_that_fires():
    rules = ReviewRules(mos_below=3.6, hold_over_s=120, transfers_over=1)
    assert review_reasons(mos_min=4.3, hold_s=10, repeat_contact=False, transfers=1,
                          rules=rules) == []
    assert review_reasons(mos_min=3.59, hold_s=121, repeat_contact=True, transfers=2,
                          rules=rules) == ["low_mos", "long_hold", "repeat_contact", "transfers"]
    assert review_reasons(mos_min=None, hold_s=None, repeat_contact=None, transfers=0) == []


def test_a_repeat_contact_is_the_same_caller_and_topic_within_seven_days():
    earlier = [(at(-6 * 86400), "335", "billing"), (at(-8 * 86400), "335", "lost_card")]
    assert is_repeat(at(0), "335", "billing", earlier)
    assert not is_repeat(at(0), "335", "lost_card", earlier)  # 8 days ago
    assert not is_repeat(at(0), "336", "billing", earlier)
    assert not is_repeat(at(0), None, "billing", earlier)
    assert not is_repeat(at(-7 * 86400), "335", "billing", earlier)  # later calls do not count
    assert topic(None, "billing") == "billing" and topic("lost_card", "billing") == "lost_card"
