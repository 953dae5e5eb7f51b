"""What the dashboards and the coaching view read: SQL aggregates over ``call_metrics``.

Two audiences, two shapes, and the difference is the point:

* managers and admins get **aggregates** by queue, intent and day (AHT, service level, MOS
  distribution, repeat-contact rate). Nothing is grouped by agent, so nothing here can become a
  league table.
* a supervisor gets the **calls** of their own team that are worth a look, each with its
  reasons, newest first; per-agent figures only for one agent at a time, on request, without
  any comparison to colleagues. Team lists are alphabetical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.metrics.review import REASONS
from gateway.quality.orm import CallMetricsRow as M
from gateway.quality.store import _cti_model, aware

MOS_BUCKETS = [(1.0 + 0.5 * i, 1.5 + 0.5 * i) for i in range(7)]  # 1.0-1.5 ... 4.0-4.5


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime

    def where(self) -> Any:
        return and_(M.started_at >= self.since, M.started_at < self.until)

    def as_dict(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def _r(x: Any, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _pct(num: Any, den: Any) -> float | None:
    return None if not den else round(100.0 * float(num or 0) / float(den), 1)


def _count_if(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _aggregates(mos_below: float = 3.6) -> list[Any]:
    return [
        func.count().label("calls"),
        _count_if(M.queued.is_(True)).label("queued"),
        _count_if(M.answered.is_(True)).label("answered"),
        _count_if(M.abandoned.is_(True)).label("abandoned"),
        _count_if(M.answered_within_sl.is_(True)).label("sl_within"),
        _count_if(M.answered_within_sl.is_not(None)).label("sl_base"),
        func.avg(M.aht_s).label("aht_avg_s"),
        func.avg(case((M.answered.is_(True), M.talk_s))).label("talk_avg_s"),
        func.avg(case((M.answered.is_(True), M.hold_s))).label("hold_avg_s"),
        func.avg(M.acw_s).label("acw_avg_s"),
        func.avg(case((M.queued.is_(True), M.queue_wait_s))).label("queue_wait_avg_s"),
        func.avg(M.mos_min).label("mos_avg"),
        _count_if(M.mos_min < mos_below).label("mos_low"),
        _count_if(M.mos_min.is_not(None)).label("mos_base"),
        _count_if(M.repeat_contact.is_(True)).label("repeats"),
        _count_if(M.repeat_contact.is_not(None)).label("repeat_base"),
        _count_if(M.acw_capped.is_(True)).label("acw_capped"),
    ]


def _shape(row: Any) -> dict[str, Any]:
    return {
        "calls": int(row.calls or 0), "queued": int(row.queued or 0),
        "answered": int(row.answered or 0), "abandoned": int(row.abandoned or 0),
        "service_level_pct": _pct(row.sl_within, row.sl_base),
        "aht_avg_s": _r(row.aht_avg_s, 1), "talk_avg_s": _r(row.talk_avg_s, 1),
        "hold_avg_s": _r(row.hold_avg_s, 1), "acw_avg_s": _r(row.acw_avg_s, 1),
        "queue_wait_avg_s": _r(row.queue_wait_avg_s, 1), "mos_avg": _r(row.mos_avg),
        "mos_below_review_pct": _pct(row.mos_low, row.mos_base),
        "repeat_contact_pct": _pct(row.repeats, row.repeat_base),
        "acw_capped": int(row.acw_capped or 0),
    }


async def overview(sessions: async_sessionmaker[AsyncSession], period: Period,
                   mos_below: float = 3.6) -> dict[str, Any]:
    """The managers' page: totals, by queue, by intent, MOS distribution."""
    agg = _aggregates(mos_below)
    async with sessions() as s:
        total = (await s.execute(select(*agg).where(period.where()))).one()
        by_queue = (await s.execute(select(M.queue, *agg).where(period.where())
                                    .group_by(M.queue).order_by(M.queue))).all()
        by_intent = (await s.execute(select(M.intent, *agg).where(period.where())
                                     .group_by(M.intent).order_by(M.intent))).all()
    return {
        "period": period.as_dict(), "mos_review_below": mos_below, "totals": _shape(total),
        "by_queue": [{"queue": r.queue, **_shape(r)} for r in by_queue],
        "by_intent": [{"intent": r.intent, **_shape(r)} for r in by_intent],
        "mos_distribution": await mos_distribution(sessions, period),
    }


async def mos_distribution(sessions: async_sessionmaker[AsyncSession], period: Period
                           ) -> list[dict[str, Any]]:
    """Calls per half-point MOS bucket (worst leg of each call); 4.5 falls in 4.0-4.5."""
    bucket = cast(M.mos_min * 2, Integer)  # truncation: the same on SQLite and PostgreSQL
    async with sessions() as s:
        rows = (await s.execute(select(bucket.label("b"), func.count().label("n"))
                                .where(period.where(), M.mos_min.is_not(None))
                                .group_by(bucket))).all()
    counts = {int(r.b): int(r.n) for r in rows}
    out = []
    for i, (lo, hi) in enumerate(MOS_BUCKETS):
        n = counts.get(2 + i, 0) + (counts.get(9, 0) if hi == 4.5 else 0)
        out.append({"from": lo, "to": hi, "calls": n})
    return out


async def daily(sessions: async_sessionmaker[AsyncSession], period: Period,
                mos_below: float = 3.6) -> list[dict[str, Any]]:
    """Aggregates per day (UTC), queue and intent: the CSV export."""
    day = func.date(M.started_at)
    async with sessions() as s:
        rows = (await s.execute(select(day.label("day"), M.queue, M.intent,
                                       *_aggregates(mos_below))
                                .where(period.where()).group_by(day, M.queue, M.intent)
                                .order_by(day, M.queue, M.intent))).all()
    return [{"day": str(r.day), "queue": r.queue, "intent": r.intent, **_shape(r)} for r in rows]


# -- coaching ----------------------------------------------------------------------------------
def _review_item(r: M) -> dict[str, Any]:
    return {
        "linkedid": r.linkedid, "started_at": aware(r.started_at).isoformat(),
        "agent": r.agent_username or r.agent, "queue": r.queue, "intent": r.intent,
        "reasons": [{"code": c, "text": REASONS.get(c, c)} for c in (r.review or [])],
        "mos_min": _r(r.mos_min), "hold_s": _r(r.hold_s, 1), "transfers": r.transfers,
        "repeat_contact": r.repeat_contact, "loss_pct_max": _r(r.loss_pct_max),
        "jitter_ms_max": _r(r.jitter_ms_max), "talk_s": _r(r.talk_s, 1),
    }


async def team_agents(sessions: async_sessionmaker[AsyncSession], team: str) -> list[str]:
    """The agents of a team, alphabetically (from the CTI's users; else from the calls)."""
    user = _cti_model("UserRow")
    async with sessions() as s:
        names: set[str] = set()
        conn = await s.connection()
        if user is not None and await conn.run_sync(lambda c: inspect(c).has_table("users")):
            names |= set((await s.scalars(select(user.username).where(
                user.team == team, user.role == "agent"))).all())
        names |= {n for n in (await s.scalars(select(M.agent_username).where(
            M.team == team).distinct())).all() if n}
    return sorted(names)


async def team_reviews(sessions: async_sessionmaker[AsyncSession], team: str, period: Period,
                       limit: int = 500) -> dict[str, Any]:
    """The team's calls flagged for review, newest first, with reasons."""
    async with sessions() as s:
        rows = (await s.scalars(select(M).where(period.where(), M.team == team,
                                                M.flagged.is_(True))
                                .order_by(M.started_at.desc()).limit(limit))).all()
    return {"team": team, "period": period.as_dict(),
            "agents": await team_agents(sessions, team),
            "calls": [_review_item(r) for r in rows]}


async def agent_detail(sessions: async_sessionmaker[AsyncSession], username: str,
                       team: str | None, period: Period, mos_below: float = 3.6
                       ) -> dict[str, Any]:
    """One agent's own figures and flagged calls (within ``team`` when given)."""
    cond = [period.where(), M.agent_username == username]
    if team is not None:
        cond.append(M.team == team)
    async with sessions() as s:
        agg = (await s.execute(select(*_aggregates(mos_below)).where(*cond))).one()
        flagged = (await s.scalars(select(M).where(*cond, M.flagged.is_(True))
                                   .order_by(M.started_at.desc()).limit(200))).all()
    figures = _shape(agg)
    for k in ("queued", "abandoned", "service_level_pct", "queue_wait_avg_s"):
        figures.pop(k)  # about the queue, not about the agent's work
    return {"agent": username, "team": team, "period": period.as_dict(), "figures": figures,
            "flagged_calls": [_review_item(r) for r in flagged]}


async def agent_team(sessions: async_sessionmaker[AsyncSession], username: str
                     ) -> tuple[bool, str | None]:
    """(known, team) of an agent: the CTI user's team, else the team of their latest call."""
    user = _cti_model("UserRow")
    async with sessions() as s:
        conn = await s.connection()
        if user is not None and await conn.run_sync(lambda c: inspect(c).has_table("users")):
            row = (await s.execute(select(user.team).where(user.username == username))).first()
            if row is not None:
                return True, row[0]
        row = (await s.execute(select(M.team).where(M.agent_username == username)
                               .order_by(M.started_at.desc()).limit(1))).first()
    return (True, row[0]) if row is not None else (False, None)
