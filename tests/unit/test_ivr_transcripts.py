"""IVR transcripts: masked before they are stored, on SQLite and PostgreSQL, via the migration."""

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.ivr.ears import Heard
from gateway.ivr.orm import IvrTranscriptRow
from gateway.ivr.session import Outcome, Turn
from gateway.ivr.transcripts import mask, save


@pytest.mark.parametrize("text, masked", [
    # a whole card number: speech.masking keeps the last four digits (what receipts show)
    ("my card number is 4556 1234 5678 9012", "my card number is **** **** **** 9012"),
    ("four five five six one two three four five six seven eight nine zero one two",
     "* * * * * * * * * * * * nine zero one two"),
    # shorter runs speech.masking leaves alone are still masked here before storage

    ("my card number is four five five six one two three four", "my card number is [number]"),
    ("il numero è quattro cinque cinque sei uno due", "il numero è [number]"),
    ("card 4556-1234-5678", "card [number]"),
    ("i lost my card", "i lost my card"),
    ("press 1 or 2", "press 1 or 2"),  # short runs are not card-like
    ("", ""),
])
def test_card_like_digit_runs_are_masked(text, masked):
    assert mask(text) == masked


async def test_a_visit_is_stored_masked_with_every_turn(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    card = "my card number is four five five six one two three four"
    outcome = Outcome(via="speech", intent="lost_card", confidence=0.91, queue="lost_card",
                      transcript=card, engine="pocketsphinx", latency_ms=35.0,
                      turns=[Turn("welcome", "no_input"),
                             Turn("retry", "speech", heard=Heard("lost_card", 0.91, card,
                                                                 "pocketsphinx", "en", 35.0))])
    visit = SimpleNamespace(outcome=outcome, linkedid="1700000000.1", channel_id="1700000000.1",
                            flow=SimpleNamespace(name="demo-en", language="en"))
    try:
        tid = await save(sessions, visit)
        async with sessions() as db:
            row = (await db.execute(select(IvrTranscriptRow))).scalar_one()
        assert row.id == tid
        assert row.transcript == "my card number is [number]"
        assert row.turns[1]["transcript"] == "my card number is [number]"
        assert "four five" not in repr(row.turns)
        assert (row.intent, row.via, row.queue, row.flow) == ("lost_card", "speech", "lost_card",
                                                              "demo-en")
    finally:
        await engine.dispose()
