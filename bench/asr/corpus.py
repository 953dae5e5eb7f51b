"""The labelled test set: varied espeak-ng voices through a telephone channel, plus negatives.

Every item is made from text on first use and cached (``~/.cache/centralino/bench-asr`` by
default); nothing binary is in the repository. Categories:

- ``phrase``: each phrase of the flow, said by several voice variants at several speeds;
- ``carrier``: a keyword of the flow inside other words ("um, it's about my invoice") -- the
  grammar has no such sentence, so this measures how gracefully the engine misses or catches it;
- ``oog``: out-of-grammar requests (weather, pizza, bookings...): must give no intent;
- ``silence`` and ``noise`` (white/pink/brown at several levels, a 425 Hz tone): no intent.

Noise conditions (``snr``): clean, and white or pink noise added at 20 and 10 dB SNR, then
everything goes through G.711 mu-law at 8 kHz (the noise is on the line, before the codec).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.audio import Audio, ulaw_decode, ulaw_encode
from tests.speech.synth import add_noise, noise, silence, speak

EN_VOICES = ("en-us", "en-gb+f3", "en-us+m3", "en-gb-x-rp+f2", "en-029+m1", "en-us+f4",
             "en-gb-scotland+m7", "en-us-nyc+f1")
SPEEDS = (130, 160, 190)

EN_OOG = (
    "what's the weather tomorrow",
    "can you book me a table for two at eight",
    "i would like to order a large pizza",
    "how do i get to the train station",
    "what time does the museum open on sunday",
    "play some jazz music please",
    "tell me a joke",
    "is the swimming pool open today",
    "my daughter is starting school next week",
    "i'm looking for a good italian restaurant",
    "how much is a ticket to london",
    "the cat is sleeping on the sofa",
)
EN_CARRIER = (
    ("billing", "um, it's about my invoice"),
    ("billing", "yes hello, i need a refund please"),
    ("lost_card", "hi, somebody has stolen my card"),
    ("tech_support", "hello, the internet at home is down"),
    ("tech_support", "i have a problem with my password"),
    ("agent", "can i talk to an operator"),
)
KO_VOICES = ("ko", "ko+m3", "ko+f2")
KO_OOG = (
    "내일 날씨가 어때요", "피자 한 판 주문할게요", "오늘 점심 뭐 먹을까", "지하철역이 어디예요",
    "영화 보러 갈래요", "음악 좀 틀어 주세요", "안녕하세요 반갑습니다", "버스가 언제 와요",
)


@dataclass(frozen=True)
class Item:
    id: str
    category: str  # phrase | carrier | oog | silence | noise
    label: str | None  # the intent that should come out (None: no intent)
    text: str
    voice: str
    speed: int
    snr: str  # clean | white20 | pink10 ...
    audio: Audio


def _channel(a: Audio, snr: str, seed: int) -> Audio:
    if snr != "clean":
        kind, db = snr.rstrip("0123456789"), int(snr.lstrip("abcdefghijklmnopqrstuvwxyz"))
        a = add_noise(a, db, seed=seed, kind=kind)
    return Audio(ulaw_decode(ulaw_encode(a.pcm)), a.sample_rate)


def build(flow_intents: list[tuple[str, tuple[str, ...]]], cache: Path, *, language: str = "en",
          voices_per_phrase: int = 4, snrs: tuple[str, ...] = ("clean", "white20", "pink10"),
          quick: bool = False) -> list[Item]:
    """``flow_intents``: (intent, phrases) from the flow under test."""
    items: list[Item] = []
    voices = EN_VOICES if language == "en" else KO_VOICES
    oog = EN_OOG if language == "en" else KO_OOG
    carrier = EN_CARRIER if language == "en" else ()
    if quick:
        voices_per_phrase, snrs = min(2, voices_per_phrase), snrs[:2]
        oog, carrier = oog[:6], carrier[:3]
    cycle = itertools.cycle(itertools.product(voices, SPEEDS))
    seed = itertools.count(1)

    def add(category: str, label: str | None, text: str, n_voices: int) -> None:
        for _ in range(n_voices):
            voice, speed = next(cycle)
            clean = speak(cache, text, voice=voice, speed=speed, rate=8000, telephone=False,
                          lead_ms=400, tail_ms=200)
            for snr in snrs:
                s = next(seed)
                items.append(Item(f"{category}-{len(items)}", category, label, text, voice,
                                  speed, snr, _channel(clean, snr, s)))

    for intent, phrases in flow_intents:
        for p in phrases:
            add("phrase", intent, p, voices_per_phrase)
    for intent, text in carrier:
        add("carrier", intent, text, 2)
    for text in oog:
        add("oog", None, text, 3 if not quick else 2)
    items.append(Item("silence-0", "silence", None, "", "", 0, "clean", silence(3.0)))
    rng = np.random.default_rng(7)
    quiet = Audio((rng.normal(0, 30, 24000)).astype(np.int16), 8000)
    items.append(Item("silence-1", "silence", None, "line hiss -60 dBFS", "", 0, "clean",
                      _channel(quiet, "clean", 0)))
    for kind in ("whitenoise", "pinknoise", "brownnoise"):
        for level in ((0.02, 0.1, 0.5) if not quick else (0.1,)):
            a = noise(cache, kind, seconds=3, level=level)
            items.append(Item(f"noise-{kind}-{level}", "noise", None, f"{kind} {level}", "", 0,
                              "clean", _channel(a, "clean", 0)))
    items.append(Item("noise-tone", "noise", None, "425 Hz tone", "", 0, "clean",
                      _channel(noise(cache, "sine 425", seconds=3, level=0.3), "clean", 0)))
    return items
