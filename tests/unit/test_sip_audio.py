"""Test speech for the phones: espeak-ng renders at telephone rate, cached by content."""

import shutil
import wave

import numpy as np
import pytest

from gateway.sip.audio import AudioError, tts_wav, wav_level

needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="espeak-ng and sox are installed by scripts/bootstrap.sh")


@needs_tools
def test_speech_is_rendered_once_as_8khz_mono_16bit_and_reused(tmp_path):
    first = tts_wav("press one for billing", cache_dir=tmp_path)
    with wave.open(str(first)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    stamp = first.stat().st_mtime_ns
    again = tts_wav("press one for billing", cache_dir=tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp  # cache hit, not a re-render
    other = tts_wav("press two for cards", cache_dir=tmp_path)
    wide = tts_wav("press one for billing", cache_dir=tmp_path, rate=16000)
    assert len({first, other, wide}) == 3
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".wav")] == []


@needs_tools
def test_rendered_speech_is_loud_where_silence_is_not(tmp_path):
    speech = wav_level(tts_wav("your card has been blocked", cache_dir=tmp_path))
    assert speech.duration_s > 1 and not speech.silent and speech.rms_dbfs > -30
    quiet = tmp_path / "quiet.wav"
    with wave.open(str(quiet), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        noise = np.random.default_rng(1).normal(0, 30, 8000).astype("<i2")  # line hiss
        w.writeframes(noise.tobytes())
    level = wav_level(quiet)
    assert level.silent and level.duration_s == 1.0 and level.rms_dbfs < -50


def test_bad_requests_are_refused_clearly(tmp_path):
    with pytest.raises(AudioError, match="empty"):
        tts_wav("   ", cache_dir=tmp_path)
    with pytest.raises(AudioError, match="8000 or 16000"):
        tts_wav("hello", rate=44100, cache_dir=tmp_path)
    (tmp_path / "x.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioError, match="not a PCM WAV"):
        wav_level(tmp_path / "x.wav")
