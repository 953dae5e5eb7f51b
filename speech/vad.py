"""Streaming end-pointer: when the caller starts talking (barge-in) and when they have finished.

Fed 10, 20 or 30 ms frames of 8 or 16 kHz PCM in real time, :class:`EndPointer` emits
:class:`SpeechStarted` as soon as it is sure someone is speaking (the IVR stops its prompt on
it) and :class:`SpeechEnded` after a configurable trailing silence, or when the utterance
reaches its maximum length.

Why not WebRTC's VAD alone: it answers "is this frame speech-like?" on energy and spectral
shape, and says *yes* to every frame of loud stationary noise (hiss, pink/brown noise, a 425 Hz
tone), which would stop prompts for nothing and never end an utterance on a noisy line. So a
frame counts as *voiced* only when WebRTC says speech **and** the frame is periodic at a
voice pitch (normalised autocorrelation peak >= ``voicing_threshold`` at a lag of 2.5-16 ms,
after pre-emphasis so rumble does not look periodic). Measured on sox-generated noise at
-40 to -10 dBFS: 0 voiced frames for white, pink and brown noise, against 40-60 % of the frames
of espeak-ng speech.

- *Start*: ``min_speech_ms`` of voiced frames within ``start_window_ms`` (a click, a cough
  burst or a noise burst is too short or not periodic). The utterance is back-dated to the
  first active frame, and ``pre_roll_ms`` more audio is kept for the recogniser, so the first
  consonant is not cut off.
- *Still speaking*: a frame keeps the utterance alive when it is voiced, or active (WebRTC) and
  at least ``noise_margin_db`` above the noise floor tracked before the utterance (unvoiced
  consonants are not periodic; stationary noise is not above its own floor).
- *End*: ``end_silence_ms`` without such frames (the flow's ``end_of_speech_ms``), or
  ``max_speech_ms`` of utterance.

The end-pointer is pure computation (a few tens of microseconds per frame), cheap enough to run
on the event loop for barge-in; it keeps no audio (the pipeline does).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from speech.audio import rms_dbfs


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2  # WebRTC VAD mode 0 (permissive) .. 3 (strict)
    min_speech_ms: int = 100  # voiced audio needed to declare speech
    start_window_ms: int = 300  # ... within this window
    end_silence_ms: int = 800  # trailing silence that ends an utterance
    max_speech_ms: int = 15000  # longest utterance
    pre_roll_ms: int = 300  # audio before the detected onset handed to the recogniser
    voicing_threshold: float = 0.45  # normalised autocorrelation at the pitch lag
    noise_margin_db: float = 10.0
    min_level_dbfs: float = -55.0  # quieter frames are never speech

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"VAD aggressiveness is 0..3, got {self.aggressiveness}")
        for name in ("min_speech_ms", "start_window_ms", "end_silence_ms", "max_speech_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.min_speech_ms > self.start_window_ms:
            raise ValueError("min_speech_ms cannot exceed start_window_ms")


@dataclass(frozen=True)
class SpeechStarted:
    """Someone is speaking. ``at_ms``: stream time of the decision (barge-in moment);
    ``onset_ms``: estimated start of the speech (earlier)."""

    at_ms: int
    onset_ms: int


@dataclass(frozen=True)
class SpeechEnded:
    """The utterance is over. ``end_ms``: last speech frame; ``at_ms``: decision time
    (``end_ms`` + trailing silence); ``reason``: "silence" or "max_length"."""

    at_ms: int
    onset_ms: int
    end_ms: int
    reason: str

    @property
    def speech_ms(self) -> int:
        return self.end_ms - self.onset_ms


VadEvent = SpeechStarted | SpeechEnded


def periodicity(window: np.ndarray, sample_rate: int) -> float:
    """Peak normalised autocorrelation at a voice pitch lag (62-400 Hz); 0 when the peak is at
    the edge of the range (rumble, hum) or the window is silent."""
    x = window.astype(np.float64)
    x = np.append(x[0], x[1:] - 0.95 * x[:-1])
    x -= x.mean()
    n = len(x)
    lo, hi = sample_rate // 400, sample_rate * 16 // 1000
    if n <= hi + 1:
        return 0.0
    energy = float(np.dot(x, x))
    if energy <= 1e-6 * n:
        return 0.0
    spec = np.fft.rfft(x, 2 * n)
    r = np.fft.irfft(spec.real ** 2 + spec.imag ** 2)[: hi + 1]
    tail = np.cumsum((x * x)[::-1])[::-1]  # tail[k] = sum_{i>=k} x_i^2
    head = np.cumsum(x * x)  # head[k] = sum_{i<=k} x_i^2
    lags = np.arange(lo, hi + 1)
    rn = r[lags] / (np.sqrt(tail[lags] * head[n - 1 - lags]) + 1e-9)
    i = int(np.argmax(rn))
    if i == 0 or i == len(rn) - 1:
        return 0.0
    return float(rn[i])


class EndPointer:
    """One per listening turn (or reused: after :class:`SpeechEnded` it looks for the next)."""

    def __init__(self, sample_rate: int = 8000, config: VadConfig | None = None) -> None:
        import webrtcvad

        if sample_rate not in (8000, 16000):
            raise ValueError(f"the end-pointer takes 8000 or 16000 Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.config = config or VadConfig()
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._analysis = np.zeros(sample_rate * 40 // 1000, dtype=np.int16)  # last 40 ms
        self.time_ms = 0
        self.in_speech = False
        self._recent: deque[tuple[int, int, bool, bool]] = deque()  # (t, dur, active, voiced)
        self._onset_ms = 0
        self._last_speech_ms = 0
        self._noise_db = -70.0
        self._noise_frames = 0

    def reset(self) -> None:
        """Forget the current utterance (keeps the noise floor and the clock)."""
        self.in_speech = False
        self._recent.clear()

    def process(self, frame: np.ndarray) -> list[VadEvent]:
        frame = np.asarray(frame, dtype=np.int16)
        dur = len(frame) * 1000 // self.sample_rate
        if dur not in (10, 20, 30) or len(frame) * 1000 % self.sample_rate:
            raise ValueError(f"frames must be 10, 20 or 30 ms; got {len(frame)} samples "
                             f"at {self.sample_rate} Hz")
        c = self.config
        t = self.time_ms
        self.time_ms += dur
        self._analysis = np.concatenate([self._analysis, frame])[-len(self._analysis):]
        level = rms_dbfs(frame)
        active = level >= c.min_level_dbfs and self._vad.is_speech(frame.tobytes(),
                                                                   self.sample_rate)
        voiced = active and periodicity(self._analysis, self.sample_rate) >= c.voicing_threshold
        events: list[VadEvent] = []

        if not self.in_speech:
            if not voiced:
                self._track_noise(level)
            self._recent.append((t, dur, active, voiced))
            while self._recent and self._recent[0][0] < t + dur - c.start_window_ms:
                self._recent.popleft()
            voiced_ms = sum(d for _, d, _, v in self._recent if v)
            if voiced_ms >= c.min_speech_ms:
                first = next(ft for ft, _, a, _ in self._recent if a)
                self.in_speech = True
                self._onset_ms = first
                self._last_speech_ms = t + dur
                self._recent.clear()
                events.append(SpeechStarted(at_ms=t + dur, onset_ms=first))
            return events

        speechy = voiced or (active and level >= self._noise_db + c.noise_margin_db)
        if speechy:
            self._last_speech_ms = t + dur
        now = t + dur
        if now - self._onset_ms >= c.max_speech_ms:
            events.append(SpeechEnded(now, self._onset_ms, self._last_speech_ms, "max_length"))
            self.reset()
        elif now - self._last_speech_ms >= c.end_silence_ms:
            events.append(SpeechEnded(now, self._onset_ms, self._last_speech_ms, "silence"))
            self.reset()
        return events

    def _track_noise(self, level: float) -> None:
        if level == float("-inf"):
            level = -90.0
        self._noise_frames += 1
        alpha = max(1.0 / self._noise_frames, 0.05)
        self._noise_db += alpha * (level - self._noise_db)
