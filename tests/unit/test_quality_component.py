"""The quality component's event handling, driven through the bus with a real database.

The AMI link is the only fake (fault injection: Setvar refused, recorded actions); calls,
wrap-ups and agent states arrive as the bus events the service and the CTI publish.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from gateway.ami.client import AMIConnectionError
from gateway.ami.protocol import Event
from gateway.bus import Bus
from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.calls.store import CallStore
from gateway.calls.tracker import CallTracker
from gateway.component import GatewayContext
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.events import AgentStateChanged, CallSaved, MediaStats, WrapUpSubmitted
from gateway.quality.component import QualityComponent
from gateway.settings import Settings


class FakeAMI:
    def __init__(self, fail: bool = False) -> None:
        self.handlers, self.actions, self.fail, self.connected = [], [], fail, True

    def on_event(self, h):
        self.handlers.append(h)

    async def action(self, name, **fields):
        self.actions.append((name, fields))
        if self.fail:
            raise AMIConnectionError("link down")

    def feed(self, headers: dict) -> None:
        ev = Event.from_headers(headers)
        for h in self.handlers:
            h(ev)


@pytest.fixture
async def env(sqlite_url, tmp_path):
    await upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    made = []

    async def make(acw_max_s=300.0, ami=None):
        settings = Settings(data_dir=tmp_path, quality={"acw_max_s": acw_max_s})
        ami = ami or FakeAMI()
        ctx = GatewayContext(settings=settings, ami=ami, ari=None, engine=engine,
                             sessions=sessions, calls=CallStore(sessions), tracker=CallTracker(),
                             bus=Bus(), app=web.Application(), readiness={})
        comp = QualityComponent()
        ctx.components["quality"] = comp
        comp.setup(ctx)
        await comp.start()
        made.append(comp)
        return comp

    yield make
    for comp in made:
        await comp.stop()
    await engine.dispose()


T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def answered_call(lid="L1", hold=(20, 50), end=100) -> CallRecord:
    c = CallRecord(lid, T0, caller_number="3351234567", queue="billing", agent="agent1")
    c.legs = [Leg(lid, "PJSIP/caller1-1", "caller1", "inbound", T0, "ulaw", T0, at(end)),
              Leg(lid + "1", "PJSIP/agent1-2", "agent1", "outbound", at(4), "ulaw", at(5),
                  at(end))]
    c.timeline = [CallEvent(T0, Kind.START), CallEvent(T0, Kind.QUEUE_JOIN, {"queue": "billing"}),
                  CallEvent(at(4), Kind.AGENT_OFFERED, {"agent": "agent1"}),
                  CallEvent(at(5), Kind.AGENT_CONNECTED, {"agent": "agent1"}),
                  CallEvent(at(hold[0]), Kind.HOLD_ON, {"channel": "PJSIP/agent1-2"}),
                  CallEvent(at(hold[1]), Kind.HOLD_OFF, {"channel": "PJSIP/agent1-2"}),
                  CallEvent(at(end), Kind.AGENT_COMPLETE, {"agent": "agent1"}),
                  CallEvent(at(end), Kind.HANGUP), CallEvent(at(end), Kind.END)]
    c.ended_at = at(end)
    return c


async def saved(comp, call):
    comp.ctx.bus.publish(CallSaved(call))
    await comp.ctx.bus.drain()
    return await comp.store.metrics(call.linkedid)


async def test_wrap_up_closes_acw_and_sets_aht(env):
    comp = await env()
    row = await saved(comp, answered_call())
    assert row.aht_s is None and row.acw_started_at is not None
    assert (row.talk_s, row.hold_s, row.queue_wait_s, row.ring_s) == (65, 30, 5, 1)
    comp.ctx.bus.publish(WrapUpSubmitted("L1", "anna", "agent1", "resolved", at(145)))
    await comp.ctx.bus.drain()
    row = await comp.store.metrics("L1")
    assert row.acw_s == 45 and row.aht_s == 65 + 30 + 45 and not row.acw_capped
    assert row.repeat_source == "calls" and row.repeat_contact is False  # no CTI loaded


async def test_a_wrap_up_that_comes_before_the_call_is_saved_still_counts(env):
    comp = await env()
    comp.ctx.bus.publish(WrapUpSubmitted("L1", "anna", "agent1", "resolved", at(130)))
    await comp.ctx.bus.drain()
    row = await saved(comp, answered_call())
    assert row.acw_s == 30 and row.aht_s == 65 + 30 + 30


async def test_going_ready_ends_the_agents_acw(env):
    comp = await env()
    await saved(comp, answered_call())
    comp.ctx.bus.publish(AgentStateChanged("anna", "agent2", "ready", None, at(150)))  # not her
    await comp.ctx.bus.drain()
    assert (await comp.store.metrics("L1")).aht_s is None
    comp.ctx.bus.publish(AgentStateChanged("anna", "agent1", "paused", "lunch", at(150)))
    comp.ctx.bus.publish(AgentStateChanged("anna", "agent1", "ready", None, at(160)))
    await comp.ctx.bus.drain()
    assert (await comp.store.metrics("L1")).acw_s == 60
    comp.ctx.bus.publish(WrapUpSubmitted("L1", "anna", "agent1", "resolved", at(200)))
    await comp.ctx.bus.drain()
    assert (await comp.store.metrics("L1")).acw_s == 60  # the first close wins


async def test_a_forgotten_wrap_up_is_closed_at_the_maximum_and_flagged(env):
    comp = await env(acw_max_s=1.0)
    now = datetime.now(UTC)
    call = answered_call()
    shift = now - call.ended_at  # the agent hung up just now
    for e in call.timeline:
        e.at += shift
    for leg in call.legs:
        leg.started_at += shift
        leg.answered_at += shift
    call.started_at += shift
    call.ended_at = now
    row = await saved(comp, call)
    assert row.aht_s is None
    for _ in range(50):
        await asyncio.sleep(0.1)
        row = await comp.store.metrics("L1")
        if row.aht_s is not None:
            break
    assert row.acw_capped and row.acw_s == 1.0 and row.aht_s == 65 + 30 + 1


async def test_open_acw_survives_a_restart(env):
    first = await env()
    await saved(first, answered_call())
    await first.stop()
    second = await env()  # a new gateway process on the same database
    second.ctx.bus.publish(WrapUpSubmitted("L1", "anna", "agent1", "resolved", at(110)))
    await second.ctx.bus.drain()
    assert (await second.store.metrics("L1")).aht_s == 65 + 30 + 10


async def test_rtcp_events_become_rated_legs_and_the_handler_is_pushed_on_pjsip_only(env):
    comp = await env()
    ami = comp.ctx.ami
    for chan in ("PJSIP/caller1-1", "Local/6001@from-callers-0001;1"):
        ami.feed({"Event": "Newchannel", "Channel": chan, "Uniqueid": "L1", "Linkedid": "L1"})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [f["Channel"] for _, f in ami.actions] == ["PJSIP/caller1-1"]
    assert ami.actions[0][1]["Variable"] == "CHANNEL(hangup_handler_push)"
    seq = 1000
    for i in range(12):
        seq += 25
        ami.feed({"Event": "RTCPSent", "Channel": "PJSIP/caller1-1", "Uniqueid": "L1",
                  "Linkedid": "L1", "Report0SourceSSRC": "0x1", "Report0HighestSequence": seq,
                  "Report0SequenceNumberCycles": 0, "Report0CumulativeLost": i,
                  "Report0FractionLost": 10, "Report0IAJitter": 24})
    row = await saved(comp, answered_call())
    (leg,) = await comp.store.legs("L1")
    assert leg.endpoint == "caller1" and leg.codec == "ulaw" and leg.jitter_ms_avg == 3.0
    assert leg.loss_pct_in == pytest.approx(100 * 11 / 275)
    assert row.mos_min == leg.mos and row.worst_uniqueid == "L1"


async def test_a_refused_handler_push_is_counted_and_harmless(env):
    comp = await env(ami=FakeAMI(fail=True))
    comp.ctx.ami.feed({"Event": "Newchannel", "Channel": "PJSIP/agent1-9", "Uniqueid": "X"})
    for _ in range(5):
        await asyncio.sleep(0)
    assert comp.pushes_failed == 1


async def test_media_the_gateway_received_joins_its_call_before_or_after_the_save(env):
    comp = await env()
    now = datetime.now(UTC)
    early = MediaStats("L1", "ivr-1", "ivr", "ulaw", 950, 50, 4.0, 9.0, None, now, now)
    comp.ctx.bus.publish(early)
    await comp.ctx.bus.drain()
    row = await saved(comp, answered_call())
    assert row.worst_uniqueid == "ivr-1" and row.quality_legs == 1
    late = MediaStats("L1", "ivr-2", "ivr", "ulaw", 800, 200, 4.0, 9.0, None, now, now)
    comp.ctx.bus.publish(late)
    await comp.ctx.bus.drain()
    row = await comp.store.metrics("L1")
    assert row.worst_uniqueid == "ivr-2" and row.quality_legs == 2 and row.mos_min < 3.0
    assert row.review == ["low_mos"]
