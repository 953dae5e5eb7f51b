"""The screen pop on real SIP calls through the sandbox: it reaches the right desktop (only) while
the phone still rings, follows hold, transfer and hang-up, drives after-call work in Asterisk,
and the wrap-up shows in the next pop for the same caller. History reads are checked and
audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cti.importer import import_customers
from cti.orm import InteractionRow
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.events import AgentStateChanged, WrapUpSubmitted
from gateway.sip import CallState, PhoneHost
from tests.integration.test_cti_support import (
    Desk,
    eventually,
    members,
    start_gateway,
    stop_gateway,
)

pytestmark = pytest.mark.integration

CUSTOMERS = b"""name,phones,segment,language,notes
Mario Rossi,02 1234567|333 1234567,gold,it,prefers to be called back in the morning
Anna Bianchi,06 7654321,,it,
"""
ALIASES = {"caller2": "+39 02 1234567", "caller3": "0039 06 7654321"}


@pytest.fixture
async def gateway(sandbox, tmp_path, db_url):
    """The whole gateway, on SQLite and on PostgreSQL."""
    url = db_url
    await upgrade(url)
    engine = make_engine(url)
    report = await import_customers(make_sessionmaker(engine), CUSTOMERS)
    await engine.dispose()
    assert report.added == 2 and not report.errors
    service = await start_gateway(sandbox, tmp_path, cti={"caller_aliases": ALIASES}, db_url=url)
    service.seen = []
    service.bus.subscribe(AgentStateChanged, service.seen.append)
    service.bus.subscribe(WrapUpSubmitted, service.seen.append)
    try:
        yield service
    finally:
        await stop_gateway(service)


@pytest.fixture
async def phones(sandbox):
    a = sandbox.settings.asterisk
    async with PhoneHost() as host:
        for name in ("agent1", "agent2"):
            await host.register(name, sandbox.phone_password(name), a.host, a.sip_port)
        for name in ("caller2", "caller3"):
            await host.add_account(name, sandbox.phone_password(name), a.host, a.sip_port,
                                   register=False)
        yield host


async def test_pop_reaches_only_its_agent_before_answer_and_the_wrap_up_shows_next_time(
        gateway, phones):
    base = gateway.base_url
    alice, bob = await Desk.login(base, "alice"), await Desk.login(base, "bob")
    sue, sam = await Desk.login(base, "sue"), await Desk.login(base, "sam")
    max_ = await Desk.login(base, "max")
    try:
        for d in (alice, bob, sue, sam):
            await d.connect()
        await sue.ws.send_json({"type": "watch"})
        await sam.ws.send_json({"type": "watch", "agent": "alice"})
        err = await sam.frame(lambda f: f["type"] == "error")
        assert "not an agent of your team" in err["error"]
        await bob.ws.send_json({"type": "watch", "agent": "alice"})
        assert "only supervisors" in (await bob.frame(lambda f: f["type"] == "error"))["error"]
        assert (await alice.post("/api/v1/agent/login", {"queues": ["billing"]}))[0] == 200
        assert (await bob.post("/api/v1/agent/login", {"queues": ["lost_card"]}))[0] == 200

        out = await phones.call("caller2", "6001")
        ring = await phones.wait_for_incoming("agent1", timeout=30)
        pop = await alice.frame(lambda f: f["type"] == "pop" and f["match"] == "customer")
        assert ring.state in (CallState.INCOMING, CallState.EARLY)  # not answered yet
        assert pop["status"] == "ringing" and pop["agent"] == "alice"
        assert pop["customer"]["name"] == "Mario Rossi" and pop["customer"]["segment"] == "gold"
        assert pop["caller"] == {"number": "+39021234567", "e164": "+39021234567",
                                 "status": "ok", "name": None}
        assert pop["queue"] == "billing" and pop["history"] == [] and pop["transfers"] == 0
        assert pop["repeat_contact"] is False
        lid = pop["linkedid"]
        watched = await sue.frame(lambda f: f["type"] == "pop" and f["linkedid"] == lid)
        assert watched["agent"] == "alice"
        state = await alice.frame(lambda f: f["type"] == "state" and f["state"] == "ringing")
        assert state["offered"] == [lid]

        cid = pop["customer"]["id"]
        assert (await alice.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 200
        assert (await bob.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 403
        assert (await bob.get(f"/api/v1/customers/{cid}/history"))[0] == 403
        assert (await sam.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 403
        assert (await sue.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 200
        assert (await alice.get(f"/api/v1/customers/{cid + 1}/history?linkedid={lid}"))[0] == 403
        status, found = await max_.get(f"/api/v1/customers/{cid}/history")
        assert status == 200 and found["customer"]["name"] == "Mario Rossi"

        await phones.answer(ring)
        await phones.wait_for_state(out, CallState.CONFIRMED)
        await alice.frame(lambda f: f["type"] == "pop" and f["status"] == "connected")
        # pre-paused for wrap-up as the call connects: no second call can slip in at hang-up
        m = await eventually(lambda: members(gateway))
        assert m[("billing", "PJSIP/agent1")]["reason"] == "wrap-up"
        await phones.hold(ring)
        await alice.frame(lambda f: f["type"] == "pop" and f["hold"] is True)
        await phones.unhold(ring)
        await alice.frame(lambda f: f["type"] == "pop" and f["hold"] is False
                          and f["status"] == "connected")

        await phones.hangup(out)
        await alice.frame(lambda f: f["type"] == "pop" and f["status"] == "wrap_up")
        st = await alice.frame(lambda f: f["type"] == "state" and f["state"] == "wrap_up")
        assert st["wrapup"] == [lid]
        m = await members(gateway)
        assert m[("billing", "PJSIP/agent1")] == {"name": "alice", "paused": "1",
                                                  "reason": "wrap-up"}
        assert (await alice.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 200

        status, body = await alice.post("/api/v1/agent/wrapup", {
            "linkedid": lid, "disposition": "resolved",
            "notes": "explained the March bill", "case": "send a copy of the bill"})
        assert status == 200, body
        assert body["interaction"]["disposition"] == "resolved"
        assert body["case"]["subject"] == "send a copy of the bill"
        await alice.frame(lambda f: f["type"] == "pop_end" and f["linkedid"] == lid)
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "ready")
        assert (await members(gateway))[("billing", "PJSIP/agent1")]["paused"] == "0"
        status, body = await alice.post("/api/v1/agent/wrapup",
                                        {"linkedid": lid, "disposition": "resolved"})
        assert status == 409
        # now the call is over, the agent can no longer read Mario's history
        assert (await alice.get(f"/api/v1/customers/{cid}/history?linkedid={lid}"))[0] == 403

        # the same caller again: the pop shows the last call with the agent's notes
        n = len(alice.frames)
        out = await phones.call("caller2", "6001")
        ring = await phones.wait_for_incoming("agent1", timeout=30)
        pop2 = await alice.frame(lambda f: f["type"] == "pop" and f["match"] == "customer",
                                 after=n)
        assert ring.state in (CallState.INCOMING, CallState.EARLY)
        assert [h["notes"] for h in pop2["history"]] == ["explained the March bill"]
        assert pop2["history"][0]["agent"] == "alice"
        assert pop2["history"][0]["queue"] == "billing"
        assert [c["subject"] for c in pop2["cases"]] == ["send a copy of the bill"]
        assert pop2["repeat_contact"] is True  # same customer, same topic (queue), same day
        await phones.hangup(out)
        await alice.frame(lambda f: f["type"] == "pop_end" and f["linkedid"] == pop2["linkedid"])
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "ready", after=n)
    finally:
        for d in (alice, bob, sue, sam, max_):
            await d.close()
    # bob's and sam's desktops never saw Mario
    for d in (bob, sam):
        assert not [f for f in d.frames if f["type"] in ("pop", "pop_end")]
    async with gateway.ctx.sessions() as s:
        row = await s.scalar(select(InteractionRow).where(InteractionRow.linkedid == lid))
    assert (row.agent, row.disposition, row.outcome, row.queue) == (
        "alice", "resolved", "resolved", "billing")
    wrapups = [e for e in gateway.seen if isinstance(e, WrapUpSubmitted)]
    assert [(w.linkedid, w.username, w.disposition) for w in wrapups] == [(lid, "alice",
                                                                           "resolved")]
    alice_states = [e.state for e in gateway.seen
                    if isinstance(e, AgentStateChanged) and e.username == "alice"]
    assert alice_states[:5] == ["ready", "ringing", "on_call", "wrap_up", "ready"]
    await eventually(lambda: gateway.ctx.component("cti")._audit.empty())
    views = await gateway.ctx.component("cti").store.views(customer_id=cid)
    seen = {(v["username"], v["via"], v["reason"]) for v in views}
    assert {("alice", "pop", lid), ("sue", "watch", lid), ("alice", "api", lid),
            ("sue", "api", lid), ("max", "api", "search")} <= seen


async def anna_talks_to_alice(alice, phones):
    """Alice logs in to billing and answers Anna Bianchi's call, which popped her record:
    (the caller's call, alice's call, the linkedid)."""
    assert (await alice.post("/api/v1/agent/login", {"queues": ["billing"]}))[0] == 200
    out = await phones.call("caller3", "6001")
    first = await phones.wait_for_incoming("agent1", timeout=30)
    pop = await alice.frame(lambda f: f["type"] == "pop" and f["match"] == "customer")
    assert pop["customer"]["name"] == "Anna Bianchi"
    await phones.answer(first)
    await phones.wait_for_state(out, CallState.CONFIRMED)
    await phones.wait_for_media(out)
    await phones.wait_for_media(first)
    await alice.frame(lambda f: f["type"] == "pop" and f["status"] == "connected")
    return out, first, pop["linkedid"]


async def test_the_pop_follows_a_blind_transfer_to_the_next_agent(gateway, phones):
    base = gateway.base_url
    alice, bob = await Desk.login(base, "alice"), await Desk.login(base, "bob")
    try:
        await alice.connect()
        await bob.connect()
        out, first, lid = await anna_talks_to_alice(alice, phones)
        await phones.transfer(first, "agent2")
        second = await phones.wait_for_incoming("agent2", timeout=30)
        moved = await bob.frame(lambda f: f["type"] == "pop" and f["linkedid"] == lid)
        assert moved["customer"]["name"] == "Anna Bianchi" and moved["status"] == "ringing"
        assert second.state in (CallState.INCOMING, CallState.EARLY)
        await phones.answer(second)
        bob_pop = await bob.frame(lambda f: f["type"] == "pop" and f["status"] == "connected")
        assert bob_pop["transfers"] == 1
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "wrap_up")
        assert (await alice.post("/api/v1/agent/wrapup", {
            "linkedid": lid, "disposition": "escalated", "notes": "to bob"}))[0] == 200
        await phones.hangup(out)
        await bob.frame(lambda f: f["type"] == "pop" and f["status"] == "wrap_up")
        status, body = await bob.post("/api/v1/agent/wrapup", {
            "linkedid": lid, "disposition": "resolved", "notes": "card reissued"})
        assert status == 200, body
        assert body["interaction"]["notes"] == "to bob\n[bob] card reissued"
        assert body["interaction"]["agent"] == "bob"
    finally:
        await alice.close()
        await bob.close()


async def test_the_pop_follows_an_attended_transfer_and_the_consultation_pops_nothing(
        gateway, phones):
    base = gateway.base_url
    alice, bob = await Desk.login(base, "alice"), await Desk.login(base, "bob")
    try:
        await alice.connect()
        await bob.connect()
        out, first, lid = await anna_talks_to_alice(alice, phones)
        await phones.hold(first)  # "one moment, let me ask a colleague"
        consult = await phones.call("agent1", "agent2")
        asked = await phones.wait_for_incoming("agent2", timeout=30)
        await phones.answer(asked)
        await phones.wait_for_media(consult)
        assert not [f for f in bob.frames if f["type"] == "pop"]  # a colleague calling is no pop
        await phones.transfer_attended(first, consult)
        done = await phones.wait_for_transfer(first)
        assert 200 <= done.code < 300
        moved = await bob.frame(lambda f: f["type"] == "pop" and f["linkedid"] == lid)
        assert moved["customer"]["name"] == "Anna Bianchi"
        assert moved["status"] == "connected" and moved["transfers"] == 1
        await phones.wait_for_state(first, CallState.DISCONNECTED)  # alice leaves both calls
        await phones.wait_for_state(consult, CallState.DISCONNECTED)
        assert not out.ended and not asked.ended  # the caller now talks to bob
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "wrap_up")
        await phones.hangup(out)
        await bob.frame(lambda f: f["type"] == "pop" and f["status"] == "wrap_up")
    finally:
        await alice.close()
        await bob.close()
    calls = await eventually(lambda: gateway.ctx.calls.get(lid), what="the saved call")
    kinds = [(e.kind.value, e.data.get("type")) for e in calls.timeline if e.kind.value == "transfer"]
    assert kinds == [("transfer", "attended")]


async def test_what_the_caller_told_the_ivr_is_in_the_pop(gateway, phones, sandbox):
    from gateway.sip.audio import tts_wav_async

    wav = await tts_wav_async("I lost my card")
    bob = await Desk.login(gateway.base_url, "bob")
    a = sandbox.settings.asterisk
    try:
        await bob.connect()
        assert (await bob.post("/api/v1/agent/login", {"queues": ["lost_card"]}))[0] == 200
        async with PhoneHost(clock_rate=8000) as callers:
            await callers.add_account("caller3", sandbox.phone_password("caller3"), a.host,
                                      a.sip_port, register=False)
            prompts = []
            gateway.ari.on_event(
                lambda ev: ev.get("type") == "PlaybackStarted" and prompts.append(ev))
            call = await callers.call("caller3", "100")  # the English IVR
            await callers.wait_for_state(call, CallState.CONFIRMED, timeout=15)
            ivr = gateway.ctx.component("ivr")
            await eventually(lambda: ivr.sessions, what="an IVR session")
            await eventually(lambda: prompts, what="the welcome prompt")  # then the caller talks
            await callers.play(call, wav)
            ring = await phones.wait_for_incoming("agent2", timeout=60)
            pop = await bob.frame(lambda f: f["type"] == "pop" and f["ivr"]
                                  and f["match"] == "customer", timeout=30)
            assert ring.state in (CallState.INCOMING, CallState.EARLY)
            assert pop["customer"]["name"] == "Anna Bianchi" and pop["queue"] == "lost_card"
            ivr_part = pop["ivr"]
            assert (ivr_part["intent"], ivr_part["via"], ivr_part["language"]) == (
                "lost_card", "speech", "en")
            assert ivr_part["confidence"] >= 0.5
            assert ivr_part["transcript"] == "i lost my card"
            await callers.hangup(call)
        await bob.frame(lambda f: f["type"] == "pop" and f["status"] != "ringing"
                        or f["type"] == "pop_end")
    finally:
        await bob.close()
