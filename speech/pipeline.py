"""The path from telephone audio to an intent, shared by the IVR, the CLI and the bench.

::

    pipeline = SpeechPipeline.from_flow(flow, settings)      # once per flow per process
    turn = pipeline.listen(sample_rate=8000)                  # once per prompt/answer turn
    for frame in frames:                                      # 20 ms of 16-bit PCM, real time
        for event in turn.feed(frame):
            SpeechStarted  -> stop the prompt (barge-in)
            SpeechEnded    -> the caller finished (after end_of_speech_ms of silence)
            Recognised     -> event.result: IntentResult (intent or None, confidence, ...)
            NoInput        -> nobody spoke within no_input_timeout

A :class:`Listener` runs the end-pointer on every frame and streams the speech (with a little
pre-roll) into a recogniser session *while the caller is still speaking*, so when the end is
detected only the last frames and the final search remain (plus, for an unsure result, one
re-decode of the utterance): ``latency_ms`` in the result measures end-of-speech decision ->
result (``python -m bench.asr``: p95 well under 300 ms, also with 40 calls on two cores).

asyncio (the IVR)::

    speech = await AsyncSpeechPipeline.from_flow(flow, settings)   # loads the model off-loop
    turn = speech.listen(8000)
    # in the RTP callback, every 20 ms:   for ev in turn.feed(pcm): ...SpeechStarted -> barge-in
    result = await turn.result()          # IntentResult, after SpeechEnded (or NoInput)
    await turn.aclose()                   # on hang-up mid-turn: the decoder goes back

Threading: ``feed`` does everything inline (fine for the CLI, tests and worker threads). For
asyncio, :class:`AsyncListener` splits the work: the end-pointer runs inline on the event loop
(tens of microseconds per frame, so barge-in is never delayed by decoding), and resampling +
decoding run in a thread pool, one job at a time per listener, in order. Its ``feed`` is a plain
method, so it can be called straight from a ``DatagramProtocol.datagram_received`` RTP callback.

Transcripts are masked (:mod:`speech.masking`) before they leave this module.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from speech.audio import Resampler, as_pcm16, frame_samples, frames
from speech.intents import IntentMatcher, IntentSpec, grammar_for, specs_from_flow
from speech.masking import mask_card_numbers
from speech.recognisers import load_recogniser
from speech.recognisers.base import Hypothesis, Recogniser, RecogniserSession
from speech.vad import EndPointer, SpeechEnded, SpeechStarted, VadConfig

if TYPE_CHECKING:
    from gateway.settings import Settings


@dataclass(frozen=True)
class IntentResult:
    """The outcome of one listening turn.

    ``reason``: "phrase"/"keyword" (recognised), "dtmf", "low_confidence", "no_match",
    "ambiguous", "empty" (speech, but nothing from the grammar), "no_input" (nobody spoke).
    ``end_reason``: how the utterance ended: "silence", "max_length" or "end_of_input".
    ``latency_ms``: from the end-of-speech decision to this result (0 for DTMF / no input).
    ``candidate``: the intent the words pointed to even when rejected (for confirm prompts).
    """

    intent: str | None
    confidence: float
    transcript: str
    engine: str
    language: str
    latency_ms: float
    reason: str = ""
    candidate: str | None = None
    speech_ms: int = 0
    end_reason: str = ""
    details: dict = field(default_factory=dict, compare=False)  # engine scores, for tuning

    def to_json(self) -> dict:
        d = asdict(self)
        d["confidence"] = round(self.confidence, 3)
        d["latency_ms"] = round(self.latency_ms, 1)
        return d


@dataclass(frozen=True)
class Recognised:
    result: IntentResult


@dataclass(frozen=True)
class NoInput:
    at_ms: int
    result: IntentResult


ListenEvent = SpeechStarted | SpeechEnded | Recognised | NoInput


@dataclass(frozen=True)
class PipelineConfig:
    """How a flow listens. ``no_input_timeout_ms`` counts from the start of listening; None
    switches the pipeline's own no-input timer off (the IVR listens from the first frame of a
    prompt for barge-in, so it runs its own timer from the end of the prompt)."""

    language: str = "en"
    confidence_threshold: float = 0.5
    vad: VadConfig = field(default_factory=VadConfig)
    no_input_timeout_ms: int | None = 5000

    @classmethod
    def from_flow(cls, flow: object, *, no_input_timer: bool = True) -> PipelineConfig:
        """The flow's ``recognition`` settings (end of speech, longest answer, threshold, and
        the no-input timeout unless ``no_input_timer`` is False)."""
        rec = getattr(flow, "recognition", None)
        vad = VadConfig(
            end_silence_ms=int(getattr(rec, "end_of_speech_ms", 800)),
            max_speech_ms=int(float(getattr(rec, "max_speech_s", 15.0)) * 1000),
        )
        timeout = int(float(getattr(rec, "no_input_timeout_s", 5.0)) * 1000)
        return cls(language=getattr(flow, "language", "en"),
                   confidence_threshold=float(getattr(rec, "confidence_threshold", 0.5)),
                   vad=vad, no_input_timeout_ms=timeout if no_input_timer else None)


class SpeechPipeline:
    """Recogniser + grammar + intent matcher + end-pointer settings for one flow. Thread-safe,
    shared by all calls; :meth:`listen` gives each turn its own :class:`Listener`."""

    def __init__(self, recogniser: Recogniser, intents: Sequence[IntentSpec],
                 config: PipelineConfig | None = None) -> None:
        self.recogniser = recogniser
        self.config = config or PipelineConfig(language=recogniser.language)
        self.intents = tuple(intents)
        self.grammar = grammar_for(self.intents, self.config.language)
        recogniser.check_grammar(self.grammar)  # fail at load, naming every unknown word
        self.matcher = IntentMatcher(self.intents, self.config.confidence_threshold,
                                     spell=recogniser.spell)

    @classmethod
    def from_flow(cls, flow: object, settings: Settings | None = None, *,
                  engine: str | None = None, no_input_timer: bool = True) -> SpeechPipeline:
        """Build from a loaded ``gateway.dialplan.flow.Flow`` (its recognition settings).

        ``no_input_timer=False``: no :class:`NoInput` from the pipeline; for a caller that
        starts listening before its prompt ends (barge-in) and times no-input itself."""
        config = PipelineConfig.from_flow(flow, no_input_timer=no_input_timer)
        name = engine or getattr(flow, "engine", None) or (
            settings.speech.engine if settings is not None else "pocketsphinx")
        return cls(load_recogniser(name, config.language, settings), specs_from_flow(flow),
                   config)

    @classmethod
    def from_specs(cls, intents: Sequence[IntentSpec], *, engine: str = "pocketsphinx",
                   language: str = "en", settings: Settings | None = None,
                   **config: object) -> SpeechPipeline:
        return cls(load_recogniser(engine, language, settings), intents,
                   PipelineConfig(language=language, **config))  # type: ignore[arg-type]

    def listen(self, sample_rate: int = 8000, *, frame_ms: int = 20) -> Listener:
        return Listener(self, sample_rate, frame_ms)

    def dtmf(self, digits: str) -> IntentResult:
        m = self.matcher.from_dtmf(digits)
        return IntentResult(m.intent, m.confidence, mask_card_numbers(digits), "dtmf",
                            self.config.language, 0.0, m.reason, m.candidate)

    def decode_pcm(self, pcm: np.ndarray, sample_rate: int, *, frame_ms: int = 20,
                   tail_silence_ms: int | None = None) -> IntentResult:
        """A whole recording through the same turn logic (as fast as the CPU allows).

        Trailing silence is appended so that a file cut right after the last word still ends
        by the end-pointer rule, as on a call; no-input is judged on the recording only.
        """
        listener = self.listen(sample_rate, frame_ms=frame_ms)
        tail = self.config.vad.end_silence_ms + 100 if tail_silence_ms is None else tail_silence_ms
        pad = np.zeros(sample_rate * tail // 1000, np.int16)
        try:
            for f in frames(np.concatenate([as_pcm16(pcm), pad]), sample_rate, frame_ms):
                for ev in listener.feed(f):
                    if isinstance(ev, Recognised | NoInput):
                        return ev.result
            return listener.finish()
        finally:
            listener.close()


class Listener:
    """One turn: feed frames, get events. Not shared between threads except as documented:
    :meth:`push` (VAD) and :meth:`decode_pending` (recogniser) may run on different threads
    provided each is called serially; :class:`AsyncListener` does exactly that."""

    def __init__(self, pipeline: SpeechPipeline, sample_rate: int, frame_ms: int) -> None:
        self.pipeline = pipeline
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self._frame_len = frame_samples(sample_rate, frame_ms)
        self._ep = EndPointer(sample_rate, pipeline.config.vad)
        pre = pipeline.config.vad.pre_roll_ms + pipeline.config.vad.start_window_ms
        self._history: deque[tuple[int, np.ndarray]] = deque(maxlen=max(1, pre // frame_ms + 1))
        self._lock = threading.Lock()
        self._pending: list[np.ndarray] = []
        self._resampler = Resampler(sample_rate, pipeline.recogniser.sample_rate)
        self._session: RecogniserSession | None = None
        self.state = "waiting"  # waiting -> speaking -> ended -> done
        self.started: SpeechStarted | None = None
        self.ended: SpeechEnded | None = None
        self.result: IntentResult | None = None
        self._ended_at: float | None = None
        self._partial = np.zeros(0, np.int16)

    # -- the cheap half (VAD, buffering) -------------------------------------------------------

    def push(self, frame: bytes | np.ndarray) -> list[SpeechStarted | SpeechEnded | NoInput]:
        """Run the end-pointer on audio (any length; split into frames here). Never decodes."""
        pcm = as_pcm16(frame)
        if len(self._partial):
            pcm = np.concatenate([self._partial, pcm])
        n = len(pcm) // self._frame_len * self._frame_len
        self._partial = pcm[n:].copy()
        out: list[SpeechStarted | SpeechEnded | NoInput] = []
        for i in range(0, n, self._frame_len):
            if self.state in ("ended", "done"):
                break
            f = pcm[i:i + self._frame_len]
            t = self._ep.time_ms
            events = self._ep.process(f)
            if self.state == "waiting":
                self._history.append((t, f))
            elif self.state == "speaking":
                self._queue([f])
            for ev in events:
                if isinstance(ev, SpeechStarted) and self.state == "waiting":
                    self.state, self.started = "speaking", ev
                    keep_from = ev.onset_ms - self.pipeline.config.vad.pre_roll_ms
                    self._queue([a for ts, a in self._history if ts >= keep_from])
                    self._history.clear()
                    out.append(ev)
                elif isinstance(ev, SpeechEnded) and self.state == "speaking":
                    self.state, self.ended = "ended", ev
                    self._ended_at = time.perf_counter()
                    out.append(ev)
            timeout = self.pipeline.config.no_input_timeout_ms
            if self.state == "waiting" and timeout is not None and self._ep.time_ms >= timeout:
                self.state = "done"
                self.result = self._empty_result("no_input")
                out.append(NoInput(self._ep.time_ms, self.result))
        return out

    def _queue(self, chunks: Iterable[np.ndarray]) -> None:
        with self._lock:
            self._pending.extend(chunks)

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def pending_frames(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- the expensive half (resampling, decoding) ---------------------------------------------

    def decode_pending(self) -> None:
        """Stream queued speech into the recogniser (call from one thread at a time)."""
        with self._lock:
            chunks, self._pending = self._pending, []
        if not chunks:
            return
        if self._session is None:
            self._session = self.pipeline.recogniser.session(self.pipeline.grammar)
        self._session.accept(self._resampler.process(np.concatenate(chunks)))

    def finish(self) -> IntentResult:
        """Decode what is left and produce the result. After SpeechEnded this is the normal
        end of a turn; called earlier (input ended, caller hung up) it decodes what was heard.
        Idempotent: a finished turn returns the same result."""
        if self.result is not None:
            return self.result
        if self.state == "waiting":
            self.state = "done"
            self.result = self._empty_result("no_input")
            return self.result
        if self._ended_at is None:
            self._ended_at = time.perf_counter()
        self.decode_pending()
        session, self._session = self._session, None
        if session is None:
            hyp = Hypothesis("", 0.0, engine=self.pipeline.recogniser.name)
        else:
            hyp = session.final()
        match = self.pipeline.matcher.match(hyp)
        words = " ".join(w.text for w in hyp.words) or hyp.text
        ended = self.ended
        self.result = IntentResult(
            intent=match.intent,
            confidence=float(match.confidence),
            transcript=mask_card_numbers(words),
            engine=self.pipeline.recogniser.name,
            language=self.pipeline.config.language,
            latency_ms=(time.perf_counter() - self._ended_at) * 1000.0,
            reason=match.reason,
            candidate=match.candidate,
            speech_ms=(ended.speech_ms if ended else self._ep.time_ms - (self.started.onset_ms
                                                                          if self.started else 0)),
            end_reason=ended.reason if ended else "end_of_input",
            details=dict(hyp.details),
        )
        self.state = "done"
        return self.result

    def feed(self, frame: bytes | np.ndarray) -> list[ListenEvent]:
        """Synchronous all-in-one step: end-pointer, decoding, and the result when ended."""
        events: list[ListenEvent] = list(self.push(frame))
        if self.state in ("speaking", "ended"):
            self.decode_pending()
        if self.state == "ended":
            events.append(Recognised(self.finish()))
        return events

    def close(self) -> None:
        """Give the recogniser session back (call on hangup); safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            session.close()
        if self.state != "done":
            self.state = "done"

    def _empty_result(self, reason: str) -> IntentResult:
        return IntentResult(None, 0.0, "", self.pipeline.recogniser.name,
                            self.pipeline.config.language, 0.0, reason)


# -- asyncio facade ----------------------------------------------------------------------------

_default_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def speech_executor() -> ThreadPoolExecutor:
    """The process-wide decoding pool (one thread per core, at least two)."""
    global _default_executor
    with _executor_lock:
        if _default_executor is None:
            _default_executor = ThreadPoolExecutor(max(2, os.cpu_count() or 2),
                                                   thread_name_prefix="speech")
        return _default_executor


class AsyncListener:
    """A :class:`Listener` for asyncio code: ``feed`` returns VAD events at once (barge-in),
    decoding happens in the executor; ``await result()`` gives the :class:`IntentResult`."""

    def __init__(self, listener: Listener, executor: Executor | None = None, *,
                 batch_ms: int = 100) -> None:
        """``batch_ms``: speech is handed to the decoder in batches this long (one executor
        job per batch instead of per frame); at the end of speech the rest goes at once."""
        self.listener = listener
        self._batch = max(1, batch_ms // listener.frame_ms)
        self._executor = executor or speech_executor()
        self._loop = asyncio.get_running_loop()
        self._job: asyncio.Future | None = None  # at most one decode job per listener
        self._error: BaseException | None = None
        self._finishing = False
        self._result: asyncio.Future[IntentResult] = self._loop.create_future()

    def feed(self, frame: bytes | np.ndarray) -> list[SpeechStarted | SpeechEnded | NoInput]:
        """Call on the event loop for every frame (from an RTP callback is fine)."""
        if self._result.done() or self._finishing:
            return []
        events = self.listener.push(frame)
        if self.listener.state in ("speaking", "ended") and self._job is None and \
                self.listener.pending_frames() >= self._batch:
            self._start_job()
        for ev in events:
            if isinstance(ev, NoInput):
                self._result.set_result(ev.result)
            elif isinstance(ev, SpeechEnded):
                self._begin_finish()
        return events

    def _start_job(self) -> None:
        self._job = self._loop.run_in_executor(self._executor, self.listener.decode_pending)
        self._job.add_done_callback(self._job_done)

    def _job_done(self, fut: asyncio.Future) -> None:
        self._job = None
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self._error = fut.exception()
        elif self.listener.pending_frames() >= self._batch and not self._finishing:
            self._start_job()

    def _begin_finish(self) -> None:
        if not self._finishing:
            self._finishing = True
            self._loop.create_task(self._finish())

    async def _finish(self) -> None:
        try:
            while self._job is not None:
                await asyncio.wait([self._job])
            if self._error is not None:
                raise self._error
            res = await self._loop.run_in_executor(self._executor, self.listener.finish)
            if not self._result.done():
                self._result.set_result(res)
        except Exception as exc:  # noqa: BLE001 - surfaced to whoever awaits result()
            if not self._result.done():
                self._result.set_exception(exc)

    async def result(self) -> IntentResult:
        return await asyncio.shield(self._result)

    async def finish(self) -> IntentResult:
        """End the turn now (e.g. input stopped) and return whatever was heard."""
        if not self._result.done():
            self._begin_finish()
        return await self.result()

    async def aclose(self) -> None:
        """Hang-up path: stop, give the recogniser session back."""
        self._finishing = True
        while self._job is not None:
            await asyncio.wait([self._job])
        await self._loop.run_in_executor(self._executor, self.listener.close)
        if not self._result.done():
            self._result.cancel()


class AsyncSpeechPipeline:
    """The asyncio face of a :class:`SpeechPipeline`."""

    def __init__(self, pipeline: SpeechPipeline, executor: Executor | None = None) -> None:
        self.pipeline = pipeline
        self.executor = executor or speech_executor()

    @classmethod
    async def from_flow(cls, flow: object, settings: Settings | None = None, *,
                        engine: str | None = None, no_input_timer: bool = True,
                        executor: Executor | None = None) -> AsyncSpeechPipeline:
        """Loads the model in the executor (Vosk takes seconds) instead of on the loop."""
        loop = asyncio.get_running_loop()
        ex = executor or speech_executor()
        p = await loop.run_in_executor(ex, lambda: SpeechPipeline.from_flow(
            flow, settings, engine=engine, no_input_timer=no_input_timer))
        return cls(p, ex)

    def listen(self, sample_rate: int = 8000, *, frame_ms: int = 20) -> AsyncListener:
        return AsyncListener(self.pipeline.listen(sample_rate, frame_ms=frame_ms), self.executor)

    async def decode_pcm(self, pcm: np.ndarray, sample_rate: int) -> IntentResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.pipeline.decode_pcm, pcm,
                                          sample_rate)

    def dtmf(self, digits: str) -> IntentResult:
        return self.pipeline.dtmf(digits)


__all__ = [
    "AsyncListener", "AsyncSpeechPipeline", "IntentResult", "ListenEvent", "Listener", "NoInput",
    "PipelineConfig", "Recognised", "SpeechEnded", "SpeechPipeline", "SpeechStarted",
    "speech_executor",
]
