"""Test speech made on the spot: espeak-ng voices through a telephone channel, and sox noise.

Nothing binary is committed: every WAV is generated from its text and cached under a directory
the caller gives (a pytest session tmp dir, or the bench's cache), keyed by all parameters.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from speech.audio import Audio, read_wav, resample, ulaw_decode, ulaw_encode

ESPEAK = shutil.which("espeak-ng")
SOX = shutil.which("sox")


def _key(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def speak(cache: Path, text: str, *, voice: str = "en-us", speed: int = 160,
          rate: int = 8000, telephone: bool = True, lead_ms: int = 300,
          tail_ms: int = 0) -> Audio:
    """espeak-ng ``text`` -> mono 16-bit at ``rate``. ``telephone``: through G.711 mu-law at
    8 kHz first (then, for rate 16000, back up: a narrowband call delivered at 16 kHz)."""
    if ESPEAK is None or SOX is None:
        raise RuntimeError("espeak-ng and sox are needed to make test speech")
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"say-{_key(text, voice, speed, rate, telephone, lead_ms, tail_ms)}.wav"
    if not out.exists():
        raw = out.with_suffix(".raw.wav")
        subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True,
                       capture_output=True)
        if telephone:
            subprocess.run([SOX, "-V1", "-R", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                            "-e", "signed-integer", str(out)], check=True)
            a = read_wav(out)
            pcm = ulaw_decode(ulaw_encode(a.pcm))  # the G.711 channel
            if rate == 16000:
                pcm = resample(pcm, 8000, 16000)
        else:
            subprocess.run([SOX, "-V1", "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16",
                            "-e", "signed-integer", str(out)], check=True)
            pcm = read_wav(out).pcm
        pcm = np.concatenate([np.zeros(rate * lead_ms // 1000, np.int16), pcm,
                              np.zeros(rate * tail_ms // 1000, np.int16)])
        _write(out, pcm, rate)
        raw.unlink(missing_ok=True)
    return read_wav(out)


def noise(cache: Path, kind: str, *, seconds: float = 3.0, level: float = 0.3,
          rate: int = 8000) -> Audio:
    """sox-synthesised ``whitenoise``/``pinknoise``/``brownnoise`` (or ``sine 425``)."""
    if SOX is None:
        raise RuntimeError("sox is needed to make test noise")
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"noise-{_key(kind, seconds, level, rate)}.wav"
    if not out.exists():
        subprocess.run([SOX, "-V1", "-R", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(out),
                        "synth", str(seconds), *kind.split(), "vol", str(level)], check=True)
    return read_wav(out)


def silence(seconds: float, rate: int = 8000) -> Audio:
    return Audio(np.zeros(int(seconds * rate), np.int16), rate)


def add_noise(audio: Audio, snr_db: float, *, seed: int = 0, kind: str = "white") -> Audio:
    """Gaussian white (or crude pink) noise at ``snr_db`` relative to the speech's own power
    (measured on samples above -50 dBFS, so leading silence does not lower it)."""
    x = audio.pcm.astype(np.float64)
    loud = x[np.abs(x) > 32768 * 10 ** (-50 / 20)]
    p = float(np.mean(loud ** 2)) if len(loud) else 1.0
    rng = np.random.default_rng(seed)
    n = rng.normal(0.0, 1.0, len(x))
    if kind == "pink":
        spec = np.fft.rfft(n)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        n = np.fft.irfft(spec, len(x))
    n *= np.sqrt(p / 10 ** (snr_db / 10) / np.mean(n ** 2))
    return Audio(np.clip(np.rint(x + n), -32768, 32767).astype(np.int16), audio.sample_rate)


def _write(path: Path, pcm: np.ndarray, rate: int) -> None:
    from speech.audio import write_wav

    tmp = path.with_suffix(".tmp.wav")
    write_wav(tmp, pcm, rate)
    tmp.replace(path)
