"""Masked IVR transcripts: the masking guard and the table writer.

The speech pipeline already masks card-like digit runs (:mod:`speech.masking`); the IVR masks
again before anything is stored, logged or published, so a transcript that reached it unmasked
(an engine that forgot, a new pipeline) still cannot leak. The guard here is deliberately
blunt: six or more digits in a run, as figures or spoken (English and Italian digit words, with
spaces, dashes or dots between), become ``[number]``.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

from gateway.ivr.orm import IvrTranscriptRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.ivr.session import IvrSession

_WORDS = ("zero|oh|o|one|two|three|four|five|six|seven|eight|nine|"
          "uno|due|tre|quattro|cinque|sei|sette|otto|nove")
_DIGIT = rf"(?:\d|\b(?:{_WORDS})\b)"
_RUN = re.compile(rf"{_DIGIT}(?:[\s\-.]*{_DIGIT}){{5,}}", re.IGNORECASE)
MASK = "[number]"


def _speech_mask():
    try:
        mod = importlib.import_module("speech.masking")
    except ImportError:
        return None
    for name in ("mask_card_numbers", "mask", "mask_text", "mask_transcript"):
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def mask(text: str | None) -> str:
    """``text`` with card-like digit runs replaced (speech.masking first, then this guard)."""
    if not text:
        return ""
    fn = _speech_mask()
    if fn is not None:
        out = fn(text)
        text = out if isinstance(out, str) else getattr(out, "text", text)
    return _RUN.sub(MASK, text)


async def save(sessions: async_sessionmaker[AsyncSession], s: IvrSession) -> int:
    """One row for this IVR visit; returns its id (the call's ``transcript_id``)."""
    o = s.outcome
    turns = [{"prompt": t.prompt, "kind": t.kind, "digit": t.digit, "barged_in": t.barged_in,
              **({"transcript": mask(t.heard.transcript), "intent": t.heard.intent,
                  "confidence": round(t.heard.confidence, 4), "engine": t.heard.engine,
                  "latency_ms": None if t.heard.latency_ms is None else round(t.heard.latency_ms, 1)}
                 if t.heard else {})}
             for t in o.turns]
    row = IvrTranscriptRow(linkedid=s.linkedid, channel_id=s.channel_id, flow=s.flow.name,
                           language=s.flow.language, transcript=mask(o.transcript),
                           intent=o.intent, confidence=o.confidence, via=o.via or "hangup",
                           queue=o.queue, engine=o.engine, latency_ms=o.latency_ms, turns=turns)
    async with sessions() as db:
        db.add(row)
        await db.commit()
        return row.id
