"""The one interface every speech engine implements, and the values it hands back.

A :class:`Recogniser` is heavy (an acoustic model, maybe hundreds of MB) and is loaded once per
process and shared by every call; a :class:`RecogniserSession` is light, belongs to one
utterance of one call, and is fed audio as it arrives so that most of the decoding is done by
the time the caller stops speaking. Sessions are not thread-safe (one call, one feeder); the
recogniser is (many sessions may be opened from many threads).

The grammar a session decodes against is a :class:`Grammar`: the flow's intents reduced to what
an engine needs (phrases and keywords per intent, the language). Engines compile it to their own
form (JSGF for pocketsphinx, a phrase list for Vosk) and cache the result, so the compile cost is
paid once per flow, not per call.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Self

import numpy as np


class RecogniserError(RuntimeError):
    """An engine or model cannot be used (missing model, bad grammar word...); says why."""


@dataclass(frozen=True)
class GrammarIntent:
    name: str
    phrases: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grammar:
    """What may be said: per intent, whole phrases and single keywords (normalised text)."""

    language: str
    intents: tuple[GrammarIntent, ...]

    @property
    def key(self) -> str:
        """Stable identity used to cache compiled grammars."""
        import hashlib

        h = hashlib.sha1(self.language.encode())
        for i in self.intents:
            h.update(b"\x00" + i.name.encode())
            for p in i.phrases:
                h.update(b"\x01" + p.encode())
            for k in i.keywords:
                h.update(b"\x02" + k.encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Word:
    """One recognised word. ``filler`` marks the rejection path (garbage, not a grammar word)."""

    text: str
    confidence: float
    start_ms: int = 0
    end_ms: int = 0
    filler: bool = False


@dataclass(frozen=True)
class Hypothesis:
    """An engine's answer for one utterance.

    ``text`` is the grammar words only (filler removed); ``confidence`` in [0, 1] is the engine's
    belief that the grammar words were really said (not that the caller was understood);
    ``details`` carries engine-specific scores for the bench and debug logs.
    """

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    engine: str = ""
    details: dict = field(default_factory=dict)

    @property
    def grammar_words(self) -> tuple[Word, ...]:
        return tuple(w for w in self.words if not w.filler)


class RecogniserSession(abc.ABC):
    """One utterance: ``accept`` audio as it arrives, then ``final`` once."""

    @abc.abstractmethod
    def accept(self, pcm: np.ndarray) -> None:
        """Decode more 16-bit mono PCM at the recogniser's ``sample_rate``."""

    @abc.abstractmethod
    def final(self) -> Hypothesis:
        """Finish the utterance and return the best hypothesis (may be empty, confidence 0)."""

    def close(self) -> None:
        """Give resources back (idempotent); ``final`` does it too."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recogniser(abc.ABC):
    """A loaded engine + model; thread-safe; ``session`` per utterance."""

    name: str = ""
    language: str = ""
    sample_rate: int = 16000

    @abc.abstractmethod
    def session(self, grammar: Grammar) -> RecogniserSession:
        """A fresh decoding session restricted to ``grammar``."""

    def check_grammar(self, grammar: Grammar) -> None:
        """Raise :class:`RecogniserError` naming every word the model cannot recognise."""

    def spell(self, text: str) -> str:
        """How this engine writes a (normalised) phrase in its hypotheses: the same words, or
        the model's own word split (Vosk Korean: "카드를" may come out as "카드 를")."""
        return text
