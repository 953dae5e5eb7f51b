"""``centralino customers import FILE.csv``: good rows in, bad rows reported, nothing half-written.

Why all-or-nothing per row: a customer stored with one of their two numbers would pop as a
stranger on the other. Every row is checked first (fields, numbers, numbers already owned by
someone else, in the database or earlier in the file); the good rows are then written in one
transaction. Should that transaction fail anyway (a concurrent change), each good row is
retried in a transaction of its own, so one conflict never costs the others.

The file: UTF-8 (an Excel BOM is fine), comma or semicolon separated, a header row naming the
columns. ``name`` and ``phones`` are required; ``external_id``, ``segment``, ``language`` and
``notes`` are optional. ``phones`` holds one or more numbers separated by ``|``, ``;`` or ``,``
(quote the field when the separator is also the file's). A row whose ``external_id`` is already
known updates that customer (its numbers are replaced); rows without one always add a customer.
Errors name the file's line (the first line of a row that spans several), the field and why.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.orm import CustomerPhoneRow, CustomerRow
from cti.phones import normalise

REQUIRED = ("name", "phones")
OPTIONAL = ("external_id", "segment", "language", "notes")
COLUMNS = REQUIRED + OPTIONAL
LIMITS = {"name": 200, "external_id": 64, "segment": 64, "notes": 4000}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2})?$")
_PHONE_SPLIT = re.compile(r"[|;,]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_BYTES = 200 * 1024 * 1024


class ImportFileError(ValueError):
    """The whole file is unusable (not text, not CSV, wrong header): nothing was imported."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors})


@dataclass
class _Row:
    line: int
    name: str
    phones: tuple[str, ...]
    external_id: str | None
    segment: str | None
    language: str | None
    notes: str | None


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise ImportFileError(f"{name}: not a CSV text file (binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{name}: line {line}: not UTF-8 text (byte {exc.start}); "
                              "save the file as 'CSV UTF-8'") from None


def _dialect(text: str, name: str) -> type[csv.Dialect] | csv.Dialect:
    header = text.split("\n", 1)[0]
    if not header.strip():
        raise ImportFileError(f"{name}: line 1: empty; expected a header: {','.join(COLUMNS)}")
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        return csv.excel  # one column only: the header check below says what is missing


def parse(data: bytes, name: str = "input") -> tuple[list[_Row], list[RowError], int]:
    """Rows that passed the field checks, the errors of the others, and the number of rows."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"{name}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    text = _decode(data, name)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text, name), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: empty file; expected a header: {','.join(COLUMNS)}") from None
    except csv.Error as exc:
        raise ImportFileError(f"{name}: line 1: not CSV: {exc}") from None
    cols = [h.strip().lower() for h in header]
    unknown = [c for c in cols if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in cols]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if unknown or missing or dupes:
        why = "; ".join(filter(None, [
            f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else "",
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"repeated column(s) {', '.join(dupes)}" if dupes else ""]))
        raise ImportFileError(f"{name}: line 1: wrong header: {why}; expected name,phones and "
                              f"optionally {','.join(OPTIONAL)}")
    rows: list[_Row] = []
    errors: list[RowError] = []
    count = 0
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, "-", f"not CSV ({exc}): this row and the rest of "
                                   "the file were not read"))
            count += 1
            break  # the reader cannot resynchronise after a broken quote
        if not any(v.strip() for v in values):
            continue
        count += 1
        row, errs = _check(start, cols, values)
        if errs:
            errors.extend(errs)
        else:
            rows.append(row)
    return rows, errors, count


def _check(line: int, cols: list[str], values: list[str]) -> tuple[_Row | None, list[RowError]]:
    errs: list[RowError] = []
    if len(values) != len(cols):
        return None, [RowError(line, "-", f"{len(values)} fields, the header has {len(cols)}")]
    rec = {c: v.strip() for c, v in zip(cols, values, strict=True)}
    for col, limit in LIMITS.items():
        v = rec.get(col) or ""
        if len(v) > limit:
            errs.append(RowError(line, col, f"longer than {limit} characters"))
        if _CONTROL.search(v):
            errs.append(RowError(line, col, "contains control characters"))
    if not rec["name"]:
        errs.append(RowError(line, "name", "empty"))
    lang = rec.get("language") or None
    if lang and not _LANGUAGE.match(lang):
        errs.append(RowError(line, "language", f"{lang!r} is not a language code like it or en"))
    phones: list[str] = []
    parts = [p.strip() for p in _PHONE_SPLIT.split(rec["phones"]) if p.strip()]
    if not parts:
        errs.append(RowError(line, "phones", "no phone number"))
    for p in parts:
        n = normalise(p)
        if n.status == "ok":
            if n.e164 not in phones:
                phones.append(n.e164)
        elif n.status == "withheld":
            errs.append(RowError(line, "phones", f"{p!r} is not a phone number (withheld marker)"))
        else:
            errs.append(RowError(line, "phones", f"{p!r} is not a phone number"))
    if errs:
        return None, errs
    return _Row(line, rec["name"], tuple(phones), rec.get("external_id") or None,
                rec.get("segment") or None, lang, rec.get("notes") or None), []


async def import_customers(sessions: async_sessionmaker[AsyncSession], data: bytes,
                           name: str = "input") -> ImportReport:
    rows, errors, count = parse(data, name)
    report = ImportReport(rows=count, errors=errors)
    async with sessions() as s:
        owners = dict((await s.execute(select(CustomerPhoneRow.e164,
                                              CustomerPhoneRow.customer_id))).all())
        known = dict((await s.execute(select(CustomerRow.external_id, CustomerRow.id)
                                      .where(CustomerRow.external_id.is_not(None)))).all())
    good: list[_Row] = []
    seen_ext: dict[str, int] = {}
    claimed: dict[str, int] = {}  # number -> line that claims it in this file
    for row in rows:
        errs = []
        own_id = known.get(row.external_id) if row.external_id else None
        if row.external_id and row.external_id in seen_ext:
            errs.append(RowError(row.line, "external_id", f"{row.external_id!r} repeats line "
                                 f"{seen_ext[row.external_id]}"))
        for num in row.phones:
            if num in claimed:
                errs.append(RowError(row.line, "phones", f"{num} is also on line {claimed[num]}"))
            elif num in owners and owners[num] != own_id:
                errs.append(RowError(row.line, "phones",
                                     f"{num} already belongs to customer #{owners[num]}"))
        if errs:
            report.errors.extend(errs)
            continue
        if row.external_id:
            seen_ext[row.external_id] = row.line
        claimed.update(dict.fromkeys(row.phones, row.line))
        good.append(row)
    added = [r for r in good if not (r.external_id and r.external_id in known)]
    try:
        async with sessions.begin() as s:
            for row in good:
                if row.external_id and row.external_id in known:
                    await _write(s, row, known)
            await _insert_new(s, added)
        report.added, report.updated = len(added), len(good) - len(added)
    except SQLAlchemyError:
        for row in good:  # isolate the row that conflicts; the others still go in
            try:
                async with sessions.begin() as s:
                    updated = await _write(s, row, known)
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
                report.errors.append(RowError(row.line, "-", f"not stored: {reason}"))
            else:
                report.updated += updated
                report.added += not updated
    report.errors.sort(key=lambda e: (e.line, e.field))
    return report


async def _insert_new(s: AsyncSession, rows: list[_Row]) -> None:
    """New customers in bulk: one multi-row insert for them, one for their numbers."""
    now = datetime.now(UTC)
    for i in range(0, len(rows), 1000):
        chunk = rows[i:i + 1000]
        ids = (await s.scalars(
            insert(CustomerRow).returning(CustomerRow.id, sort_by_parameter_order=True),
            [{"external_id": r.external_id, "name": r.name, "segment": r.segment,
              "language": r.language, "notes": r.notes, "created_at": now, "updated_at": now}
             for r in chunk])).all()
        await s.execute(insert(CustomerPhoneRow), [
            {"e164": n, "customer_id": cid} for r, cid in zip(chunk, ids, strict=True)
            for n in r.phones])


async def _write(s: AsyncSession, row: _Row, known: dict[str, int]) -> bool:
    """Write one row; True when it updated an existing customer."""
    now = datetime.now(UTC)
    cid = known.get(row.external_id) if row.external_id else None
    if cid is not None:
        c = await s.get(CustomerRow, cid)
        c.name, c.segment, c.language, c.notes, c.updated_at = (
            row.name, row.segment, row.language, row.notes, now)
        await s.execute(delete(CustomerPhoneRow).where(CustomerPhoneRow.customer_id == cid))
    else:
        c = CustomerRow(external_id=row.external_id, name=row.name, segment=row.segment,
                        language=row.language, notes=row.notes, created_at=now, updated_at=now)
        s.add(c)
    await s.flush()
    s.add_all(CustomerPhoneRow(e164=n, customer_id=c.id) for n in row.phones)
    await s.flush()
    return cid is not None


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
