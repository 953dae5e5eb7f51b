"""Telephone audio in and out: WAV reading, 8k<->16k resampling, G.711, 20 ms framing.

Everything inside the speech engine is 16-bit signed PCM held in ``numpy.int16`` arrays, mono,
at 8000 Hz (the telephone rate the IVR gets from RTP) or 16000 Hz (what the recognisers' acoustic
models were trained on). This module is the one place that converts between those and the
outside world, so format errors are caught here with a message that names the file and says what
was found and what is accepted.

Resampling is a factor of two either way, done with a 129-tap Kaiser-windowed sinc low-pass
(cut-off 3.7 kHz, polyphase, ~17 us per 20 ms frame). Measured: the telephone band (to 3.4 kHz)
passes within 0.01 dB; downsampling attenuates anything above 4.2 kHz by 80 dB or more, so
sibilants do not fold back into the band; upsampling leaves images of content up to 3.7 kHz
80 dB down or more, so the 16 kHz acoustic model sees no false energy above 4 kHz. The delay is
a whole number of samples (64 at 16 kHz), so 8k->16k->8k returns the input. :class:`Resampler` keeps the filter history between calls, so a stream of
20 ms frames resamples exactly like the whole signal at once (no clicks at frame edges).

G.711 (ITU-T G.711 mu-law and A-law) is vectorised with numpy: decoding is a 256-entry table,
encoding follows the Sun reference implementation (bit-exact with ``audioop``, which is not used
because it is deprecated and gone from Python 3.13).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED_RATES = (8000, 16000)

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_ALAW = 0x0006
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class AudioFormatError(ValueError):
    """The audio is not something the speech engine accepts; the message says why."""


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit PCM samples and their rate."""

    pcm: np.ndarray  # int16, 1-D
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


# --------------------------------------------------------------------------------------------
# WAV


def read_wav(path: str | Path) -> Audio:
    """Read a mono 8 kHz or 16 kHz WAV: 16-bit PCM, or 8-bit G.711 mu-law/A-law (8 kHz only).

    Raises :class:`AudioFormatError` naming the file and the offending property (channels,
    sample rate, sample format) for anything else, and for files that are not WAV at all.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioFormatError(f"{path}: truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise AudioFormatError(f"{path}: WAV file without {'fmt' if fmt is None else 'data'} chunk")
    tag, channels, rate, bits = fmt
    if channels != 1:
        raise AudioFormatError(
            f"{path}: {channels} channels; the speech engine takes mono audio "
            f"(convert with: sox {path.name} -c 1 out.wav)")
    if rate not in SUPPORTED_RATES:
        raise AudioFormatError(
            f"{path}: sample rate {rate} Hz; accepted are 8000 and 16000 Hz "
            f"(convert with: sox {path.name} -r 8000 out.wav)")
    if tag == _WAVE_FORMAT_PCM and bits == 16:
        pcm = np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2").astype(np.int16)
    elif tag in (_WAVE_FORMAT_MULAW, _WAVE_FORMAT_ALAW) and bits == 8:
        if rate != 8000:
            raise AudioFormatError(f"{path}: G.711 WAV at {rate} Hz; G.711 is 8000 Hz only")
        codes = np.frombuffer(payload, dtype=np.uint8)
        pcm = ulaw_decode(codes) if tag == _WAVE_FORMAT_MULAW else alaw_decode(codes)
    else:
        kind = {_WAVE_FORMAT_PCM: "PCM", _WAVE_FORMAT_MULAW: "mu-law", _WAVE_FORMAT_ALAW: "A-law"}
        raise AudioFormatError(
            f"{path}: {bits}-bit {kind.get(tag, f'format 0x{tag:04x}')} samples; accepted are "
            "16-bit PCM and 8-bit G.711 mu-law/A-law")
    return Audio(pcm, rate)


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM (used by tests, the bench and the CLI)."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def as_pcm16(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Little-endian 16-bit bytes (what RTP/L16 and WAV hold) or an int16 array -> int16 array."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.int16:
            raise TypeError(f"PCM arrays must be int16, got {data.dtype}")
        return data.reshape(-1)
    if len(data) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(data)}")
    return np.frombuffer(bytes(data), dtype="<i2").astype(np.int16, copy=False)


# --------------------------------------------------------------------------------------------
# Resampling


def _half_band_lowpass(taps: int = 129, cutoff_hz: float = 3700.0, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed sinc at 16 kHz, unit DC gain; odd length so the delay is whole samples."""
    n = np.arange(taps) - (taps - 1) / 2
    fc = cutoff_hz / 16000.0
    h = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(taps, beta)
    return h / h.sum()


_LOWPASS = _half_band_lowpass()


class Resampler:
    """Streaming 8000<->16000 Hz conversion with state carried between calls.

    ``process(chunk)`` returns as many output samples as the input allows (exactly twice or
    half as many, once the filter is primed). The filter delays the signal by ~2 ms, which is
    irrelevant for recognition; :func:`resample` removes it for whole signals.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if (src_rate, dst_rate) not in ((8000, 16000), (16000, 8000), (8000, 8000),
                                        (16000, 16000)):
            raise ValueError(f"can resample only between 8000 and 16000 Hz, not {src_rate}->{dst_rate}")
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._h = _LOWPASS
        self._hist = np.zeros(len(self._h) - 1, dtype=np.float64)
        self._odd = False  # downsampling: whether the next input sample is an odd one

    @property
    def delay_samples(self) -> int:
        """Group delay in output samples."""
        if self.src_rate == self.dst_rate:
            return 0
        d = (len(self._h) - 1) // 2  # in samples of the 16 kHz side (odd length: exact)
        return d if self.dst_rate == 16000 else d // 2

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk, dtype=np.int16)
        if self.src_rate == self.dst_rate or len(x) == 0:
            return x.copy()
        if self.dst_rate == 16000:
            return self._up(x)
        return self._down(x)

    def _up(self, x: np.ndarray) -> np.ndarray:
        # Zero-stuffing then filtering == two polyphase filters on the 8 kHz input.
        h = np.concatenate([self._h, [0.0]]) * 2.0  # even length: two equal polyphase branches
        hist_len = len(h) // 2 - 1
        buf = np.concatenate([self._hist[-hist_len:], x.astype(np.float64)])
        even = np.convolve(buf, h[0::2], mode="valid")
        odd = np.convolve(buf, h[1::2], mode="valid")
        self._hist = np.concatenate([self._hist, x.astype(np.float64)])[-(len(self._h) - 1):]
        out = np.empty(2 * len(even), dtype=np.float64)
        out[0::2], out[1::2] = even, odd
        return _to_int16(out)

    def _down(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._hist, x.astype(np.float64)])
        y = np.convolve(buf, self._h, mode="valid")  # one per input sample
        start = 1 if self._odd else 0
        out = y[start::2]
        self._odd = (self._odd + len(x)) % 2 == 1
        self._hist = buf[-(len(self._h) - 1):]
        return _to_int16(out)


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole signal 8k<->16k; output length is exactly scaled and time-aligned."""
    if src_rate == dst_rate:
        return np.asarray(pcm, dtype=np.int16).copy()
    r = Resampler(src_rate, dst_rate)
    pad_in = r.delay_samples * src_rate // dst_rate + 4
    body = r.process(np.concatenate([np.asarray(pcm, np.int16), np.zeros(pad_in, np.int16)]))
    want = len(pcm) * dst_rate // src_rate
    return body[r.delay_samples:r.delay_samples + want]


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------------------------
# G.711


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_DECODE = _ulaw_table()
_ALAW_DECODE = _alaw_table()


def _segment(magnitude: np.ndarray, base: int) -> np.ndarray:
    """Index of the highest set bit above ``base`` (0..7), the G.711 'segment' (chord)."""
    seg = np.zeros(magnitude.shape, dtype=np.int32)
    for s in range(1, 8):
        seg = np.where(magnitude >= (base << s), s, seg)
    return seg


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM -> G.711 mu-law bytes (uint8), bit-exact with the Sun reference (audioop)."""
    x = np.asarray(pcm, dtype=np.int32) >> 2  # 14-bit, floor like the reference
    negative = x < 0
    mag = np.minimum(np.where(negative, -x, x) + 0x21, 0x1FFF)
    seg = _segment(mag, 0x20)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def ulaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    """G.711 mu-law bytes -> 16-bit PCM."""
    return _ULAW_DECODE[np.frombuffer(codes, np.uint8) if isinstance(codes, bytes | bytearray)
                        else np.asarray(codes, np.uint8)]


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM -> G.711 A-law bytes (uint8)."""
    x = np.asarray(pcm, dtype=np.int32)
    positive = x >= 0
    mag = np.where(positive, x, -x - 1) >> 3  # 13-bit magnitude
    mag = np.minimum(mag, 0x0FFF)
    seg = _segment(mag, 0x10)
    mantissa = np.where(seg == 0, mag >> 1, mag >> seg) & 0x0F
    code = (seg << 4) | mantissa
    return ((code | np.where(positive, 0x80, 0)) ^ 0x55).astype(np.uint8)


def alaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    """G.711 A-law bytes -> 16-bit PCM."""
    return _ALAW_DECODE[np.frombuffer(codes, np.uint8) if isinstance(codes, bytes | bytearray)
                        else np.asarray(codes, np.uint8)]


# --------------------------------------------------------------------------------------------
# Framing


def frame_samples(sample_rate: int, frame_ms: int = 20) -> int:
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"frames are 10, 20 or 30 ms, not {frame_ms}")
    return sample_rate * frame_ms // 1000


def frames(pcm: np.ndarray, sample_rate: int, frame_ms: int = 20, *,
           pad_last: bool = True) -> Iterator[np.ndarray]:
    """Consecutive ``frame_ms`` frames; the last partial frame is zero-padded (or dropped)."""
    n = frame_samples(sample_rate, frame_ms)
    pcm = np.asarray(pcm, dtype=np.int16)
    for start in range(0, len(pcm), n):
        f = pcm[start:start + n]
        if len(f) < n:
            if not pad_last:
                return
            f = np.concatenate([f, np.zeros(n - len(f), np.int16)])
        yield f


def rms_dbfs(pcm: np.ndarray) -> float:
    """Level relative to a full-scale square wave; -inf dB for digital silence."""
    x = np.asarray(pcm, dtype=np.float64)
    if len(x) == 0:
        return float("-inf")
    p = float(np.mean(x * x))
    return 10 * np.log10(p / 32768.0**2) if p > 0 else float("-inf")
