"""speech.vad: barge-in start, end after trailing silence, and what must not count as speech."""

from __future__ import annotations

import numpy as np
import pytest

from speech.audio import frames
from speech.vad import EndPointer, SpeechEnded, SpeechStarted, VadConfig, periodicity
from tests.speech.synth import add_noise, noise, speak


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vad-audio")


def run(pcm: np.ndarray, rate: int = 8000, config: VadConfig | None = None,
        frame_ms: int = 20) -> list:
    ep = EndPointer(rate, config)
    events = []
    for f in frames(pcm, rate, frame_ms):
        events += ep.process(f)
    return events


def vowel(seconds: float, rate: int = 8000, f0: float = 120.0, amp: float = 6000.0) -> np.ndarray:
    """A synthetic voiced sound: a glottal-like pulse train through two formant resonances."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    src = np.sign(np.sin(2 * np.pi * f0 * t)) * (np.sin(2 * np.pi * f0 * t) ** 8)
    out = np.zeros(n)
    for formant in (700.0, 1200.0):
        out += np.sin(2 * np.pi * formant * t) * (src + 0.2)
    out *= amp / np.max(np.abs(out))
    return np.rint(out).astype(np.int16)


def pad(*parts: np.ndarray | float, rate: int = 8000) -> np.ndarray:
    return np.concatenate([p if isinstance(p, np.ndarray) else np.zeros(int(p * rate), np.int16)
                           for p in parts])


def test_silence_is_never_speech():
    assert run(np.zeros(8000 * 5, np.int16)) == []


def test_synthetic_vowel_starts_and_ends():
    events = run(pad(0.5, vowel(1.0), 1.5))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    start, end = events
    assert 500 <= start.onset_ms <= 540 and start.at_ms <= start.onset_ms + 160
    assert 1480 <= end.end_ms <= 1540
    assert end.at_ms - end.end_ms == VadConfig().end_silence_ms and end.reason == "silence"


def test_end_of_speech_silence_is_configurable():
    a = run(pad(0.3, vowel(0.8), 2.0), config=VadConfig(end_silence_ms=400))[1]
    b = run(pad(0.3, vowel(0.8), 2.0), config=VadConfig(end_silence_ms=1200))[1]
    assert a.end_ms == b.end_ms
    assert (a.at_ms - a.end_ms, b.at_ms - b.end_ms) == (400, 1200)


def test_a_click_and_a_short_burst_are_not_speech():
    click = np.zeros(160, np.int16)
    click[5:15] = 30000
    assert run(pad(0.5, click, 0.5, vowel(0.06), 1.0)) == []


def test_min_speech_decides_how_short_an_utterance_may_be():
    short = pad(0.5, vowel(0.16), 1.0)
    assert run(short, config=VadConfig(min_speech_ms=200)) == []
    assert [type(e) for e in run(short, config=VadConfig(min_speech_ms=100))] == [SpeechStarted,
                                                                                 SpeechEnded]


def test_max_utterance_length_ends_a_monologue():
    events = run(pad(0.2, vowel(6.0), 0.5), config=VadConfig(max_speech_ms=3000))
    end = next(e for e in events if isinstance(e, SpeechEnded))
    assert end.reason == "max_length" and end.at_ms - end.onset_ms == 3000


@pytest.mark.parametrize("kind", ["whitenoise", "pinknoise", "brownnoise"])
@pytest.mark.parametrize("level", [0.02, 0.3])
def test_line_noise_is_not_speech(cache, kind, level):
    a = noise(cache, kind, seconds=4, level=level)
    assert run(a.pcm) == []


def test_mains_hum_is_not_speech(cache):
    assert run(noise(cache, "sine 50", level=0.5).pcm) == []


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_espeak_phrase_at_both_rates_and_all_frame_sizes(cache, rate, frame_ms):
    a = speak(cache, "I lost my credit card yesterday", rate=rate, lead_ms=600, tail_ms=1500)
    events = run(a.pcm, rate, frame_ms=frame_ms)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    start, end = events
    assert 550 <= start.onset_ms <= 700
    last_sound_ms = np.nonzero(np.abs(a.pcm) > 300)[0][-1] * 1000 // rate  # espeak pads its end
    assert abs(end.end_ms - last_sound_ms) <= 150


def test_pauses_between_words_shorter_than_the_end_silence_do_not_end_the_turn(cache):
    a = speak(cache, "my card", lead_ms=300).pcm
    a = a[:np.nonzero(np.abs(a) > 300)[0][-1]]  # espeak ends with its own silence
    b = speak(cache, "was stolen", lead_ms=0).pcm
    pcm = pad(a, 0.45, b, 1.5)
    events = run(pcm, config=VadConfig(end_silence_ms=700))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


@pytest.mark.parametrize("snr", [20, 10])
def test_speech_in_noise_still_starts_and_ends(cache, snr):
    clean = speak(cache, "I want to speak to a person", lead_ms=800, tail_ms=1500)
    events = run(add_noise(clean, snr).pcm)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[1].reason == "silence"


def test_noise_then_speech_starts_at_the_speech(cache):
    hiss = noise(cache, "pinknoise", seconds=2, level=0.05).pcm
    say = speak(cache, "operator please", lead_ms=0).pcm
    events = run(pad(hiss, say, 1.5))
    assert isinstance(events[0], SpeechStarted)
    assert 1900 <= events[0].onset_ms <= 2150


def test_periodicity_separates_voice_from_noise():
    rng = np.random.default_rng(1)
    assert periodicity(vowel(0.04), 8000) > 0.6
    assert periodicity(rng.normal(0, 3000, 320).astype(np.int16), 8000) < 0.35
    assert periodicity(np.zeros(320, np.int16), 8000) == 0.0


def test_bad_configuration_and_frames_are_refused():
    with pytest.raises(ValueError, match="aggressiveness"):
        VadConfig(aggressiveness=4)
    with pytest.raises(ValueError, match="min_speech_ms"):
        VadConfig(min_speech_ms=400, start_window_ms=300)
    with pytest.raises(ValueError, match="10, 20 or 30 ms"):
        EndPointer(8000).process(np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="8000 or 16000"):
        EndPointer(44100)
