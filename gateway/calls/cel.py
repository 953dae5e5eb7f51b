"""Read Asterisk's CEL trail (Channel Event Logging) from the database Asterisk writes it to.

Why: AMI events are lost while the link is down, but Asterisk keeps logging CEL. After a
reconnect (or a gateway restart) the trail tells exactly when missed calls ended and why, and
which calls started and ended entirely while we were away. Two layouts are read: the embedded
one (``cel_sqlite3_custom`` with our mapping, ``eventtime`` as epoch seconds) and the production
one (``cel_pgsql`` into ``asterisk_cel``, Asterisk's standard columns). Reading never writes.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db.engine import normalise_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CelEvent:
    event: str  # CHAN_START, ANSWER, HANGUP, CHAN_END, LINKEDID_END, APP_START, ...
    at: datetime
    uniqueid: str
    linkedid: str
    channel: str
    cid_num: str | None = None
    cid_name: str | None = None
    exten: str | None = None
    context: str | None = None
    app: str | None = None
    appdata: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_SQLITE = ("SELECT eventtype, eventtime, uniqueid, linkedid, channame, cidnum, cidname, exten, "
           "context, appname, appdata, extra FROM cel")
_PGSQL = ("SELECT eventtype, eventtime, uniqueid, linkedid, channame, cid_num, cid_name, exten, "
          "context, appname, appdata, extra FROM asterisk_cel")


class CelReader:
    def __init__(self, url: str) -> None:
        u = make_url(normalise_url(url))
        self.backend = u.get_backend_name()
        if self.backend == "sqlite":
            # Read-only: Asterisk owns the file.
            url = f"sqlite+aiosqlite:///file:{u.database}?mode=ro&uri=true"
        self._engine: AsyncEngine = create_async_engine(normalise_url(url))
        self._select = _SQLITE if self.backend == "sqlite" else _PGSQL
        self._key = "AcctId" if self.backend == "sqlite" else "id"  # insertion order
        # cel_sqlite3_custom declares no column types and writes the time as text: compare it
        # as a number, or SQLite's text-sorts-after-numbers rule silently matches nothing.
        self._t = "CAST(eventtime AS REAL)" if self.backend == "sqlite" else "eventtime"

    async def close(self) -> None:
        await self._engine.dispose()

    async def events_for(self, linkedids: set[str]) -> dict[str, list[CelEvent]]:
        """Every CEL event of these calls, in order, grouped by linkedid."""
        if not linkedids:
            return {}
        q = text(self._select + f" WHERE linkedid IN :ids ORDER BY {self._t}, {self._key}").bindparams(
            bindparam("ids", expanding=True))
        return _group(await self._rows(q, {"ids": sorted(linkedids)}))

    async def ended_between(self, since: datetime, until: datetime) -> dict[str, list[CelEvent]]:
        """Calls whose LINKEDID_END falls in ``[since, until]``, with all their events."""
        lo, hi = self._time(since), self._time(until)
        table = "cel" if self.backend == "sqlite" else "asterisk_cel"
        q = text(self._select + f" WHERE linkedid IN (SELECT linkedid FROM {table}"
                 f" WHERE eventtype = 'LINKEDID_END' AND {self._t} >= :lo AND {self._t} <= :hi)"
                 f" ORDER BY {self._t}, {self._key}")
        return _group(await self._rows(q, {"lo": lo, "hi": hi}))

    def _time(self, t: datetime) -> Any:
        return t.timestamp() if self.backend == "sqlite" else t.astimezone(UTC).replace(tzinfo=None)

    async def _rows(self, q, params) -> list[CelEvent]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q, params)).all()
        out = []
        for r in rows:
            try:
                out.append(_event(r))
            except (TypeError, ValueError) as exc:
                log.warning("CEL row skipped (%s): %r", exc, tuple(r)[:4])
        return out


def _event(r) -> CelEvent:
    at = r[1]
    if isinstance(at, (int, float, str)) and not isinstance(at, datetime):
        at = datetime.fromtimestamp(float(at), UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # cel_pgsql writes UTC without a zone
    extra: dict[str, Any] = {}
    if r[11]:
        try:
            loaded = json.loads(r[11])
            extra = loaded if isinstance(loaded, dict) else {"value": loaded}
        except ValueError:
            extra = {"value": r[11]}
    return CelEvent(r[0], at, r[2], r[3], r[4], r[5] or None, r[6] or None, r[7] or None,
                    r[8] or None, r[9] or None, r[10] or None, extra)


def _group(events: list[CelEvent]) -> dict[str, list[CelEvent]]:
    out: dict[str, list[CelEvent]] = defaultdict(list)
    for e in events:
        out[e.linkedid].append(e)
    return dict(out)
