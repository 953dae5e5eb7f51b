"""Caller ID to E.164, so that ``02 1234567``, ``+39 02 1234567`` and ``0039021234567`` find the
same customer.

Why our own and small: the caller IDs an Italian contact centre sees are Italian landlines (the
trunk drops or keeps the ``+39``/``0039``, the leading ``0`` of the area code always stays, it is
part of the number), mobiles (``3xx``, 9-10 digits), toll-free and shared-cost numbers (``8xx``)
and foreign numbers with their ``+``/``00`` prefix. Anything else (an internal extension, a
phone name like ``caller1``, letters) is ``invalid`` and gets no lookup. Withheld numbers
(``anonymous``, ``restricted``, empty...) are ``withheld``: the pop says so and nothing is
looked up, so a withheld caller is never matched to someone else's history.

Digits without a prefix are read as Italian (``default_cc``). A leading ``39`` without ``+`` is
read as the country code only when the digits are not already a valid Italian number (``393...``
is a real mobile prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

WITHHELD = frozenset({"", "anonymous", "restricted", "private", "withheld", "unavailable",
                      "unknown", "<unknown>", "unknown caller", "blocked", "hidden", "none",
                      "privato", "anonimo", "sconosciuto", "riservato"})
_ALLOWED = re.compile(r"^\+?[0-9 ()./-]+$")
_SEPARATORS = str.maketrans("", "", " ()./-")


@dataclass(frozen=True, slots=True)
class Number:
    status: Literal["ok", "withheld", "invalid"]
    e164: str | None
    raw: str

    @property
    def display(self) -> str:
        return self.e164 or ("withheld" if self.status == "withheld" else self.raw)


def _italian_nsn(d: str) -> bool:
    """A national significant number as dialled in Italy (trunk 0 included for landlines)."""
    if d.startswith("0"):
        return 6 <= len(d) <= 11
    if d.startswith("3"):
        return 9 <= len(d) <= 10
    if d.startswith("8"):
        return 6 <= len(d) <= 10
    return False


def normalise(raw: str | None, default_cc: str = "39") -> Number:
    """Caller ID as Asterisk gives it -> :class:`Number` (``e164`` like ``+390212345678``)."""
    text = (raw or "").strip()
    if text.lower() in WITHHELD:
        return Number("withheld", None, text)
    for scheme in ("tel:", "sip:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):].split("@", 1)[0].split(";", 1)[0]
    if not _ALLOWED.match(text):
        return Number("invalid", None, text)
    digits = text.translate(_SEPARATORS)
    plus = digits.startswith("+")
    digits = digits.lstrip("+")
    if not digits.isdigit():
        return Number("invalid", None, text)
    if not plus and digits.startswith("00"):
        plus, digits = True, digits[2:]
    if plus:
        if digits.startswith("39"):
            return _it(digits[2:], text)
        if digits.startswith("0") or not 8 <= len(digits) <= 15:
            return Number("invalid", None, text)
        return Number("ok", "+" + digits, text)
    if default_cc == "39":
        if _italian_nsn(digits):
            return Number("ok", "+39" + digits, text)
        if digits.startswith("39") and _italian_nsn(digits[2:]):
            return Number("ok", "+" + digits, text)
        return Number("invalid", None, text)
    digits = digits.removeprefix("0")
    e164 = default_cc + digits
    return Number("ok", "+" + e164, text) if 8 <= len(e164) <= 15 else Number("invalid", None, text)


def _it(nsn: str, text: str) -> Number:
    return Number("ok", "+39" + nsn, text) if _italian_nsn(nsn) else Number("invalid", None, text)
