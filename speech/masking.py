"""Card numbers never reach a transcript or a log line: runs of 13+ digits are masked.

A payment card number (PAN) is 13 to 19 digits. Callers key it as DTMF, read it out ("four five
five six ..." / "quattro cinque cinque sei ..."), and engines may write it as digits with spaces
or dashes. Any run of at least 13 digits, counting digit characters and spoken digit words alike,
joined only by spaces, dashes, dots, commas or slashes, is masked; only the last four digits stay
(what receipts and agents may see). Runs of 12 digits or fewer (phone numbers, dates, amounts)
are left alone. Longer runs than 19 are masked too: a card number inside a longer run is still a
card number.

:class:`CardNumberFilter` applies the same to every log record (message and arguments), so a
``log.info("heard %s", transcript)`` anywhere in the gateway cannot leak one.
"""

from __future__ import annotations

import logging
import re

MIN_DIGITS = 13
KEEP_LAST = 4
MASK = "*"

# Spoken digits: English, Italian, Korean (Sino-Korean, and the bracketed tokens some Korean
# Vosk vocabularies use). Values are the digit each word stands for.
_DIGIT_WORDS: dict[str, str] = {"oh": "0", "공": "0"}  # "oh" and 공 read as zero
for _words in (
    "zero one two three four five six seven eight nine",
    "zero uno due tre quattro cinque sei sette otto nove",
    "영 일 이 삼 사 오 육 칠 팔 구",
):
    for _d, _w in enumerate(_words.split()):
        _DIGIT_WORDS[_w] = str(_d)
for _d, _w in enumerate("영일이삼사오육칠팔구"):
    _DIGIT_WORDS[f"[{_w}]"] = str(_d)
for _d in range(10):
    _DIGIT_WORDS[f"[{_d}]"] = str(_d)

_WORD_ALT = "|".join(sorted((re.escape(w) for w in _DIGIT_WORDS), key=len, reverse=True))
# A digit token: a digit group, or a spoken digit word standing alone.
_TOKEN = rf"(?:\d+|(?<![\w\[])(?:{_WORD_ALT})(?![\w\]]))"
_SEP = r"[\s\-./,]*"
_RUN = re.compile(rf"{_TOKEN}(?:{_SEP}{_TOKEN})*", re.IGNORECASE)
_ONE = re.compile(_TOKEN, re.IGNORECASE)


def _digits_of(token: str) -> str:
    return token if token.isdigit() else _DIGIT_WORDS[token.lower()]


def mask_card_numbers(text: str) -> str:
    """Mask every digit run of 13 or more digits in ``text``, keeping its last four digits."""
    if not text:
        return text

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        tokens = list(_ONE.finditer(run))
        total = sum(len(_digits_of(t.group(0))) for t in tokens)
        if total < MIN_DIGITS:
            return run
        keep_from = total - KEEP_LAST  # digit index from which digits stay visible
        out, pos, seen = [], 0, 0
        for t in tokens:
            out.append(run[pos:t.start()])
            tok = t.group(0)
            if tok.isdigit():
                out.append("".join(c if seen + i >= keep_from else MASK for i, c in enumerate(tok)))
                seen += len(tok)
            else:
                out.append(tok if seen >= keep_from else MASK)
                seen += 1
            pos = t.end()
        out.append(run[pos:])
        return "".join(out)

    return _RUN.sub(repl, text)


def mask_dtmf(digits: str) -> str:
    """Keyed digits (``0-9*#``, maybe with spaces/dashes): same rule as speech."""
    return mask_card_numbers(digits)


class CardNumberFilter(logging.Filter):
    """A logging filter that masks card numbers in the formatted message.

    Attach it to *handlers* (``handler.addFilter(CardNumberFilter())`` or :func:`install`):
    filters on a logger do not see records propagated from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: logging reports it itself
            return True
        masked = mask_card_numbers(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_text:
            record.exc_text = mask_card_numbers(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> CardNumberFilter:
    """Add one :class:`CardNumberFilter` to every handler of ``logger`` (root by default)."""
    logger = logger or logging.getLogger()
    flt = CardNumberFilter()
    for h in logger.handlers:
        if not any(isinstance(f, CardNumberFilter) for f in h.filters):
            h.addFilter(flt)
    return flt
