"""Quality and handle-time rows on SQLite and PostgreSQL: written once, updated in place, and
read back by the dashboards as aggregates (never per agent) and by the coaching view per team."""

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.calls.store import CallStore
from gateway.db.base import Base
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.db.models import import_all_models
from gateway.metrics.handle_time import close_acw, handle_time
from gateway.metrics.review import ReviewRules
from gateway.quality import reports
from gateway.quality.orm import CallMetricsRow, QualityLegRow
from gateway.quality.reports import Period
from gateway.quality.rtcp import LegQuality
from gateway.quality.store import QualityStore, metrics_values

NOW = datetime.now(UTC).replace(microsecond=0)
RULES = ReviewRules()


@pytest.fixture
async def db(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    yield engine, make_sessionmaker(engine)
    await engine.dispose()


def leg_quality(uid, lid, mos, r, loss=0.0, jitter=1.0):
    return LegQuality(uid, lid, f"PJSIP/x-{uid}", "caller1", "asterisk", "ulaw", 20, 1000, 0,
                      loss, 1000, 0, 0.0, 0.5, jitter, jitter * 2, 0.0, loss, loss, 0.3, 0.4,
                      0.5, 1.0, 40.0, r, r, r, mos, "in", 88.0)


def a_call(lid, start, *, caller="3351234567", queue="billing", intent="lost_card",
           hold=0.0, answered=True, wait=5.0):
    c = CallRecord(lid, start, caller_number=caller, queue=queue, intent=intent)
    c.legs.append(Leg(lid, "PJSIP/caller1-1", "caller1", "inbound", start, answered_at=start))
    t = [CallEvent(start, Kind.START), CallEvent(start, Kind.QUEUE_JOIN, {"queue": queue})]
    end = start + timedelta(seconds=wait + 60 + hold)
    if answered:
        ans = start + timedelta(seconds=wait)
        c.legs.append(Leg(lid + ".1", "PJSIP/agent1-2", "agent1", "outbound", ans,
                          answered_at=ans))
        t += [CallEvent(ans, Kind.AGENT_CONNECTED, {"agent": "agent1"})]
        if hold:
            t += [CallEvent(ans + timedelta(seconds=10), Kind.HOLD_ON, {"channel": "a"}),
                  CallEvent(ans + timedelta(seconds=10 + hold), Kind.HOLD_OFF, {"channel": "a"})]
        t += [CallEvent(end, Kind.AGENT_COMPLETE, {"agent": "agent1"})]
    else:
        t += [CallEvent(end, Kind.QUEUE_LEAVE, {"abandoned": True})]
    c.timeline = t + [CallEvent(end, Kind.HANGUP), CallEvent(end, Kind.END)]
    c.ended_at = end
    return c


async def save(store, call, legs, *, team="red", user="anna", repeat=False, acw=30.0):
    ht = handle_time(call, 20)
    if ht.acw_started_at is not None and acw is not None:
        ht = close_acw(ht, ht.acw_started_at + timedelta(seconds=acw), 300)
    await store.save(legs, metrics_values(call, ht, legs, repeat_contact=repeat,
                                          repeat_source="calls", agent_username=user,
                                          team=team, rules=RULES))
    return ht


async def test_the_migration_creates_exactly_the_orm_tables(db):
    engine, _ = db
    import_all_models()
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c), Base.metadata))
    mine = [d for d in diff if any(t in repr(d) for t in ("quality_legs", "call_metrics"))]
    assert mine == []


async def test_legs_and_metrics_are_upserted_not_duplicated(db):
    _, sessions = db
    store = QualityStore(sessions)
    call = a_call("L1", NOW - timedelta(hours=1), hold=30)
    legs = [leg_quality("L1", "L1", 4.3, 90.0), leg_quality("L1.1", "L1", 3.2, 62.0, loss=6.0)]
    await save(store, call, legs)
    await save(store, call, legs)  # saved again: same rows
    rows = await store.legs("L1")
    assert [r.uniqueid for r in rows] == ["L1", "L1.1"]
    m = await store.metrics("L1")
    assert m.worst_uniqueid == "L1.1" and m.mos_min == 3.2 and m.loss_pct_max == 6.0
    assert m.hold_s == 30 and m.acw_s == 30 and m.aht_s == m.talk_s + 30 + 30
    assert m.review == ["low_mos"] and m.flagged
    async with sessions() as s:
        from sqlalchemy import func, select
        assert await s.scalar(select(func.count()).select_from(QualityLegRow)) == 2
        assert await s.scalar(select(func.count()).select_from(CallMetricsRow)) == 1


async def test_an_open_acw_is_found_again_and_closing_it_sets_aht(db):
    _, sessions = db
    store = QualityStore(sessions)
    await save(store, a_call("L2", NOW - timedelta(minutes=5)), [], acw=None)
    (row,) = await store.open_acw()
    assert row.linkedid == "L2" and row.aht_s is None
    await store.update_metrics("L2", acw_s=12.0, acw_ended_at=NOW, aht_s=row.talk_s + 12)
    assert await store.open_acw() == []
    assert (await store.metrics("L2")).aht_s == pytest.approx(60 + 12)


async def test_updating_repeat_contact_recomputes_the_review_reasons(db):
    _, sessions = db
    store = QualityStore(sessions)
    await save(store, a_call("L3", NOW), [leg_quality("L3", "L3", 4.4, 92.0)])
    assert not (await store.metrics("L3")).flagged
    await store.update_metrics("L3", rules=RULES, repeat_contact=True, repeat_source="cti")
    row = await store.metrics("L3")
    assert row.review == ["repeat_contact"] and row.flagged and row.repeat_source == "cti"


async def test_repeat_contact_from_the_calls_table(db):
    _, sessions = db
    calls, store = CallStore(sessions), QualityStore(sessions)
    first = a_call("R1", NOW - timedelta(days=3))
    other_topic = a_call("R2", NOW - timedelta(days=2), intent="billing")
    too_old = a_call("R3", NOW - timedelta(days=9), intent="card_info")
    for c in (first, other_topic, too_old):
        await calls.save(c)
    assert await store.repeat_from_calls(a_call("R4", NOW), timedelta(days=7)) is True
    assert await store.repeat_from_calls(a_call("R5", NOW, intent="card_info"),
                                         timedelta(days=7)) is False
    assert await store.repeat_from_calls(a_call("R6", NOW, caller=None), timedelta(days=7)) is None
    # no intent: the queue is the topic
    await calls.save(a_call("R7", NOW - timedelta(days=1), intent=None, queue="general"))
    assert await store.repeat_from_calls(a_call("R8", NOW, intent=None, queue="general"),
                                         timedelta(days=7)) is True


async def test_the_overview_aggregates_by_queue_and_intent(db):
    _, sessions = db
    store = QualityStore(sessions)
    t = NOW - timedelta(hours=2)
    await save(store, a_call("A", t, wait=5), [leg_quality("A", "A", 4.4, 92.0)])
    await save(store, a_call("B", t, wait=30, hold=200), [leg_quality("B", "B", 3.0, 55.0)],
               repeat=True)
    await save(store, a_call("C", t, queue="general", intent="billing", answered=False), [])
    await save(store, a_call("OLD", NOW - timedelta(days=40)), [leg_quality("O", "OLD", 1.5, 20)])
    data = await reports.overview(sessions, Period(NOW - timedelta(days=30), NOW + timedelta(1)))
    tot = data["totals"]
    assert tot["calls"] == 3 and tot["answered"] == 2 and tot["abandoned"] == 1
    assert tot["service_level_pct"] == pytest.approx(100 / 3, abs=0.1)  # A within 20 s only
    assert tot["aht_avg_s"] == pytest.approx(((60 + 30) + (260 + 30)) / 2, abs=0.1)
    assert tot["mos_avg"] == pytest.approx(3.7) and tot["mos_below_review_pct"] == 50.0
    assert tot["repeat_contact_pct"] == pytest.approx(100 / 3, abs=0.1)
    assert [q["queue"] for q in data["by_queue"]] == ["billing", "general"]
    assert [i["intent"] for i in data["by_intent"]] == ["billing", "lost_card"]
    dist = {(b["from"], b["to"]): b["calls"] for b in data["mos_distribution"]}
    assert dist[(4.0, 4.5)] == 1 and dist[(3.0, 3.5)] == 1 and sum(dist.values()) == 2
    assert not any("agent" in k for row in data["by_queue"] for k in row)


async def test_the_daily_export_groups_by_day_queue_and_intent(db):
    _, sessions = db
    store = QualityStore(sessions)
    day1 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    await save(store, a_call("D1", day1), [])
    await save(store, a_call("D2", day1 + timedelta(hours=1)), [])
    await save(store, a_call("D3", day1 + timedelta(days=1)), [])
    rows = await reports.daily(sessions, Period(day1 - timedelta(days=1), day1 + timedelta(3)))
    assert [(r["day"], r["calls"]) for r in rows] == [("2026-11-20", 2), ("2026-11-21", 1)]


async def test_coaching_sees_one_teams_flagged_calls_newest_first(db):
    _, sessions = db
    store = QualityStore(sessions)
    t = NOW - timedelta(hours=3)
    await save(store, a_call("T1", t, hold=200), [], team="red", user="anna")
    await save(store, a_call("T2", t + timedelta(hours=1)), [leg_quality("x", "T2", 3.1, 58)],
               team="red", user="bruno")
    await save(store, a_call("T3", t), [], team="red", user="anna")  # nothing to review
    await save(store, a_call("T4", t, hold=300), [], team="blue", user="carla")
    period = Period(NOW - timedelta(days=7), NOW + timedelta(1))
    red = await reports.team_reviews(sessions, "red", period)
    assert [c["linkedid"] for c in red["calls"]] == ["T2", "T1"]
    assert red["calls"][1]["reasons"][0]["code"] == "long_hold"
    assert red["agents"] == ["anna", "bruno"]
    detail = await reports.agent_detail(sessions, "anna", "red", period)
    assert detail["figures"]["answered"] == 2
    assert [c["linkedid"] for c in detail["flagged_calls"]] == ["T1"]
    assert await reports.agent_team(sessions, "carla") == (True, "blue")
    assert await reports.agent_team(sessions, "nobody") == (False, None)
