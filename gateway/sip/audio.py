"""Test and load audio: speech rendered with espeak-ng, and a quick look at recorded WAVs.

Why here and this small: test callers and load benches need a few spoken phrases at telephone
rate; the speech team's own audio code lives in ``speech/``. Renders are cached by a hash of
everything that shapes them, so a test suite pays for each phrase once per machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class AudioError(Exception):
    pass


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "centralino" / "tts"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AudioError(f"{name} is not installed (apt-get install {name})")
    return path


def tts_wav(text: str, *, voice: str = "en-us", rate: int = 8000, speed: int = 160,
            cache_dir: Path | None = None) -> Path:
    """``text`` spoken by espeak-ng as a mono 16-bit PCM WAV at ``rate`` Hz (cached).

    Blocking (two short subprocesses on a cache miss): from asyncio use :func:`tts_wav_async`.
    """
    if not text.strip():
        raise AudioError("nothing to say: the text is empty")
    if rate not in (8000, 16000):
        raise AudioError(f"rate must be 8000 or 16000 Hz for the phones, not {rate}")
    cache = cache_dir or default_cache_dir()
    key = hashlib.sha256(f"espeak-ng|{voice}|{speed}|{rate}|{text}".encode()).hexdigest()[:24]
    out = cache / f"{key}.wav"
    if out.exists():
        return out
    espeak, sox = _tool("espeak-ng"), _tool("sox")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        raw = Path(tmp) / "raw.wav"
        conv = Path(tmp) / "out.wav"
        for cmd in ([espeak, "-v", voice, "-s", str(speed), "-w", str(raw), "--", text],
                    [sox, "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
                     str(conv)]):
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise AudioError(f"{Path(cmd[0]).name} failed: {(r.stderr or r.stdout).strip()}")
        os.replace(conv, out)  # atomic: parallel renders of one phrase never see half a file
    return out


async def tts_wav_async(text: str, **kw: object) -> Path:
    return await asyncio.to_thread(tts_wav, text, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class WavLevel:
    rate: int
    duration_s: float
    rms_dbfs: float  # -inf for digital silence
    peak_dbfs: float
    active_s: float  # time in 20 ms frames louder than -40 dBFS: speech, not line noise

    @property
    def silent(self) -> bool:
        return self.active_s < 0.1


def wav_level(path: str | os.PathLike[str]) -> WavLevel:
    """How loud a 16-bit mono WAV is, to tell received speech from silence in tests."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise AudioError(f"{path}: expected 16-bit mono, got {8 * w.getsampwidth()}-bit "
                                 f"{w.getnchannels()} channel(s)")
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path}: not a PCM WAV file ({exc})") from None
    if pcm.size == 0:
        return WavLevel(rate, 0.0, float("-inf"), float("-inf"), 0.0)
    full = 32768.0

    def db(x: float) -> float:
        return 20 * np.log10(x / full) if x > 0 else float("-inf")

    frame = rate // 50
    n = pcm.size // frame
    frames = pcm[: n * frame].reshape(n, frame) if n else pcm.reshape(1, -1)
    frame_rms = np.sqrt(np.mean(frames ** 2, axis=1))
    active = int(np.count_nonzero(frame_rms > full * 10 ** (-40 / 20)))
    return WavLevel(rate, pcm.size / rate, db(float(np.sqrt(np.mean(pcm ** 2)))),
                    db(float(np.max(np.abs(pcm)))), active * frame / rate)
