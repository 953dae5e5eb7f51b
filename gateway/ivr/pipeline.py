"""Ears for a flow from the speech engine's streaming pipeline (:mod:`speech.pipeline`), or keys
only and the reason why.

One :class:`speech.pipeline.SpeechPipeline` per flow (and one for yes/no confirmations) is
built at start and shared by every call; each prompt/answer turn is an
:class:`speech.pipeline.AsyncListener`: its end-pointer runs inline on the event loop (tens of
microseconds a frame, so barge-in is never late) and decoding runs in the speech engine's thread
pool while the caller speaks. The IVR listens from the first frame of a prompt (barge-in), so
the pipeline's own no-input timer, which counts from the start of listening, is switched off:
the IVR starts its no-input timer when the prompt ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np

from gateway.dialplan.flow import Flow
from gateway.ivr.ears import SPEECH_ENDED, SPEECH_STARTED, DtmfOnly, Ears, Grammar, Heard
from gateway.settings import Settings

log = logging.getLogger(__name__)

YES_NO = {
    "en": (("yes", ("yes", "yes please", "that's right", "correct", "yeah"),
            ("yes", "yeah", "correct", "right")),
           ("no", ("no", "no thanks", "that's wrong", "wrong"), ("no", "wrong", "nope"))),
    "it": (("yes", ("sì", "sì grazie", "esatto", "corretto"), ("sì", "esatto", "corretto")),
           ("no", ("no", "no grazie", "sbagliato"), ("no", "sbagliato"))),
}


class PipelineUtterance:
    def __init__(self, listener) -> None:
        self.listener = listener

    async def feed(self, pcm: np.ndarray) -> Sequence[str]:
        from speech.vad import SpeechEnded, SpeechStarted

        out = []
        for ev in self.listener.feed(pcm):
            if isinstance(ev, SpeechStarted):
                out.append(SPEECH_STARTED)
            elif isinstance(ev, SpeechEnded):
                out.append(SPEECH_ENDED)
        return out

    async def result(self) -> Heard:
        r = await self.listener.finish()  # after SpeechEnded: the result; earlier: what was heard
        return Heard(r.intent, r.confidence, r.transcript, r.engine, r.language, r.latency_ms)

    async def close(self) -> None:
        await self.listener.aclose()


class PipelineEars:
    speech = True

    def __init__(self, pipelines: dict[str, object], engine: str) -> None:
        self.pipelines = pipelines  # grammar name -> AsyncSpeechPipeline
        self.engine = engine

    def utterance(self, grammar: Grammar) -> PipelineUtterance:
        p = self.pipelines.get(grammar) or self.pipelines["intents"]  # no yes/no words: keys
        return PipelineUtterance(p.listen(8000, frame_ms=20))


def _build(flow: Flow, settings: Settings) -> dict[str, object]:
    """In the speech pool: loading a model can take seconds."""
    from speech.intents import IntentSpec, specs_from_flow
    from speech.pipeline import PipelineConfig, SpeechPipeline
    from speech.recognisers import load_recogniser
    from speech.vad import VadConfig

    rec = flow.recognition
    engine = flow.engine or settings.speech.engine
    recogniser = load_recogniser(engine, flow.language, settings)
    config = PipelineConfig(
        language=flow.language, confidence_threshold=rec.confidence_threshold,
        vad=VadConfig(end_silence_ms=rec.end_of_speech_ms,
                      max_speech_ms=int(rec.max_speech_s * 1000)),
        no_input_timeout_ms=None)
    out = {"intents": SpeechPipeline(recogniser, specs_from_flow(flow), config)}
    yes_no = YES_NO.get(flow.language)
    if yes_no:
        try:
            out["yesno"] = SpeechPipeline(recogniser, [IntentSpec(n, p, k) for n, p, k in yes_no],
                                          config)
        except Exception as exc:  # noqa: BLE001 - a model without these words: keys 1/2
            log.warning("IVR flow %s: confirmations by keys only (%s)", flow.name, exc)
    return out


async def ears_for(flow: Flow, settings: Settings) -> Ears:
    """The flow's ears; :class:`DtmfOnly` naming the reason when speech cannot work."""
    try:
        from speech.pipeline import AsyncSpeechPipeline, speech_executor
    except ImportError as exc:
        return DtmfOnly(f"the speech engine is not installed ({exc.name})")
    ex = speech_executor()
    try:
        built = await asyncio.get_running_loop().run_in_executor(ex, _build, flow, settings)
    except Exception as exc:  # noqa: BLE001 - e.g. no model for this language: keys only
        return DtmfOnly(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    engine = flow.engine or settings.speech.engine
    return PipelineEars({k: AsyncSpeechPipeline(p, ex) for k, p in built.items()}, engine)
