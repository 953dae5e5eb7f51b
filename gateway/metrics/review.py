"""Which calls a supervisor should look at, and repeat contacts: pure rules, unit-tested.

Why a reason per call and never a score per agent: these figures exist to coach people and fix
networks. A supervisor sees *calls* worth a look with the reason (bad audio, a long hold, the
customer had to call back, bounced between agents); nothing here ranks or scores agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

REASONS = {
    "low_mos": "voice quality below the review threshold",
    "long_hold": "caller on hold longer than the review threshold",
    "repeat_contact": "the caller contacted us about the same topic within 7 days",
    "transfers": "transferred more than once",
}


@dataclass(frozen=True, slots=True)
class ReviewRules:
    mos_below: float = 3.6
    hold_over_s: float = 120.0
    transfers_over: int = 1


def review_reasons(*, mos_min: float | None, hold_s: float | None, repeat_contact: bool | None,
                   transfers: int, rules: ReviewRules = ReviewRules()) -> list[str]:
    """Reason codes (keys of :data:`REASONS`), in a fixed order; empty: nothing to review."""
    out = []
    if mos_min is not None and mos_min < rules.mos_below:
        out.append("low_mos")
    if hold_s is not None and hold_s > rules.hold_over_s:
        out.append("long_hold")
    if repeat_contact:
        out.append("repeat_contact")
    if transfers > rules.transfers_over:
        out.append("transfers")
    return out


def topic(intent: str | None, queue: str | None) -> str | None:
    """What the call was about: the IVR intent, or the queue when the call skipped the IVR
    (the same rule as the CTI's ``interactions.repeat_contact``)."""
    return intent or queue


def is_repeat(at: datetime, caller: str | None, subject: str | None,
              earlier: Iterable[tuple[datetime, str | None, str | None]],
              window: timedelta = timedelta(days=7)) -> bool:
    """True when an earlier contact ``(at, caller, topic)`` of the same caller about the same
    topic began within ``window`` before ``at``. Unknown callers or topics never match."""
    if not caller or not subject:
        return False
    return any(caller == c and subject == t and at - window <= when < at
               for when, c, t in earlier)
