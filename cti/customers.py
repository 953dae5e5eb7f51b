"""Customer history: who is calling, what happened last time, and whether this is a repeat.

The store keeps customers (one or more E.164 numbers each), interactions (one per contact-centre
call, written when the call is saved and completed by the agents' wrap-ups), open cases and the
audit of every history view, in the gateway's database.

Who a number belongs to is asked of a :class:`CustomerDirectory`: by default our own customers
table (:class:`DBDirectory`); a site with a CRM plugs its own class in with
``cti.directory = "module:Class"``. A directory answers with a :class:`Customer`; when it has no
local ``id`` (a CRM record), the store keeps a local row keyed by ``external_id`` so that
interactions, cases and the audit can refer to it.

Repeat contact (``interactions.repeat_contact``; the dashboards count this column): an earlier
interaction of the same customer, or of the same caller number when the caller is unknown, about
the same topic, that began at most ``cti.repeat_window_days`` (7) days before this one. The topic
is the IVR intent, or the queue when the call skipped the IVR (a direct queue number is the
caller's own choice of topic). Withheld callers are never repeats of each other.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.auth import aware
from cti.orm import CaseRow, CustomerPhoneRow, CustomerRow, HistoryViewRow, InteractionRow


@dataclass(frozen=True, slots=True)
class Customer:
    id: int | None  # local id; None for a directory record not yet stored here
    name: str
    segment: str | None = None
    language: str | None = None
    notes: str | None = None
    phones: tuple[str, ...] = ()
    external_id: str | None = None

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "segment": self.segment,
                "language": self.language, "notes": self.notes, "phones": list(self.phones)}


@dataclass(frozen=True, slots=True)
class Interaction:
    id: int
    linkedid: str
    at: datetime
    customer_id: int | None
    caller_number: str | None
    intent: str | None
    queue: str | None
    agent: str | None
    disposition: str | None
    outcome: str | None
    notes: str | None
    repeat_contact: bool

    @property
    def topic(self) -> str | None:
        return self.intent or self.queue

    def public(self) -> dict:
        return {"linkedid": self.linkedid, "at": self.at.isoformat(), "intent": self.intent,
                "queue": self.queue, "agent": self.agent, "disposition": self.disposition,
                "outcome": self.outcome, "notes": self.notes,
                "repeat_contact": self.repeat_contact}


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    customer_id: int
    status: str
    subject: str
    opened_at: datetime
    opened_by: str | None

    def public(self) -> dict:
        return {"id": self.id, "status": self.status, "subject": self.subject,
                "opened_at": self.opened_at.isoformat(), "opened_by": self.opened_by}


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """What a pop needs about a caller, fetched once per call (prefetched on queue join)."""

    customer: Customer | None
    caller_e164: str | None
    last: tuple[Interaction, ...] = ()  # newest first, at most cti.history_limit
    recent: tuple[Interaction, ...] = ()  # within the repeat window, newest first
    cases: tuple[Case, ...] = ()  # open cases
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def is_repeat(self, topic: str | None, before: datetime, linkedid: str,
                  window: timedelta) -> bool:
        if topic is None or (self.customer is None and self.caller_e164 is None):
            return False
        return any(i.topic == topic and i.linkedid != linkedid and before - window <= i.at < before
                   for i in self.recent)


@runtime_checkable
class CustomerDirectory(Protocol):
    """Who owns a number. Implement this to answer from a CRM (``cti.directory``)."""

    async def lookup(self, e164: str) -> Customer | None:
        """The customer owning ``e164`` (E.164, e.g. ``+390212345678``), or None."""
        ...


class DBDirectory:
    """The default directory: the ``customers`` and ``customer_phones`` tables."""

    def __init__(self, store: CustomerStore) -> None:
        self.store = store

    async def lookup(self, e164: str) -> Customer | None:
        return await self.store.by_phone(e164)


def load_directory(spec: str, store: CustomerStore) -> CustomerDirectory:
    """``"db"`` or ``"module:Class"``; the class is built with the store as its one argument."""
    if spec == "db":
        return DBDirectory(store)
    module, _, cls = spec.partition(":")
    if not module or not cls:
        raise ValueError(f"cti.directory must be 'db' or 'module:Class', not {spec!r}")
    directory = getattr(importlib.import_module(module), cls)(store)
    if not isinstance(directory, CustomerDirectory):
        raise TypeError(f"{spec} does not implement CustomerDirectory (async lookup(e164))")
    return directory


def _customer(row: CustomerRow, phones: Iterable[str]) -> Customer:
    return Customer(row.id, row.name, row.segment, row.language, row.notes,
                    tuple(sorted(phones)), row.external_id)


def _interaction(r: InteractionRow) -> Interaction:
    return Interaction(r.id, r.linkedid, aware(r.at), r.customer_id, r.caller_number, r.intent,
                       r.queue, r.agent, r.disposition, r.outcome, r.notes, r.repeat_contact)


_CUSTOMER_COLS = (CustomerRow.id, CustomerRow.name, CustomerRow.segment, CustomerRow.language,
                  CustomerRow.notes, CustomerRow.external_id)
_INTERACTION_COLS = (InteractionRow.id, InteractionRow.linkedid, InteractionRow.at,
                     InteractionRow.customer_id, InteractionRow.caller_number,
                     InteractionRow.intent, InteractionRow.queue, InteractionRow.agent,
                     InteractionRow.disposition, InteractionRow.outcome, InteractionRow.notes,
                     InteractionRow.repeat_contact)


def _interaction_row(r) -> Interaction:
    return Interaction(r.id, r.linkedid, aware(r.at), r.customer_id, r.caller_number, r.intent,
                       r.queue, r.agent, r.disposition, r.outcome, r.notes, bool(r.repeat_contact))


def _case(r: CaseRow) -> Case:
    return Case(r.id, r.customer_id, r.status, r.subject, aware(r.opened_at), r.opened_by)


@dataclass(frozen=True, slots=True)
class WrapUp:
    username: str
    disposition: str
    outcome: str
    notes: str
    at: datetime


class CustomerStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 repeat_window: timedelta = timedelta(days=7), history_limit: int = 5) -> None:
        self._sessions = sessions
        self.repeat_window = repeat_window
        self.history_limit = history_limit
        self._locks: dict[str, list] = {}  # linkedid -> [lock, users]: one writer per call

    # -- customers -----------------------------------------------------------------------------
    async def by_phone(self, e164: str) -> Customer | None:
        async with self._sessions() as s:
            cid = await s.scalar(select(CustomerPhoneRow.customer_id)
                                 .where(CustomerPhoneRow.e164 == e164))
            return await self._get(s, cid) if cid is not None else None

    async def get(self, customer_id: int) -> Customer | None:
        async with self._sessions() as s:
            return await self._get(s, customer_id)

    async def _get(self, s: AsyncSession, customer_id: int) -> Customer | None:
        row = await s.get(CustomerRow, customer_id)
        if row is None:
            return None
        phones = (await s.scalars(select(CustomerPhoneRow.e164)
                                  .where(CustomerPhoneRow.customer_id == customer_id))).all()
        return _customer(row, phones)

    async def ensure_local(self, c: Customer) -> Customer:
        """A directory record without a local id gets (or finds) one by ``external_id``."""
        if c.id is not None:
            return c
        if not c.external_id:
            raise ValueError("a directory customer needs an id or an external_id")
        for _ in range(2):
            async with self._sessions() as s:
                cid = await s.scalar(select(CustomerRow.id)
                                     .where(CustomerRow.external_id == c.external_id))
            if cid is not None:
                async with self._sessions.begin() as s:
                    await s.execute(update(CustomerRow).where(CustomerRow.id == cid).values(
                        name=c.name, segment=c.segment, language=c.language, notes=c.notes,
                        updated_at=datetime.now(UTC)))
                return Customer(cid, c.name, c.segment, c.language, c.notes, c.phones,
                                c.external_id)
            try:
                async with self._sessions.begin() as s:
                    now = datetime.now(UTC)
                    row = CustomerRow(external_id=c.external_id, name=c.name, segment=c.segment,
                                      language=c.language, notes=c.notes, created_at=now,
                                      updated_at=now)
                    s.add(row)
                    await s.flush()
                    return Customer(row.id, c.name, c.segment, c.language, c.notes, c.phones,
                                    c.external_id)
            except IntegrityError:
                continue  # created concurrently: read it again
        raise RuntimeError(f"could not store directory customer {c.external_id!r}")

    async def search(self, text: str, limit: int = 20) -> list[Customer]:
        """By number (any format) or by name (case-insensitive substring)."""
        from cti.phones import normalise

        num = normalise(text)
        async with self._sessions() as s:
            if num.status == "ok":
                ids = (await s.scalars(select(CustomerPhoneRow.customer_id)
                                       .where(CustomerPhoneRow.e164 == num.e164))).all()
            else:
                pattern = "%" + text.strip().lower().replace("%", "").replace("_", "") + "%"
                ids = (await s.scalars(select(CustomerRow.id)
                                       .where(func.lower(CustomerRow.name).like(pattern))
                                       .order_by(CustomerRow.name).limit(limit))).all()
            return [c for cid in ids if (c := await self._get(s, cid)) is not None]

    # -- history ---------------------------------------------------------------------------------
    async def context(self, customer: Customer | None, caller_e164: str | None,
                      now: datetime | None = None) -> CustomerContext:
        """Last interactions, recent ones (repeat window) and open cases, in one session."""
        async with self._sessions() as s:
            return await self._context(s, customer, caller_e164, now or datetime.now(UTC))

    async def lookup_context(self, e164: str, now: datetime | None = None) -> CustomerContext:
        return (await self.lookup_contexts([e164], now))[e164]

    async def lookup_contexts(self, numbers: list[str],
                              now: datetime | None = None) -> dict[str, CustomerContext]:
        """The pops' lookups against our own tables, many numbers at once: who, their calls,
        their open cases, in one session and at most four queries whatever the count.

        Why batched and column-only (no ORM objects): every inbound call is looked up, and a
        burst of calls must not queue behind its own lookups (see bench/screenpop).
        """
        now = now or datetime.now(UTC)
        since = now - self.repeat_window
        cap = max(self.history_limit, 20)
        wanted = list(dict.fromkeys(numbers))
        async with self._sessions() as s:
            owner = select(CustomerPhoneRow.customer_id).where(CustomerPhoneRow.e164.in_(wanted))
            rows = (await s.execute(
                select(*_CUSTOMER_COLS, CustomerPhoneRow.e164)
                .join(CustomerPhoneRow, CustomerPhoneRow.customer_id == CustomerRow.id)
                .where(CustomerRow.id.in_(owner)))).all()
            phones: dict[int, list[str]] = {}
            for r in rows:
                phones.setdefault(r.id, []).append(r.e164)
            by_id = {r.id: Customer(r.id, r.name, r.segment, r.language, r.notes,
                                    tuple(sorted(phones[r.id])), r.external_id) for r in rows}
            asked = set(wanted)
            who_of = {r.e164: by_id[r.id] for r in rows if r.e164 in asked}
            unknown = [n for n in wanted if n not in who_of]
            hist: dict[object, list[Interaction]] = {}
            parts = []
            if by_id:
                parts.append((InteractionRow.customer_id, InteractionRow.customer_id.in_(by_id)))
            if unknown:
                parts.append((InteractionRow.caller_number, InteractionRow.caller_number.in_(
                    unknown) & InteractionRow.customer_id.is_(None)))
            for key, cond in parts:
                rank = func.row_number().over(partition_by=key, order_by=(
                    InteractionRow.at.desc(), InteractionRow.id.desc())).label("rn")
                sub = select(*_INTERACTION_COLS, rank).where(cond).subquery()
                for r in (await s.execute(select(sub).where(sub.c.rn <= cap)
                                          .order_by(sub.c.rn))).all():
                    k = r.customer_id if key is InteractionRow.customer_id else r.caller_number
                    hist.setdefault(k, []).append(_interaction_row(r))
            cases: dict[int, list[Case]] = {}
            if by_id:
                for r in (await s.execute(
                        select(CaseRow.id, CaseRow.customer_id, CaseRow.status, CaseRow.subject,
                               CaseRow.opened_at, CaseRow.opened_by)
                        .where(CaseRow.customer_id.in_(by_id), CaseRow.status == "open")
                        .order_by(CaseRow.opened_at.desc()))).all():
                    cases.setdefault(r.customer_id, []).append(
                        Case(r.id, r.customer_id, r.status, r.subject, aware(r.opened_at),
                             r.opened_by))
            out = {}
            for n in wanted:
                c = who_of.get(n)
                newest = hist.get(c.id if c else n, [])
                recent = [i for i in newest if i.at >= since]
                if len(recent) == cap:  # the window holds even more calls than we fetched
                    out[n] = await self._context(s, c, n, now)
                    continue
                out[n] = CustomerContext(c, n, tuple(newest[: self.history_limit]),
                                         tuple(recent), tuple(cases.get(c.id, ()) if c else ()),
                                         now)
        return out

    async def _context(self, s: AsyncSession, customer: Customer | None,
                       caller_e164: str | None, now: datetime) -> CustomerContext:
        if customer is not None and customer.id is not None:
            who = InteractionRow.customer_id == customer.id
        elif caller_e164 is not None:
            who = (InteractionRow.caller_number == caller_e164) & InteractionRow.customer_id.is_(None)
        else:
            return CustomerContext(customer, caller_e164)
        since = now - self.repeat_window
        cap = max(self.history_limit, 20)
        newest = [_interaction_row(r) for r in (await s.execute(
            select(*_INTERACTION_COLS).where(who)
            .order_by(InteractionRow.at.desc(), InteractionRow.id.desc()).limit(cap))).all()]
        recent = [i for i in newest if i.at >= since]
        if len(newest) == cap and recent and len(recent) == cap:  # the window holds even more
            recent = [_interaction_row(r) for r in (await s.execute(
                select(*_INTERACTION_COLS).where(who, InteractionRow.at >= since)
                .order_by(InteractionRow.at.desc()).limit(500))).all()]
        cases: list[Case] = []
        if customer is not None and customer.id is not None:
            cases = [Case(r.id, r.customer_id, r.status, r.subject, aware(r.opened_at),
                          r.opened_by) for r in (await s.execute(
                select(CaseRow.id, CaseRow.customer_id, CaseRow.status, CaseRow.subject,
                       CaseRow.opened_at, CaseRow.opened_by)
                .where(CaseRow.customer_id == customer.id, CaseRow.status == "open")
                .order_by(CaseRow.opened_at.desc()))).all()]
        return CustomerContext(customer, caller_e164, tuple(newest[: self.history_limit]),
                               tuple(recent), tuple(cases), now)

    async def history(self, customer_id: int, limit: int = 100) -> tuple[list[Interaction],
                                                                          list[Case]]:
        async with self._sessions() as s:
            rows = (await s.scalars(select(InteractionRow)
                                    .where(InteractionRow.customer_id == customer_id)
                                    .order_by(InteractionRow.at.desc()).limit(limit))).all()
            cases = (await s.scalars(select(CaseRow).where(CaseRow.customer_id == customer_id)
                                     .order_by(CaseRow.opened_at.desc()))).all()
        return list(map(_interaction, rows)), list(map(_case, cases))

    async def interaction(self, linkedid: str) -> Interaction | None:
        async with self._sessions() as s:
            row = await s.scalar(select(InteractionRow).where(InteractionRow.linkedid == linkedid))
        return _interaction(row) if row else None

    async def record_interaction(self, linkedid: str, *, at: datetime, customer_id: int | None,
                                 caller_number: str | None, intent: str | None,
                                 queue: str | None, agent: str | None = None,
                                 wrapup: WrapUp | None = None) -> Interaction:
        """Create or complete the interaction of call ``linkedid``.

        Called when the call is saved and on every wrap-up, in either order: the call's facts
        fill what is still empty, a wrap-up sets agent, disposition and outcome and appends its
        notes (a transferred call gets one wrap-up per agent). ``repeat_contact`` is decided
        when the row is created.
        """
        entry = self._locks.get(linkedid)
        if entry is None:
            entry = self._locks[linkedid] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._record(linkedid, at, customer_id, caller_number, intent,
                                          queue, agent, wrapup)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[linkedid]

    async def _record(self, linkedid, at, customer_id, caller_number, intent, queue, agent,
                      wrapup) -> Interaction:
        for attempt in range(3):
            try:
                async with self._sessions.begin() as s:
                    row = await s.scalar(select(InteractionRow)
                                         .where(InteractionRow.linkedid == linkedid))
                    if row is None:
                        row = InteractionRow(
                            linkedid=linkedid, at=at, customer_id=customer_id,
                            caller_number=caller_number, intent=intent, queue=queue, agent=agent,
                            repeat_contact=await self._is_repeat(
                                s, linkedid, at, customer_id, caller_number, intent or queue))
                        s.add(row)
                    else:
                        row.customer_id = row.customer_id or customer_id
                        row.caller_number = row.caller_number or caller_number
                        row.intent = row.intent or intent
                        row.queue = row.queue or queue
                        row.agent = agent or row.agent
                    if wrapup is not None:
                        row.agent = wrapup.username
                        row.disposition = wrapup.disposition
                        row.outcome = wrapup.outcome
                        row.wrapped_up_at = wrapup.at
                        if wrapup.notes:
                            line = wrapup.notes if not row.notes else \
                                f"[{wrapup.username}] {wrapup.notes}"
                            row.notes = f"{row.notes}\n{line}" if row.notes else line
                    await s.flush()
                    return _interaction(row)
            except IntegrityError:  # another process created it first: complete theirs
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _is_repeat(self, s: AsyncSession, linkedid: str, at: datetime,
                         customer_id: int | None, caller_number: str | None,
                         topic: str | None) -> bool:
        if topic is None:
            return False
        if customer_id is not None:
            who = InteractionRow.customer_id == customer_id
        elif caller_number is not None and caller_number.startswith("+"):
            who = (InteractionRow.caller_number == caller_number) & \
                InteractionRow.customer_id.is_(None)
        else:
            return False
        hit = await s.scalar(select(InteractionRow.id).where(
            who, InteractionRow.linkedid != linkedid,
            InteractionRow.at >= at - self.repeat_window, InteractionRow.at < at,
            func.coalesce(InteractionRow.intent, InteractionRow.queue) == topic).limit(1))
        return hit is not None

    # -- cases -----------------------------------------------------------------------------------
    async def open_case(self, customer_id: int, subject: str, by: str,
                        linkedid: str | None = None) -> Case:
        async with self._sessions.begin() as s:
            row = CaseRow(customer_id=customer_id, status="open", subject=subject,
                          opened_at=datetime.now(UTC), opened_by=by, linkedid=linkedid)
            s.add(row)
            await s.flush()
            return _case(row)

    async def close_case(self, case_id: int) -> Case | None:
        async with self._sessions.begin() as s:
            row = await s.get(CaseRow, case_id)
            if row is None:
                return None
            row.status, row.closed_at = "closed", datetime.now(UTC)
            return _case(row)

    async def case(self, case_id: int) -> Case | None:
        async with self._sessions() as s:
            row = await s.get(CaseRow, case_id)
            return _case(row) if row else None

    # -- audit -----------------------------------------------------------------------------------
    async def record_views(self, views: list[dict]) -> None:
        """Audit rows: ``at``, ``username``, ``role``, ``customer_id``, ``reason``, ``via``."""
        if views:
            async with self._sessions.begin() as s:
                await s.execute(insert(HistoryViewRow), views)

    async def views(self, customer_id: int | None = None, username: str | None = None,
                    limit: int = 200) -> list[dict]:
        q = select(HistoryViewRow).order_by(HistoryViewRow.at.desc(), HistoryViewRow.id.desc())
        if customer_id is not None:
            q = q.where(HistoryViewRow.customer_id == customer_id)
        if username is not None:
            q = q.where(HistoryViewRow.username == username)
        async with self._sessions() as s:
            rows = (await s.scalars(q.limit(limit))).all()
        return [{"at": aware(r.at).isoformat(), "username": r.username, "role": r.role,
                 "customer_id": r.customer_id, "reason": r.reason, "via": r.via} for r in rows]


__all__ = ["Case", "Customer", "CustomerContext", "CustomerDirectory", "CustomerStore",
           "DBDirectory", "Interaction", "WrapUp", "load_directory"]
