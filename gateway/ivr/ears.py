"""What the IVR runner needs from the speech engine, for one flow: "ears".

The runner streams the caller's 8 kHz audio into an :class:`Utterance` while it plays a prompt
and listens; the utterance says when speech starts (barge-in) and ends (end of speech), then
gives the intent. Keeping this seam small lets the state machine be tested with fault-injecting
fakes and lets a flow whose language has no model run on keys alone (:class:`DtmfOnly`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

SPEECH_STARTED = "speech_started"
SPEECH_ENDED = "speech_ended"
Grammar = Literal["intents", "yesno"]


@dataclass(frozen=True, slots=True)
class Heard:
    """One answer understood (or not). ``transcript`` is already masked."""

    intent: str | None
    confidence: float
    transcript: str
    engine: str
    language: str
    latency_ms: float | None  # end of speech -> result


class Utterance(Protocol):
    async def feed(self, pcm: np.ndarray) -> Sequence[str]:
        """20 ms of 8 kHz int16 PCM; returns :data:`SPEECH_STARTED` / :data:`SPEECH_ENDED`."""

    async def result(self) -> Heard:
        """The answer once speech ended (or the runner stopped listening); may raise."""

    async def close(self) -> None:
        """Idempotent; frees the recogniser session."""


class Ears(Protocol):
    speech: bool  # False: keys only
    engine: str | None

    def utterance(self, grammar: Grammar) -> Utterance: ...


class DtmfOnly:
    """A flow without a usable speech model: the caller is served by keys."""

    speech = False
    engine = None

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def utterance(self, grammar: Grammar) -> Utterance:
        raise RuntimeError(f"no speech recognition for this flow: {self.reason}")
