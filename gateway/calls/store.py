"""Persist call records. Saving the same linkedid again replaces it: exactly one record per call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.calls.orm import CallRow, EventRow, LegRow

SUMMARY = ("queue", "agent", "transfers", "intent", "intent_confidence", "language", "ivr_via",
           "transcript_id")


class CallStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, call: CallRecord) -> None:
        async with self._sessions.begin() as s:
            await s.execute(delete(EventRow).where(EventRow.linkedid == call.linkedid))
            await s.execute(delete(LegRow).where(LegRow.linkedid == call.linkedid))
            await s.merge(CallRow(
                linkedid=call.linkedid, started_at=call.started_at, ended_at=call.ended_at,
                caller_number=call.caller_number, caller_name=call.caller_name, dialled=call.dialled,
                hangup_cause=call.hangup_cause, hangup_cause_text=call.hangup_cause_text,
                **{f: getattr(call, f) for f in SUMMARY}))
            await s.flush()
            s.add_all(LegRow(linkedid=call.linkedid, uniqueid=l.uniqueid, channel=l.channel,
                             endpoint=l.endpoint, direction=l.direction, codec=l.codec,
                             started_at=l.started_at, answered_at=l.answered_at,
                             ended_at=l.ended_at, hangup_cause=l.hangup_cause) for l in call.legs)
            s.add_all(EventRow(linkedid=call.linkedid, seq=i, at=e.at, kind=e.kind.value,
                               data=e.data) for i, e in enumerate(call.timeline))

    async def get(self, linkedid: str) -> CallRecord | None:
        async with self._sessions() as s:
            row = await s.get(CallRow, linkedid)
            if row is None:
                return None
            legs = (await s.scalars(select(LegRow).where(LegRow.linkedid == linkedid)
                                    .order_by(LegRow.started_at, LegRow.uniqueid))).all()
            events = (await s.scalars(select(EventRow).where(EventRow.linkedid == linkedid)
                                      .order_by(EventRow.seq))).all()
        return CallRecord(
            linkedid=row.linkedid, started_at=row.started_at, ended_at=row.ended_at,
            caller_number=row.caller_number, caller_name=row.caller_name, dialled=row.dialled,
            hangup_cause=row.hangup_cause, hangup_cause_text=row.hangup_cause_text,
            **{f: getattr(row, f) for f in SUMMARY},
            legs=[Leg(l.uniqueid, l.channel, l.endpoint, l.direction, l.started_at, l.codec,
                      l.answered_at, l.ended_at, l.hangup_cause) for l in legs],
            timeline=[CallEvent(e.at, Kind(e.kind), e.data) for e in events])

    async def known(self, linkedids: set[str]) -> set[str]:
        """Which of these calls already have a record."""
        if not linkedids:
            return set()
        async with self._sessions() as s:
            rows = await s.scalars(select(CallRow.linkedid).where(CallRow.linkedid.in_(linkedids)))
            return set(rows.all())

    async def last_end(self) -> datetime | None:
        """When the most recent recorded call ended (where a start-up backfill resumes)."""
        from sqlalchemy import func

        async with self._sessions() as s:
            return await s.scalar(select(func.max(CallRow.ended_at)))

    async def count(self) -> int:
        from sqlalchemy import func

        async with self._sessions() as s:
            return await s.scalar(select(func.count()).select_from(CallRow))
