"""speech.pipeline with the real pocketsphinx engine and the demo-en flow, on espeak-ng speech
sent through an 8 kHz G.711 mu-law channel: what the IVR would decide.

The phrases are the flow's own, said by espeak-ng's default voice; not every flow phrase is
recognised by every voice (``python -m bench.asr`` measures how many are, over 8 voices, 3
speeds and noise), so these tests use phrases this voice is recognised on.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.dialplan.flow import load_flow
from gateway.settings import REPO_DIALPLANS
from speech.audio import frames
from speech.intents import IntentSpec
from speech.pipeline import (
    AsyncSpeechPipeline,
    NoInput,
    PipelineConfig,
    Recognised,
    SpeechEnded,
    SpeechPipeline,
    SpeechStarted,
)
from speech.recognisers import RecogniserError, load_recogniser
from speech.recognisers.pocketsphinx_engine import PocketsphinxRecogniser
from tests.speech.synth import noise, silence, speak

CARD = "four five five six seven three seven five eight six eight nine nine eight five eight"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline-audio")


@pytest.fixture(scope="module")
def flow():
    return load_flow(REPO_DIALPLANS / "flows" / "demo-en.yaml")


@pytest.fixture(scope="module")
def pipeline(flow):
    return SpeechPipeline.from_flow(flow, engine="pocketsphinx")


@pytest.mark.parametrize("text,intent", [
    ("I have a question about my invoice", "billing"),
    ("I lost my card", "lost_card"),
    ("my internet is not working", "tech_support"),
    ("a human please", "agent"),
])
def test_the_four_demo_intents_are_recognised(cache, pipeline, text, intent):
    audio = speak(cache, text)  # espeak-ng -> 8 kHz -> mu-law -> back
    r = pipeline.decode_pcm(audio.pcm, audio.sample_rate)
    assert r.intent == intent, r
    assert r.confidence >= pipeline.config.confidence_threshold
    assert r.engine == "pocketsphinx" and r.language == "en" and r.end_reason == "silence"
    assert r.transcript == text.lower()


def test_16k_input_of_a_telephone_call_gives_the_same_intent(cache, pipeline):
    audio = speak(cache, "my card was stolen", rate=16000)
    assert pipeline.decode_pcm(audio.pcm, 16000).intent == "lost_card"


@pytest.mark.parametrize("text", ["what's the weather tomorrow",
                                  "can you book me a table for two at eight"])
def test_out_of_grammar_speech_gives_no_intent(cache, pipeline, text):
    audio = speak(cache, text)
    r = pipeline.decode_pcm(audio.pcm, audio.sample_rate)
    assert r.intent is None, r
    assert r.reason in ("low_confidence", "no_match", "empty")


def test_silence_gives_no_intent_and_says_no_input(pipeline):
    r = pipeline.decode_pcm(silence(3.0).pcm, 8000)
    assert (r.intent, r.reason, r.transcript) == (None, "no_input", "")


@pytest.mark.parametrize("kind", ["whitenoise", "pinknoise"])
def test_line_noise_gives_no_intent(cache, pipeline, kind):
    a = noise(cache, kind, seconds=3, level=0.3)
    r = pipeline.decode_pcm(a.pcm, 8000)
    assert r.intent is None and r.reason == "no_input"


def test_streaming_events_come_in_order_with_the_result_soon_after_the_end(cache, pipeline):
    audio = speak(cache, "a question about my bill", lead_ms=500)
    listener = pipeline.listen(8000)
    events = []
    for f in frames(np.concatenate([audio.pcm, silence(1.5).pcm]), 8000, 20):
        events += listener.feed(f)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, Recognised]
    started, ended, recognised = events
    assert 400 <= started.onset_ms <= 650
    assert ended.at_ms - ended.end_ms == 700  # the flow's end_of_speech_ms
    assert recognised.result.intent == "billing"
    assert recognised.result.latency_ms >= 0.0
    assert listener.feed(np.zeros(160, np.int16)) == []  # the turn is over


def test_no_input_timeout_ends_a_silent_turn(flow):
    p = SpeechPipeline.from_flow(flow)
    listener = p.listen(8000)
    events = []
    for f in frames(silence(6.0).pcm, 8000, 20):
        events += listener.feed(f)
    assert len(events) == 1 and isinstance(events[0], NoInput)
    assert events[0].at_ms == int(flow.recognition.no_input_timeout_s * 1000)
    assert events[0].result.reason == "no_input" and events[0].result.intent is None


def test_without_the_no_input_timer_a_turn_waits_for_speech_however_long(cache, flow):
    """The IVR listens from the first frame of its prompt (barge-in) and times no-input from
    the end of the prompt itself, so the pipeline must not give up on its own."""
    p = SpeechPipeline.from_flow(flow, no_input_timer=False)
    assert p.config.no_input_timeout_ms is None
    assert p.config == PipelineConfig.from_flow(flow, no_input_timer=False)
    assert PipelineConfig.from_flow(flow).no_input_timeout_ms == 5000
    listener = p.listen(8000)
    events = []
    for f in frames(silence(7.0).pcm, 8000, 20):  # longer than the flow's 5 s timeout
        events += listener.feed(f)
    assert events == []
    for f in frames(np.concatenate([speak(cache, "operator").pcm, silence(1.0).pcm]), 8000, 20):
        events += listener.feed(f)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, Recognised]
    assert events[-1].result.intent == "agent"


def test_frames_may_arrive_in_any_size(cache, pipeline):
    audio = speak(cache, "I forgot my password", tail_ms=1200)
    listener = pipeline.listen(8000)
    events = []
    for i in range(0, len(audio.pcm), 173):  # not a whole number of frames
        events += listener.feed(audio.pcm[i:i + 173].tobytes())
    assert events[-1].result.intent == "tech_support"


def test_card_numbers_are_masked_in_transcripts(cache):
    specs = (IntentSpec("payment", (f"my card number is {CARD}",)),)
    p = SpeechPipeline.from_specs(specs)
    audio = speak(cache, f"my card number is {CARD}", speed=175)
    r = p.decode_pcm(audio.pcm, 8000)
    assert "four five five six" not in r.transcript
    assert r.transcript.endswith("nine eight five eight") and r.transcript.count("*") == 12


def test_dtmf_gives_the_flow_intent(pipeline):
    r = pipeline.dtmf("3")
    assert (r.intent, r.confidence, r.engine, r.reason) == ("tech_support", 1.0, "dtmf", "dtmf")
    assert pipeline.dtmf("9").intent is None


def test_recogniser_is_loaded_once_per_process_and_decoders_are_reused(cache, pipeline):
    assert load_recogniser("pocketsphinx", "en") is pipeline.recogniser
    rec = pipeline.recogniser
    before = rec.decoders_created
    audio = speak(cache, "operator")
    for _ in range(3):
        pipeline.decode_pcm(audio.pcm, 8000)
    assert rec.decoders_created == before  # sequential turns share one pooled decoder


def test_unknown_words_are_reported_when_the_pipeline_is_built():
    specs = (IntentSpec("x", ("talk to zorblaxian support",), ("qwfpgj",)),)
    with pytest.raises(RecogniserError) as err:
        SpeechPipeline(PocketsphinxRecogniser(), specs)
    assert "'zorblaxian'" in str(err.value) and "'qwfpgj'" in str(err.value)


def test_pocketsphinx_refuses_other_languages():
    with pytest.raises(RecogniserError, match="English model only"):
        load_recogniser("pocketsphinx", "it")


async def test_async_facade_barge_in_then_result(cache, flow):
    p = await AsyncSpeechPipeline.from_flow(flow)
    audio = speak(cache, "someone stole my wallet", lead_ms=400)
    turn = p.listen(8000)
    seen = []
    for f in frames(np.concatenate([audio.pcm, silence(1.2).pcm]), 8000, 20):
        seen += [type(e) for e in turn.feed(f)]  # plain call, as from an RTP callback
        await asyncio.sleep(0)
    assert seen == [SpeechStarted, SpeechEnded]
    result = await asyncio.wait_for(turn.result(), 10)
    assert result.intent == "lost_card" and result.latency_ms >= 0


async def test_async_many_calls_at_once_each_get_their_own_answer(cache, flow):
    p = await AsyncSpeechPipeline.from_flow(flow)
    said = {"billing": "i was charged twice", "lost_card": "my card was stolen",
            "tech_support": "technical support", "agent": "a human please"}
    clips = {k: np.concatenate([speak(cache, v).pcm, silence(1.0).pcm]) for k, v in said.items()}
    turns = {k: p.listen(8000) for k in said}
    n = max(len(c) for c in clips.values())
    for i in range(0, n, 160):
        for k, t in turns.items():
            chunk = clips[k][i:i + 160]
            if len(chunk):
                t.feed(chunk)
        await asyncio.sleep(0)
    results = {k: await asyncio.wait_for(t.result(), 10) for k, t in turns.items()}
    assert {k: r.intent for k, r in results.items()} == {k: k for k in said}


async def test_async_hangup_mid_utterance_releases_the_decoder(cache, flow):
    p = await AsyncSpeechPipeline.from_flow(flow)
    rec = p.pipeline.recogniser
    audio = speak(cache, "my internet is not working")
    turn = p.listen(8000)
    for f in frames(audio.pcm[: len(audio.pcm) // 2], 8000, 20):
        turn.feed(f)
    await turn.aclose()
    assert turn.listener.state == "done"
    assert rec._idle, "the pooled decoder went back to the pool"


def test_pipeline_config_threshold_is_applied(cache):
    specs = (IntentSpec("agent", ("operator please",)),)
    strict = SpeechPipeline.from_specs(specs, confidence_threshold=0.999)
    audio = speak(cache, "operator please")
    r = strict.decode_pcm(audio.pcm, 8000)
    assert r.intent is None and r.reason == "low_confidence" and r.candidate == "agent"
    assert isinstance(strict.config, PipelineConfig)
