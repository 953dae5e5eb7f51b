"""Tables of the CTI: users and their tokens, customers, interactions, cases, history audit.

Why in the gateway's one database: a screen pop joins the caller's number to the customer and
their past calls in one query, and the dashboards read ``interactions.repeat_contact`` next to
``calls`` without a second store. Migrations: branch ``cti`` (``01xx_cti_*``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, utcnow


class UserRow(Base):
    """A person who logs in. Agents are bound to one phone (PJSIP endpoint)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    endpoint: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One phone, one active person: a pop must never reach two desktops for one ringing set.
        Index("uq_users_endpoint_active", "endpoint", unique=True,
              sqlite_where=text("NOT disabled"), postgresql_where=text("NOT disabled")),
    )


class UserQueueRow(Base):
    """The queues an agent may serve (and logs in to from the desktop)."""

    __tablename__ = "user_queues"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)


class TokenRow(Base):
    """A bearer token, stored as its SHA-256 only: a stolen database yields no usable token."""

    __tablename__ = "auth_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class CustomerRow(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerPhoneRow(Base):
    """One E.164 number belongs to at most one customer, so a lookup has one answer."""

    __tablename__ = "customer_phones"
    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)


class InteractionRow(Base):
    """One contact-centre call (a call that reached the IVR or a queue), as history.

    ``repeat_contact``: an earlier interaction of the same customer (or, for an unknown caller,
    the same number) about the same topic began at most ``cti.repeat_window_days`` (7) before
    this one. The topic is the IVR intent, or the queue when the call skipped the IVR. Set once,
    when the row is written; the dashboards count it as is.
    """

    __tablename__ = "interactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    caller_number: Mapped[str | None] = mapped_column(String(64), index=True)
    intent: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    disposition: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    repeat_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    wrapped_up_at: Mapped[datetime | None]


class CaseRow(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    subject: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str | None] = mapped_column(String(64))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None]


class HistoryViewRow(Base):
    """Audit: who saw a customer's history, when, and why (a call's linkedid, or ``search``)."""

    __tablename__ = "history_views"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    reason: Mapped[str] = mapped_column(String(80))
    via: Mapped[str] = mapped_column(String(16))  # pop | watch | api
