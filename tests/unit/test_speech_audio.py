"""speech.audio: WAV reading, 8k<->16k resampling, G.711, framing."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from speech.audio import (
    AudioFormatError,
    Resampler,
    alaw_decode,
    alaw_encode,
    frames,
    read_wav,
    resample,
    rms_dbfs,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)

SOX = shutil.which("sox")


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def level_db(x: np.ndarray) -> float:
    return rms_dbfs(x[200:-200])


# -- resampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", [300, 1000, 3000])
def test_upsampled_tone_matches_the_ideal_16k_tone(freq):
    up = resample(tone(freq, 8000), 8000, 16000)
    ideal = tone(freq, 16000).astype(float)
    assert len(up) == 16000
    assert np.max(np.abs(up[300:-300] - ideal[300:-300])) < 12  # of 10000 amplitude


def test_8k_to_16k_and_back_gives_the_input_back():
    x = tone(440, 8000) + tone(2500, 8000, amp=3000)
    back = resample(resample(x, 8000, 16000), 16000, 8000)
    assert len(back) == len(x)
    assert np.max(np.abs(back[100:-100].astype(int) - x[100:-100])) <= 2


@pytest.mark.parametrize("freq", [4300, 5000, 6000, 7000])
def test_downsampling_removes_what_would_alias(freq):
    x = tone(freq, 16000)
    assert level_db(resample(x, 16000, 8000)) - level_db(x) < -75


def test_telephone_band_passes_flat():
    for freq in (300, 1000, 3400):
        x = tone(freq, 16000)
        assert abs(level_db(resample(x, 16000, 8000)) - level_db(x)) < 0.1


def test_upsampling_leaves_no_image_above_4k():
    up = resample(tone(3000, 8000), 8000, 16000)[300:-300]
    spec = np.abs(np.fft.rfft(up * np.kaiser(len(up), 14)))
    f = np.fft.rfftfreq(len(up), 1 / 16000)
    image = spec[(f > 4900) & (f < 5100)].max()
    assert 20 * np.log10(image / spec.max()) < -80


@pytest.mark.parametrize("src,dst,chunk", [(8000, 16000, 160), (16000, 8000, 320),
                                           (16000, 8000, 333), (8000, 16000, 7)])
def test_streaming_resampler_equals_one_shot(src, dst, chunk):
    x = (tone(700, src) + tone(1900, src, amp=2000)).astype(np.int16)
    whole = Resampler(src, dst).process(x)
    r = Resampler(src, dst)
    pieces = np.concatenate([r.process(x[i:i + chunk]) for i in range(0, len(x), chunk)])
    assert np.array_equal(pieces, whole)


def test_resampler_refuses_other_rates():
    with pytest.raises(ValueError, match="8000 and 16000"):
        Resampler(44100, 16000)


# -- G.711 ---------------------------------------------------------------------------------------


def test_ulaw_known_codes():
    assert ulaw_encode(np.array([0], np.int16))[0] == 0xFF
    assert ulaw_decode(np.array([0xFF, 0x7F, 0x00, 0x80], np.uint8)).tolist() == [0, 0, -32124,
                                                                                  32124]


def test_alaw_known_codes():
    assert alaw_encode(np.array([0], np.int16))[0] == 0xD5
    assert alaw_decode(np.array([0xD5, 0x55, 0xAA, 0x2A], np.uint8)).tolist() == [8, -8, 32256,
                                                                                  -32256]


@pytest.mark.parametrize("encode,decode", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_is_identity_on_codes_and_bounded_on_samples(encode, decode):
    codes = np.arange(256, dtype=np.uint8)
    again = encode(decode(codes))
    # Every code decodes to a value that encodes back to itself, except mu-law's "negative
    # zero" 0x7F, which decodes to 0 and so comes back as the positive zero 0xFF.
    differs = codes[again != codes]
    assert set(differs.tolist()) <= {0x7F}
    x = np.arange(-32768, 32768, dtype=np.int16)
    err = np.abs(decode(encode(x)).astype(int) - x)
    # Logarithmic quantisation: error within half a step, a step being ~1/16 of the segment.
    assert np.all(err <= np.maximum(np.abs(x.astype(int)) / 16, 16) + 8)


@pytest.mark.skipif(SOX is None, reason="sox not installed")
def test_ulaw_agrees_with_sox(tmp_path):
    """Decoding is the standard table, so it matches sox exactly; sox's encoder rounds to the
    nearest level where the G.711 reference (ours, like audioop) truncates, so codes may differ
    by one step but never more."""
    pcm = np.arange(-32768, 32768, dtype=np.int16)  # every sample value
    src = tmp_path / "pcm.wav"
    write_wav(src, pcm, 8000)
    mu = tmp_path / "mu.wav"
    subprocess.run([SOX, "-V1", "-D", str(src), "-e", "mu-law", str(mu)], check=True)  # no dither
    sox_codes = np.frombuffer(_data_chunk(mu), np.uint8)
    assert np.array_equal(read_wav(mu).pcm, ulaw_decode(sox_codes))
    ours, theirs = ulaw_decode(ulaw_encode(pcm)).astype(int), ulaw_decode(sox_codes).astype(int)
    step = np.maximum(np.abs(pcm.astype(int)) // 16, 16) + 8
    assert np.all(np.abs(ours - theirs) <= 2 * step)
    assert np.mean(ours == theirs) > 0.99


def test_ulaw_and_alaw_encoders_match_the_g711_reference():
    audioop = pytest.importorskip("audioop")  # deprecated, gone in 3.13: a cross-check only
    x = np.arange(-32768, 32768, dtype=np.int16)
    raw = x.astype("<i2").tobytes()
    assert np.array_equal(ulaw_encode(x), np.frombuffer(audioop.lin2ulaw(raw, 2), np.uint8))
    assert np.array_equal(alaw_encode(x), np.frombuffer(audioop.lin2alaw(raw, 2), np.uint8))


def _data_chunk(path: Path) -> bytes:
    data = path.read_bytes()
    i = data.index(b"data")
    n = int.from_bytes(data[i + 4:i + 8], "little")
    return data[i + 8:i + 8 + n]


# -- WAV -----------------------------------------------------------------------------------------


def test_reads_8k_and_16k_pcm(tmp_path):
    for rate in (8000, 16000):
        p = tmp_path / f"x{rate}.wav"
        write_wav(p, tone(500, rate), rate)
        a = read_wav(p)
        assert a.sample_rate == rate and a.pcm.dtype == np.int16 and len(a.pcm) == rate
        assert a.duration_s == pytest.approx(1.0)


def _wav(path: Path, rate: int, channels: int, width: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x00" * (rate * channels * width // 10))
    return path


def test_stereo_is_refused_with_the_reason(tmp_path):
    with pytest.raises(AudioFormatError, match="2 channels.*mono"):
        read_wav(_wav(tmp_path / "st.wav", 8000, 2, 2))


def test_44k1_is_refused_with_the_reason(tmp_path):
    with pytest.raises(AudioFormatError, match="44100 Hz.*8000 and 16000"):
        read_wav(_wav(tmp_path / "cd.wav", 44100, 1, 2))


def test_8bit_linear_pcm_is_refused(tmp_path):
    with pytest.raises(AudioFormatError, match="8-bit PCM"):
        read_wav(_wav(tmp_path / "u8.wav", 8000, 1, 1))


def test_not_a_wav_and_missing_file(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"ID3\x03 not a wave file at all")
    with pytest.raises(AudioFormatError, match="not a WAV"):
        read_wav(junk)
    with pytest.raises(AudioFormatError, match="cannot read"):
        read_wav(tmp_path / "absent.wav")


@pytest.mark.skipif(SOX is None, reason="sox not installed")
def test_reads_g711_wav_and_refuses_it_at_16k(tmp_path):
    src = tmp_path / "p.wav"
    write_wav(src, tone(800, 8000), 8000)
    for enc in ("mu-law", "a-law"):
        out = tmp_path / f"{enc}.wav"
        subprocess.run([SOX, str(src), "-e", enc, str(out)], check=True)
        a = read_wav(out)
        assert a.sample_rate == 8000
        assert np.max(np.abs(a.pcm.astype(int) - tone(800, 8000))) < 400
    bad = tmp_path / "mu16.wav"
    subprocess.run([SOX, str(src), "-r", "16000", "-e", "mu-law", str(bad)], check=True)
    with pytest.raises(AudioFormatError, match="G.711.*8000 Hz only"):
        read_wav(bad)


# -- framing -------------------------------------------------------------------------------------


def test_frames_are_20ms_and_the_last_is_padded():
    x = np.arange(8000 + 50, dtype=np.int16)
    fs = list(frames(x, 8000, 20))
    assert len(fs) == 51 and all(len(f) == 160 for f in fs)
    assert fs[-1][:50].tolist() == x[-50:].tolist() and not fs[-1][50:].any()
    assert len(list(frames(x, 16000, 30, pad_last=False))) == len(x) // 480


def test_frame_length_must_be_one_webrtc_accepts():
    with pytest.raises(ValueError, match="10, 20 or 30"):
        list(frames(np.zeros(100, np.int16), 8000, 25))
