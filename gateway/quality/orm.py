"""Tables of voice quality and handle time: ``quality_legs`` and ``call_metrics``.

Why no foreign key to ``calls``: a call record is rewritten whole when it is saved again, and
quality of the gateway's own media may arrive before the call row exists; both tables are keyed
by the same ``linkedid`` and joined when read. Migrations: branch ``quality`` (``02xx_quality_*``).

``call_metrics`` holds the agent's identity only for the coaching view of *their own team's*
supervisor (and for the agent's own record); aggregates never group by agent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, utcnow


class QualityLegRow(Base):
    """One measured leg: RTCP of a PJSIP leg (source ``asterisk``) or RTP the gateway received
    (``gateway:<part>``). Loss in percent, times in ms; min/avg/max are of the worse direction."""

    __tablename__ = "quality_legs"
    uniqueid: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str | None] = mapped_column(String(64))
    codec: Mapped[str | None] = mapped_column(String(32))
    reports: Mapped[int] = mapped_column(Integer, default=0)
    packets_in: Mapped[int | None] = mapped_column(Integer)
    lost_in: Mapped[int | None] = mapped_column(Integer)
    loss_pct_in: Mapped[float | None] = mapped_column(Float)
    packets_out: Mapped[int | None] = mapped_column(Integer)
    lost_out: Mapped[int | None] = mapped_column(Integer)
    loss_pct_out: Mapped[float | None] = mapped_column(Float)
    jitter_ms_min: Mapped[float | None] = mapped_column(Float)
    jitter_ms_avg: Mapped[float | None] = mapped_column(Float)
    jitter_ms_max: Mapped[float | None] = mapped_column(Float)
    loss_pct_min: Mapped[float | None] = mapped_column(Float)
    loss_pct_avg: Mapped[float | None] = mapped_column(Float)
    loss_pct_max: Mapped[float | None] = mapped_column(Float)
    rtt_ms_min: Mapped[float | None] = mapped_column(Float)
    rtt_ms_avg: Mapped[float | None] = mapped_column(Float)
    rtt_ms_max: Mapped[float | None] = mapped_column(Float)
    burst_ratio: Mapped[float | None] = mapped_column(Float)
    delay_ms: Mapped[float | None] = mapped_column(Float)
    r_in: Mapped[float | None] = mapped_column(Float)
    r_out: Mapped[float | None] = mapped_column(Float)
    r_factor: Mapped[float | None] = mapped_column(Float)
    mos: Mapped[float | None] = mapped_column(Float)
    worst_direction: Mapped[str | None] = mapped_column(String(8))
    asterisk_mes: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallMetricsRow(Base):
    """One call's handle time, worst-leg quality, repeat contact and review reasons."""

    __tablename__ = "call_metrics"
    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    caller_number: Mapped[str | None] = mapped_column(String(64), index=True)
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    intent: Mapped[str | None] = mapped_column(String(64), index=True)
    topic: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    agent_endpoint: Mapped[str | None] = mapped_column(String(64))
    agent_username: Mapped[str | None] = mapped_column(String(64), index=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    queued: Mapped[bool] = mapped_column(Boolean, default=False)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    ivr_s: Mapped[float] = mapped_column(Float, default=0.0)
    queue_wait_s: Mapped[float] = mapped_column(Float, default=0.0)
    ring_s: Mapped[float] = mapped_column(Float, default=0.0)
    talk_s: Mapped[float] = mapped_column(Float, default=0.0)
    hold_s: Mapped[float] = mapped_column(Float, default=0.0)
    hold_count: Mapped[int] = mapped_column(Integer, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    acw_started_at: Mapped[datetime | None]
    acw_ended_at: Mapped[datetime | None]
    acw_s: Mapped[float | None] = mapped_column(Float)
    acw_capped: Mapped[bool] = mapped_column(Boolean, default=False)
    aht_s: Mapped[float | None] = mapped_column(Float)
    service_level_s: Mapped[float | None] = mapped_column(Float)
    answered_within_sl: Mapped[bool | None] = mapped_column(Boolean)
    repeat_contact: Mapped[bool | None] = mapped_column(Boolean)
    repeat_source: Mapped[str | None] = mapped_column(String(8))  # "cti" | "calls"
    worst_uniqueid: Mapped[str | None] = mapped_column(String(64))
    quality_legs: Mapped[int] = mapped_column(Integer, default=0)
    mos_min: Mapped[float | None] = mapped_column(Float)
    r_min: Mapped[float | None] = mapped_column(Float)
    loss_pct_max: Mapped[float | None] = mapped_column(Float)
    jitter_ms_max: Mapped[float | None] = mapped_column(Float)
    rtt_ms_max: Mapped[float | None] = mapped_column(Float)
    review: Mapped[list[Any]] = mapped_column(JSON, default=list)  # reason codes, fixed order
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, index=True)  # review non-empty
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
