"""Read and write ``quality_legs`` and ``call_metrics`` (SQLAlchemy 2.0, async).

Writes are upserts keyed by leg (uniqueid, source) and by call (linkedid): a call that is saved
again, or a wrap-up that closes its ACW later, updates the same rows and never duplicates them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.calls.model import CallRecord
from gateway.calls.orm import CallRow
from gateway.db.base import utcnow
from gateway.metrics.handle_time import HandleTime
from gateway.metrics.review import ReviewRules, review_reasons, topic
from gateway.quality.orm import CallMetricsRow, QualityLegRow
from gateway.quality.rtcp import LegQuality


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def worst_leg(legs: Iterable[LegQuality]) -> dict[str, Any]:
    """The per-call quality summary: the lowest-rated leg and the worst figures of any leg."""
    legs = list(legs)
    rated = [q for q in legs if q.r_factor is not None]
    worst = min(rated, key=lambda q: q.r_factor) if rated else None

    def top(values: Iterable[float | None]) -> float | None:
        xs = [v for v in values if v is not None]
        return max(xs) if xs else None

    return {
        "quality_legs": len(legs),
        "worst_uniqueid": worst.uniqueid if worst else None,
        "mos_min": worst.mos if worst else None,
        "r_min": worst.r_factor if worst else None,
        "loss_pct_max": top(x for q in legs for x in (q.loss_pct_in, q.loss_pct_out)),
        "jitter_ms_max": top(q.jitter_ms_max for q in legs),
        "rtt_ms_max": top(q.rtt_ms_max for q in legs),
    }


def metrics_values(call: CallRecord, ht: HandleTime, legs: Iterable[LegQuality], *,
                   repeat_contact: bool | None, repeat_source: str | None,
                   agent_username: str | None, team: str | None,
                   rules: ReviewRules) -> dict[str, Any]:
    """The ``call_metrics`` row of one call (pure)."""
    q = worst_leg(legs)
    review = review_reasons(mos_min=q["mos_min"], hold_s=ht.hold_s,
                            repeat_contact=repeat_contact, transfers=ht.transfers, rules=rules)
    return {
        "linkedid": call.linkedid, "started_at": call.started_at, "ended_at": call.ended_at,
        "caller_number": call.caller_number, "queue": call.queue, "intent": call.intent,
        "topic": topic(call.intent, call.queue), "agent": ht.agent,
        "agent_endpoint": ht.agent_endpoint, "agent_username": agent_username, "team": team,
        "queued": ht.queued, "answered": ht.answered, "abandoned": ht.abandoned,
        "ivr_s": ht.ivr_s, "queue_wait_s": ht.queue_wait_s, "ring_s": ht.ring_s,
        "talk_s": ht.talk_s, "hold_s": ht.hold_s, "hold_count": ht.hold_count,
        "transfers": ht.transfers, "acw_started_at": ht.acw_started_at,
        "acw_ended_at": ht.acw_ended_at, "acw_s": ht.acw_s, "acw_capped": ht.acw_capped,
        "aht_s": ht.aht_s, "service_level_s": ht.service_level_s,
        "answered_within_sl": ht.answered_within_sl, "repeat_contact": repeat_contact,
        "repeat_source": repeat_source, **q,
        "review": review, "flagged": bool(review),
        "updated_at": utcnow(),
    }


class QualityStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._tables: set[str] = set()  # tables seen to exist (they never go away)

    async def save(self, legs: Iterable[LegQuality], metrics: dict[str, Any] | None = None
                   ) -> None:
        """Upsert legs and (optionally) the call's metrics row in one transaction."""
        async with self._sessions.begin() as s:
            for q in legs:
                await s.merge(QualityLegRow(**dataclasses.asdict(q), measured_at=utcnow()))
            if metrics is not None:
                await s.merge(CallMetricsRow(**metrics))

    async def update_metrics(self, linkedid: str, rules: ReviewRules | None = None,
                             **values: Any) -> CallMetricsRow | None:
        """Change some columns of a call's metrics row (and, given ``rules``, its review
        reasons); None when there is no such row."""
        async with self._sessions.begin() as s:
            row = await s.get(CallMetricsRow, linkedid)
            if row is None:
                return None
            for k, v in values.items():
                setattr(row, k, v)
            if rules is not None:
                row.review = review_reasons(mos_min=row.mos_min, hold_s=row.hold_s,
                                            repeat_contact=row.repeat_contact,
                                            transfers=row.transfers, rules=rules)
                row.flagged = bool(row.review)
            row.updated_at = utcnow()
            return row

    async def metrics(self, linkedid: str) -> CallMetricsRow | None:
        async with self._sessions() as s:
            return await s.get(CallMetricsRow, linkedid)

    async def legs(self, linkedid: str) -> list[QualityLegRow]:
        async with self._sessions() as s:
            return list((await s.scalars(select(QualityLegRow).where(
                QualityLegRow.linkedid == linkedid).order_by(QualityLegRow.uniqueid))).all())

    async def open_acw(self) -> list[CallMetricsRow]:
        """Calls whose after-call work has not closed (reloaded after a restart)."""
        async with self._sessions() as s:
            return list((await s.scalars(select(CallMetricsRow).where(
                CallMetricsRow.acw_started_at.is_not(None),
                CallMetricsRow.acw_ended_at.is_(None)))).all())

    async def repeat_from_calls(self, call: CallRecord, window: timedelta) -> bool | None:
        """Same caller number, same topic (intent, else queue), started within ``window``
        before this call, from the calls table. None: unknown caller or topic."""
        subject = topic(call.intent, call.queue)
        if not call.caller_number or not subject:
            return None
        async with self._sessions() as s:
            n = await s.scalar(select(func.count()).select_from(CallRow).where(
                CallRow.caller_number == call.caller_number,
                CallRow.linkedid != call.linkedid,
                CallRow.started_at >= call.started_at - window,
                CallRow.started_at < call.started_at,
                func.coalesce(CallRow.intent, CallRow.queue) == subject))
        return bool(n)

    async def repeat_from_cti(self, linkedid: str) -> bool | None:
        """The CTI's ``interactions.repeat_contact`` for this call; None if it has no row (yet)
        or the CTI is not installed."""
        interaction = _cti_model("InteractionRow")
        if interaction is None or not await self._has_table(interaction.__tablename__):
            return None
        async with self._sessions() as s:
            row = (await s.execute(select(interaction.repeat_contact).where(
                interaction.linkedid == linkedid))).first()
        return None if row is None else bool(row[0])

    async def agent_user(self, endpoint: str | None, member: str | None
                         ) -> tuple[str, str | None] | None:
        """(username, team) of the agent on ``endpoint`` (active users first), or whose
        username is the queue member name; None without the CTI or a match."""
        user = _cti_model("UserRow")
        if user is None or not (endpoint or member) or not await self._has_table("users"):
            return None
        conds = []
        if endpoint:
            conds.append(user.endpoint == endpoint)
        if member:
            conds.append(user.username == member.lower())
        async with self._sessions() as s:
            rows = (await s.execute(select(user.username, user.team, user.endpoint,
                                           user.disabled).where(or_(*conds)))).all()
        if not rows:
            return None
        rows.sort(key=lambda r: (bool(r.disabled), r.endpoint != endpoint))
        return rows[0].username, rows[0].team

    async def _has_table(self, name: str) -> bool:
        if name not in self._tables:
            async with self._sessions() as s:
                conn = await s.connection()
                if await conn.run_sync(lambda c: inspect(c).has_table(name)):
                    self._tables.add(name)
        return name in self._tables


def _cti_model(name: str) -> Any:
    try:
        import cti.orm as cti_orm
    except ImportError:
        return None
    return getattr(cti_orm, name, None)
