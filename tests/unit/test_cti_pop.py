"""What a pop says about the caller, from the call's info alone (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cti.customers import Customer, CustomerContext, Interaction
from cti.pop import new_info, pop_payload

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def past(lid, days, intent, queue="billing"):
    return Interaction(1, lid, NOW - timedelta(days=days), 7, "+39021234567", intent, queue,
                       "alice", "resolved", "resolved", "notes", False)


def test_withheld_callers_are_said_so_and_never_matched():
    info = new_info("L1", "anonymous", None, NOW)
    p = pop_payload(info, "alice", "ringing", WEEK)
    assert p["match"] == "withheld" and p["caller"]["number"] == "withheld"
    assert p["customer"] is None and p["repeat_contact"] is False


def test_a_pop_before_the_lookup_says_loading_then_unknown_or_the_customer():
    info = new_info("L1", "021234567", "ROSSI M", NOW)
    p = pop_payload(info, "alice", "ringing", WEEK)
    assert p["match"] == "loading" and p["caller"] == {
        "number": "+39021234567", "e164": "+39021234567", "status": "ok", "name": "ROSSI M"}
    info.ctx = CustomerContext(None, "+39021234567")
    assert pop_payload(info, "alice", "ringing", WEEK)["match"] == "unknown"
    mario = Customer(7, "Mario Rossi", "gold", "it", None, ("+39021234567",))
    info.ctx = CustomerContext(mario, "+39021234567", (past("a", 2, "billing"),),
                               (past("a", 2, "billing"),))
    p = pop_payload(info, "alice", "connected", WEEK)
    assert p["match"] == "customer" and p["customer"]["name"] == "Mario Rossi"
    assert [h["linkedid"] for h in p["history"]] == ["a"]


def test_the_repeat_flag_needs_the_same_topic_within_the_window():
    mario = Customer(7, "Mario Rossi")
    info = new_info("L1", "+39021234567", None, NOW)
    info.ctx = CustomerContext(mario, "+39021234567", (), (past("a", 2, "billing"),
                                                           past("b", 8, "lost_card")))
    info.intent = "lost_card"
    assert pop_payload(info, "alice", "ringing", WEEK)["repeat_contact"] is False  # 8 days ago
    info.intent = "billing"
    assert pop_payload(info, "alice", "ringing", WEEK)["repeat_contact"] is True
    info.intent, info.queue = None, "billing"  # no IVR: the queue is the topic
    assert pop_payload(info, "alice", "ringing", WEEK)["repeat_contact"] is True


def test_ivr_answers_and_transfers_travel_with_the_call():
    info = new_info("L1", "+39021234567", None, NOW)
    assert pop_payload(info, "alice", "ringing", WEEK)["ivr"] is None
    info.intent, info.intent_confidence, info.ivr_via = "lost_card", 0.83, "speech"
    info.language, info.transcript, info.transfers = "it", "ho perso la carta ****", 1
    p = pop_payload(info, "bob", "ringing", WEEK)
    assert p["ivr"] == {"intent": "lost_card", "confidence": 0.83, "language": "it",
                        "via": "speech", "transcript": "ho perso la carta ****"}
    assert p["transfers"] == 1 and p["agent"] == "bob"


def test_caller_aliases_map_internal_caller_ids_to_numbers():
    aliases = {"caller2": "+39 02 1234567"}
    info = new_info("L1", "caller2", None, NOW, aliases)
    assert (info.number.status, info.number.e164, info.number.raw) == (
        "ok", "+39021234567", "caller2")
    assert new_info("L2", "caller9", None, NOW, aliases).number.status == "invalid"
    # a real number is never replaced by an alias
    assert new_info("L3", "0612345", None, NOW, {"0612345": "+39021234567"}).number.e164 == \
        "+390612345"
