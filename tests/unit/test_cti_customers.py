"""Customer store, CSV import and the repeat-contact rule, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cti.customers import (
    Customer,
    CustomerDirectory,
    CustomerStore,
    DBDirectory,
    WrapUp,
    load_directory,
)
from cti.importer import ImportFileError, import_customers
from cti.orm import CustomerPhoneRow, CustomerRow
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _counts(sessions):
    async with sessions() as s:
        return (await s.scalar(select(func.count()).select_from(CustomerRow)),
                await s.scalar(select(func.count()).select_from(CustomerPhoneRow)))


GOOD_AND_BAD = (
    "name,phones,segment,language,notes\n"
    "Mario Rossi,02 1234567|333 1234567,gold,it,prefers mornings\n"          # 2 ok
    ",06 69881,,,\n"                                                         # 3 no name
    "Anna Bianchi,not-a-number|0471 123456,,it,\n"                           # 4 one bad number
    "Luca Verdi,+39 333 1234567,,,\n"                                        # 5 number of line 2
    "Giulia Neri,081 5512345,silver,italiano,\n"                             # 6 bad language
    "\"Paolo, Jr\",\"0039 06 5551234, 347 7654321\",,en,\"multi\nline note\"\n"  # 7-8 ok
    "Sara Blu,anonymous,,,\n"                                                # 9 withheld
    "Too,Many,Fields,,,,\n"                                                  # 10 field count
    "<img src=x onerror=alert(1)>,+44 20 7946 0958,,,\n"                     # 11 ok (text!)
)


async def test_import_keeps_good_rows_and_reports_bad_ones(sessions):
    report = await import_customers(sessions, GOOD_AND_BAD.encode(), "people.csv")
    assert (report.rows, report.added, report.updated) == (9, 3, 0)
    got = {(e.line, e.field) for e in report.errors}
    assert got == {(3, "name"), (4, "phones"), (5, "phones"), (6, "language"), (9, "phones"),
                   (10, "-")}
    assert "'not-a-number' is not a phone number" in str(report.errors[1])
    assert "+393331234567 is also on line 2" in next(e.reason for e in report.errors if e.line == 5)
    assert report.rejected_lines == [3, 4, 5, 6, 9, 10]
    store = CustomerStore(sessions)
    mario = await store.by_phone("+39021234567")
    assert mario.name == "Mario Rossi" and mario.phones == ("+39021234567", "+393331234567")
    assert (mario.segment, mario.language, mario.notes) == ("gold", "it", "prefers mornings")
    paolo = await store.by_phone("+393477654321")
    assert paolo.name == "Paolo, Jr" and paolo.notes == "multi\nline note"
    assert paolo.phones == ("+39065551234", "+393477654321")
    xss = await store.by_phone("+442079460958")
    assert xss.name == "<img src=x onerror=alert(1)>"  # stored as text, escaped when shown
    # nothing of a rejected row was written: Anna's good number is not there
    assert await store.by_phone("+390471123456") is None
    assert await _counts(sessions) == (3, 5)


async def test_a_number_owned_by_someone_else_rejects_the_row_on_reimport(sessions):
    await import_customers(sessions, b"name,phones\nMario,02 1234567\n")
    report = await import_customers(sessions, b"name,phones\nMario again,021234567|3331112222\n"
                                    b"Nuovo,3339998888\n")
    assert report.added == 1
    assert [(e.line, e.field) for e in report.errors] == [(2, "phones")]
    assert "already belongs to customer #" in report.errors[0].reason
    assert await _counts(sessions) == (2, 2)  # Mario again's second number was not stored


async def test_rows_with_a_known_external_id_update_that_customer(sessions):
    await import_customers(sessions, b"external_id;name;phones;segment\n"
                                     b"C-1;Mario;02 1234567;gold\n")
    report = await import_customers(sessions, b"external_id;name;phones;segment\n"
                                              b"C-1;Mario Rossi;333 1234567|02 1234567;platinum\n"
                                              b"C-1;Mario Dup;347 0000000;\n")
    assert (report.added, report.updated) == (0, 1)
    assert [(e.line, e.field) for e in report.errors] == [(3, "external_id")]
    c = await CustomerStore(sessions).by_phone("+393331234567")
    assert (c.name, c.segment, c.phones) == ("Mario Rossi", "platinum",
                                             ("+39021234567", "+393331234567"))
    assert await _counts(sessions) == (1, 2)


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
    ("name,phones\nMaria,02 1234567\nJos\xe9,06 1234567\n".encode("latin-1"),
     "line 3: not UTF-8"),
    (b"", "empty"),
    (b"nome,telefono\nMario,021234567\n", "unknown column(s) 'nome', 'telefono'"),
    (b"name,segment\nMario,gold\n", "missing column(s) phones"),
    (b"name,phones,name\n", "repeated column(s) name"),
    (b'{"customers": [{"name": "Mario"}]}\n', "wrong header"),
])
async def test_a_file_that_is_not_our_csv_is_refused_whole(sessions, data, message):
    with pytest.raises(ImportFileError) as exc:
        await import_customers(sessions, data, "in.csv")
    assert message in str(exc.value) and str(exc.value).startswith("in.csv")
    assert await _counts(sessions) == (0, 0)


async def test_a_broken_quote_stops_reading_but_keeps_what_came_before(sessions):
    report = await import_customers(sessions, b'name,phones\nMario,021234567\n"Anna,06 1234567\n'
                                              b"Luca,3331234567\n")
    assert report.added == 1
    assert report.errors[0].line == 3 and "rest of the file were not read" in report.errors[0].reason


async def test_an_excel_bom_and_semicolons_are_fine(sessions):
    report = await import_customers(sessions, "\ufeffName;Phones\nMario;02 1234567\n".encode())
    assert report.added == 1 and not report.errors


def test_customers_import_cli_reports_lines(sqlite_url, tmp_path):
    from gateway.cli import main

    f = tmp_path / "people.csv"
    f.write_text(GOOD_AND_BAD)
    r = CliRunner().invoke(main, ["customers", "import", str(f)],
                           env={"CENTRALINO_DATABASE__URL": sqlite_url})
    assert r.exit_code == 1
    assert "9 rows: 3 customers added, 0 updated, 6 rows rejected" in r.stdout
    assert f"{f}:3: name: empty" in r.stderr
    assert f"{f}:6: language: 'italiano' is not a language code" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("nome,telefono\n")
    r = CliRunner().invoke(main, ["customers", "import", str(bad)],
                           env={"CENTRALINO_DATABASE__URL": sqlite_url})
    assert r.exit_code == 1 and "wrong header" in r.output and "nothing was imported" in r.output
    r = CliRunner().invoke(main, ["customers", "find", "+39 333 123 4567"],
                           env={"CENTRALINO_DATABASE__URL": sqlite_url})
    assert "Mario Rossi" in r.output


# -- interactions and repeat contact ---------------------------------------------------------
async def _mario(sessions):
    await import_customers(sessions, b"name,phones\nMario,021234567|3331234567\n")
    return await CustomerStore(sessions).by_phone("+39021234567")


async def test_repeat_contact_same_customer_same_topic_within_seven_days(sessions):
    mario = await _mario(sessions)
    store = CustomerStore(sessions)
    rec = store.record_interaction

    first = await rec("c1", at=T0, customer_id=mario.id, caller_number="+39021234567",
                      intent="billing", queue="billing")
    assert first.repeat_contact is False
    # from his other number, same intent, 3 days later: a repeat
    again = await rec("c2", at=T0 + timedelta(days=3), customer_id=mario.id,
                      caller_number="+393331234567", intent="billing", queue="general")
    assert again.repeat_contact is True
    # another intent: not a repeat
    other = await rec("c3", at=T0 + timedelta(days=3, hours=1), customer_id=mario.id,
                      caller_number="+39021234567", intent="lost_card", queue="lost_card")
    assert other.repeat_contact is False
    # more than 7 days after the last billing call (c2 at day 3): not a repeat
    late = await rec("c4", at=T0 + timedelta(days=10, hours=1), customer_id=mario.id,
                     caller_number="+39021234567", intent="billing", queue="billing")
    assert late.repeat_contact is False
    # no IVR: the queue is the topic
    q1 = await rec("c5", at=T0 + timedelta(days=20), customer_id=mario.id,
                   caller_number="+39021234567", intent=None, queue="tech_support")
    q2 = await rec("c6", at=T0 + timedelta(days=20, minutes=5), customer_id=mario.id,
                   caller_number="+39021234567", intent=None, queue="tech_support")
    assert (q1.repeat_contact, q2.repeat_contact) == (False, True)


async def test_repeat_contact_for_unknown_callers_goes_by_number_and_never_for_withheld(sessions):
    store = CustomerStore(sessions)
    a = await store.record_interaction("u1", at=T0, customer_id=None, caller_number="+39061234567",
                                       intent="billing", queue="billing")
    b = await store.record_interaction("u2", at=T0 + timedelta(hours=2), customer_id=None,
                                       caller_number="+39061234567", intent="billing",
                                       queue="billing")
    c = await store.record_interaction("u3", at=T0 + timedelta(hours=3), customer_id=None,
                                       caller_number="+39069999999", intent="billing",
                                       queue="billing")
    w1 = await store.record_interaction("w1", at=T0, customer_id=None, caller_number=None,
                                        intent="billing", queue="billing")
    w2 = await store.record_interaction("w2", at=T0 + timedelta(hours=1), customer_id=None,
                                        caller_number=None, intent="billing", queue="billing")
    assert [x.repeat_contact for x in (a, b, c, w1, w2)] == [False, True, False, False, False]


async def test_wrap_up_before_or_after_the_call_is_saved_gives_one_interaction(sessions):
    mario = await _mario(sessions)
    store = CustomerStore(sessions)
    wrap = WrapUp("alice", "resolved", "resolved", "card blocked", T0 + timedelta(minutes=5))
    # wrap-up first (the agent is quick), then the call record arrives
    await store.record_interaction("x1", at=T0, customer_id=mario.id, caller_number="+39021234567",
                                   intent=None, queue="billing", agent="alice", wrapup=wrap)
    done = await store.record_interaction("x1", at=T0, customer_id=mario.id,
                                          caller_number="+39021234567", intent="lost_card",
                                          queue="billing", agent="alice")
    assert (done.agent, done.disposition, done.outcome, done.notes, done.intent) == (
        "alice", "resolved", "resolved", "card blocked", "lost_card")
    # a transferred call: the second agent's wrap-up is added, not a second interaction
    wrap2 = WrapUp("bob", "escalated", "follow_up", "sent to fraud team", T0 + timedelta(minutes=9))
    done = await store.record_interaction("x1", at=T0, customer_id=mario.id,
                                          caller_number="+39021234567", intent="lost_card",
                                          queue="billing", wrapup=wrap2)
    assert done.agent == "bob" and done.disposition == "escalated"
    assert done.notes == "card blocked\n[bob] sent to fraud team"
    hist, _ = await store.history(mario.id)
    assert [h.linkedid for h in hist] == ["x1"]


async def test_context_has_last_calls_recent_topics_and_open_cases(sessions):
    mario = await _mario(sessions)
    store = CustomerStore(sessions, history_limit=2)
    for i in range(4):
        await store.record_interaction(f"h{i}", at=T0 + timedelta(days=i), customer_id=mario.id,
                                       caller_number="+39021234567", intent="billing",
                                       queue="billing")
    case = await store.open_case(mario.id, "refund pending", by="alice", linkedid="h3")
    closed = await store.open_case(mario.id, "old issue", by="alice")
    await store.close_case(closed.id)
    now = T0 + timedelta(days=4)
    ctx = await store.context(mario, "+39021234567", now=now)
    assert [i.linkedid for i in ctx.last] == ["h3", "h2"]
    assert [c.id for c in ctx.cases] == [case.id]
    assert ctx.is_repeat("billing", now, "new", timedelta(days=7))
    assert not ctx.is_repeat("lost_card", now, "new", timedelta(days=7))
    assert not ctx.is_repeat(None, now, "new", timedelta(days=7))
    unknown = await store.context(None, None)
    assert unknown.last == () and not unknown.is_repeat("billing", now, "x", timedelta(days=7))


class FakeCRM:
    """A CRM directory: records without a local id, keyed by the CRM's own id."""

    def __init__(self, store):
        self.store = store

    async def lookup(self, e164):
        if e164 == "+39021234567":
            return Customer(None, "CRM Mario", "vip", "it", None, (e164,), external_id="crm-42")
        return None


async def test_a_crm_directory_answers_and_gets_a_local_row_for_history(sessions):
    import sys
    import types

    mod = types.ModuleType("fake_crm_mod")
    mod.FakeCRM = FakeCRM
    sys.modules["fake_crm_mod"] = mod
    store = CustomerStore(sessions)
    assert isinstance(load_directory("db", store), DBDirectory)
    crm = load_directory("fake_crm_mod:FakeCRM", store)
    assert isinstance(crm, CustomerDirectory)
    found = await crm.lookup("+39021234567")
    local = await store.ensure_local(found)
    again = await store.ensure_local(found)
    assert local.id is not None and again.id == local.id and local.name == "CRM Mario"
    with pytest.raises(ValueError, match="'db' or 'module:Class'"):
        load_directory("nonsense", store)


async def test_history_views_are_audited(sessions):
    mario = await _mario(sessions)
    store = CustomerStore(sessions)
    await store.record_views([
        {"at": T0, "username": "alice", "role": "agent", "customer_id": mario.id,
         "reason": "1700000000.1", "via": "pop"},
        {"at": T0 + timedelta(minutes=1), "username": "mgr", "role": "manager",
         "customer_id": mario.id, "reason": "search", "via": "api"}])
    views = await store.views(customer_id=mario.id)
    assert [(v["username"], v["reason"], v["via"]) for v in views] == [
        ("mgr", "search", "api"), ("alice", "1700000000.1", "pop")]


async def test_batched_lookups_answer_like_one_by_one(sessions):
    await import_customers(sessions, b"name,phones\nMario,021234567|3331234567\nAnna,0612345\n"
                                     b"Luca,0471123456\n")
    store = CustomerStore(sessions, history_limit=3)
    mario = await store.by_phone("+39021234567")
    for i in range(25):  # more calls in the window than one batch fetches per caller
        await store.record_interaction(f"m{i}", at=T0 + timedelta(hours=i), customer_id=mario.id,
                                       caller_number="+39021234567",
                                       intent="billing" if i % 2 else "lost_card", queue="q")
    await store.record_interaction("u1", at=T0, customer_id=None, caller_number="+39069999999",
                                   intent="billing", queue="billing")
    anna = await store.by_phone("+390612345")
    case = await store.open_case(anna.id, "refund", by="alice")
    now = T0 + timedelta(days=2)
    numbers = ["+393331234567", "+390612345", "+39069999999", "+390471123456", "+39000000000"]
    batch = await store.lookup_contexts(numbers + ["+390612345"], now=now)
    assert set(batch) == set(numbers)
    for n in numbers:
        one = await store.context(await store.by_phone(n), n, now=now)
        got = batch[n]
        assert got.customer == one.customer
        assert [i.linkedid for i in got.last] == [i.linkedid for i in one.last]
        assert [i.linkedid for i in got.recent] == [i.linkedid for i in one.recent]
        assert got.cases == one.cases
    assert len(batch["+393331234567"].recent) == 25 and batch["+390612345"].cases == (case,)
    assert [i.linkedid for i in batch["+39069999999"].last] == ["u1"]
    assert batch["+39000000000"].customer is None and batch["+39000000000"].last == ()
