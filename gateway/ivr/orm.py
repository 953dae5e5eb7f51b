"""The IVR's own table: one masked transcript per IVR visit (``ivr_transcripts.id`` is the
``transcript_id`` on the call record, the IVR event and the channel variable).

Only masked text is ever written here: card-like digit runs are replaced before the row is made
(:func:`gateway.ivr.transcripts.mask`), and ``turns`` holds every answer of the visit, masked too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, utcnow


class IvrTranscriptRow(Base):
    __tablename__ = "ivr_transcripts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    transcript: Mapped[str] = mapped_column(Text)  # the answer that decided, masked
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    via: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str | None] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(32))
    latency_ms: Mapped[float | None] = mapped_column(Float)  # end of speech -> intent
    turns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
