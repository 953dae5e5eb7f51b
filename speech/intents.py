"""From a recognised hypothesis (or a DTMF digit) to one of the flow's intents, or to none.

The recogniser's grammar already restricts *what* can come out; this module decides *whether to
believe it*. An intent is returned only when a phrase or keyword of exactly one intent is in the
hypothesis and the confidence of the words that matched reaches the flow's threshold. Everything
else (out-of-grammar speech, silence, line noise, two intents' keywords in one utterance) is
``intent=None`` with a ``reason``, so the IVR re-prompts or falls back instead of sending a caller
to a random queue.

The flow file is the lead's (``gateway.dialplan.flow``); :func:`specs_from_flow` is the one
adapter from its ``IntentDef`` to the :class:`IntentSpec` used here, so the speech engine does
not depend on the flow loader's internals.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from speech.recognisers.base import Grammar, GrammarIntent, Hypothesis, Word


@dataclass(frozen=True)
class IntentSpec:
    """One routable intent as the speech engine needs it."""

    name: str
    phrases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    dtmf: str | None = None
    label: str = ""
    queue: str | None = None


@dataclass(frozen=True)
class IntentMatch:
    """``intent`` is None unless accepted; ``candidate`` is what the words pointed to anyway."""

    intent: str | None
    confidence: float
    reason: str  # "phrase", "keyword", "dtmf", "low_confidence", "no_match", "ambiguous", "empty"
    candidate: str | None = None
    matched: str | None = None


_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces; punctuation dropped, apostrophes kept."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return " ".join(_TOKEN.findall(text))


def specs_from_flow(flow: object) -> tuple[IntentSpec, ...]:
    """Adapter from ``gateway.dialplan.flow.Flow`` (or anything shaped like it)."""
    specs = []
    for i in flow.intents:
        specs.append(IntentSpec(
            name=i.name,
            phrases=tuple(getattr(i, "phrases", ()) or ()),
            keywords=tuple(getattr(i, "keywords", ()) or ()),
            dtmf=getattr(i, "dtmf", None),
            label=getattr(i, "label", "") or "",
            queue=getattr(i, "queue", None),
        ))
    return tuple(specs)


def grammar_for(specs: Iterable[IntentSpec], language: str) -> Grammar:
    """The recogniser grammar: every phrase and keyword, normalised, duplicates removed."""
    intents = []
    for s in specs:
        phrases = tuple(dict.fromkeys(p for p in (normalise(x) for x in s.phrases) if p))
        keywords = tuple(dict.fromkeys(k for k in (normalise(x) for x in s.keywords) if k))
        intents.append(GrammarIntent(s.name, phrases, keywords))
    return Grammar(language, tuple(intents))


class IntentMatcher:
    """Stateless and thread-safe once built; one per flow."""

    def __init__(self, specs: Sequence[IntentSpec], threshold: float = 0.5,
                 spell: Callable[[str], str] | None = None) -> None:
        """``spell``: the recogniser's word split (:meth:`Recogniser.spell`), so phrases are
        compared with hypotheses word by word as the engine writes them."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"confidence threshold must be in [0, 1], got {threshold}")
        names = [s.name for s in specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"intent names must be unique: {sorted(dup)}")
        self.specs = tuple(specs)
        self.threshold = threshold
        self._patterns: list[tuple[tuple[str, ...], str, str]] = []  # tokens, intent, kind
        spell = spell or (lambda t: t)
        for s in specs:
            for kind, items in (("phrase", s.phrases), ("keyword", s.keywords)):
                for text in items:
                    if normalise(text):
                        toks = tuple(normalise(spell(normalise(text))).split())
                        self._patterns.append((toks, s.name, kind))
        self._dtmf: dict[str, str] = {}
        for s in specs:
            if s.dtmf:
                if s.dtmf in self._dtmf:
                    raise ValueError(f"DTMF {s.dtmf!r} is used by both {self._dtmf[s.dtmf]} and {s.name}")
                self._dtmf[s.dtmf] = s.name

    def from_dtmf(self, digits: str) -> IntentMatch:
        """A keyed digit (or digit string) -> its intent with confidence 1, else no match."""
        name = self._dtmf.get(digits.strip())
        if name is None:
            return IntentMatch(None, 0.0, "no_match")
        return IntentMatch(name, 1.0, "dtmf", name, digits.strip())

    def match(self, hyp: Hypothesis) -> IntentMatch:
        words = [w for w in hyp.grammar_words if normalise(w.text)]
        tokens = [normalise(w.text) for w in words]
        if not tokens:
            return IntentMatch(None, 0.0, "empty")
        best: dict[str, tuple[int, int, int, str]] = {}  # intent -> (span, start, end, kind)
        for pattern, intent, kind in self._patterns:
            n = len(pattern)
            for start in range(len(tokens) - n + 1):
                if tuple(tokens[start:start + n]) == pattern:
                    span = n + (1000 if kind == "phrase" and n == len(tokens) else 0)
                    if span > best.get(intent, (-1,))[0]:
                        best[intent] = (span, start, start + n, kind)
        if not best:
            return IntentMatch(None, 0.0, "no_match")
        ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
        top_name, (top_span, start, end, kind) = ranked[0]
        matched_words = words[start:end]
        matched = " ".join(tokens[start:end])
        confidence = self._confidence(hyp, words, matched_words)
        if len(ranked) > 1 and ranked[1][1][0] == top_span:
            return IntentMatch(None, confidence, "ambiguous", None, matched)
        if confidence < self.threshold:
            return IntentMatch(None, confidence, "low_confidence", top_name, matched)
        return IntentMatch(top_name, confidence, kind, top_name, matched)

    @staticmethod
    def _confidence(hyp: Hypothesis, words: list[Word], matched: list[Word]) -> float:
        """The utterance's confidence when the match is the whole utterance; otherwise the
        duration-weighted confidence of the matched words (a keyword heard among other words
        must itself be clear, however sure the engine was about the rest)."""
        if len(matched) == len(words):
            return float(hyp.confidence)
        dur = [max(1, w.end_ms - w.start_ms) for w in matched]
        return float(sum(w.confidence * d for w, d in zip(matched, dur)) / sum(dur))
