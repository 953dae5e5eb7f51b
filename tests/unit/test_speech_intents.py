"""speech.intents: from words to one intent, or to none."""

from __future__ import annotations

import pytest

from gateway.dialplan.flow import load_flow
from gateway.settings import REPO_DIALPLANS
from speech.intents import IntentMatcher, IntentSpec, grammar_for, normalise, specs_from_flow
from speech.recognisers.base import Hypothesis, Word

SPECS = (
    IntentSpec("billing", ("a question about my bill", "i was charged twice"),
               ("bill", "invoice", "refund"), dtmf="1"),
    IntentSpec("lost_card", ("i lost my card", "my card was stolen"), ("stolen", "card"), dtmf="2"),
    IntentSpec("agent", ("i want to speak to a person",), ("agent", "operator"), dtmf="0"),
)


def hyp(text: str, confidence: float = 0.9, word_conf: dict[str, float] | None = None) -> Hypothesis:
    words = tuple(Word(w, (word_conf or {}).get(w, confidence), i * 300, i * 300 + 250)
                  for i, w in enumerate(text.split()))
    return Hypothesis(text, confidence, words, "test")


def test_whole_phrase_gives_its_intent_with_the_utterance_confidence():
    m = IntentMatcher(SPECS, 0.5).match(hyp("i was charged twice", 0.8))
    assert (m.intent, m.reason, m.confidence) == ("billing", "phrase", 0.8)


def test_keyword_inside_other_words_uses_the_keyword_words_own_confidence():
    m = IntentMatcher(SPECS, 0.5).match(hyp("uh about my invoice please", 0.9,
                                            {"invoice": 0.7, "uh": 0.2}))
    assert (m.intent, m.reason, m.matched) == ("billing", "keyword", "invoice")
    assert m.confidence == pytest.approx(0.7)


def test_below_the_threshold_there_is_no_intent_but_the_candidate_is_kept():
    m = IntentMatcher(SPECS, 0.6).match(hyp("i lost my card", 0.55))
    assert m.intent is None and m.reason == "low_confidence" and m.candidate == "lost_card"
    assert IntentMatcher(SPECS, 0.5).match(hyp("i lost my card", 0.55)).intent == "lost_card"


def test_a_longer_match_wins_over_another_intents_keyword():
    # "card" is a lost_card keyword, but the whole billing phrase explains the utterance.
    specs = SPECS + (IntentSpec("cards_billing", ("a refund on my card",)),)
    m = IntentMatcher(specs).match(hyp("a refund on my card"))
    assert m.intent == "cards_billing"


def test_two_intents_keywords_of_equal_weight_are_ambiguous():
    m = IntentMatcher(SPECS).match(hyp("operator my invoice"))
    assert m.intent is None and m.reason == "ambiguous"


def test_no_words_and_unrelated_words_give_no_intent():
    assert IntentMatcher(SPECS).match(hyp("", 0.0)).reason == "empty"
    assert IntentMatcher(SPECS).match(hyp("what is the weather")).reason == "no_match"


def test_filler_words_are_ignored():
    words = (Word("…", 0.9, 0, 500, filler=True), Word("operator", 0.8, 500, 900))
    m = IntentMatcher(SPECS).match(Hypothesis("operator", 0.8, words, "test"))
    assert m.intent == "agent" and m.confidence == pytest.approx(0.8)


def test_dtmf_digit_gives_its_intent_and_unknown_digits_none():
    matcher = IntentMatcher(SPECS)
    assert matcher.from_dtmf("2").intent == "lost_card"
    assert matcher.from_dtmf("2").confidence == 1.0 and matcher.from_dtmf("2").reason == "dtmf"
    assert matcher.from_dtmf("7").intent is None


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unique"):
        IntentMatcher(SPECS + (IntentSpec("agent", ("hello",)),))
    with pytest.raises(ValueError, match="DTMF '1'"):
        IntentMatcher(SPECS + (IntentSpec("other", ("hello",), dtmf="1"),))
    with pytest.raises(ValueError, match="threshold"):
        IntentMatcher(SPECS, 1.5)


def test_normalise_keeps_apostrophes_and_drops_punctuation():
    assert normalise("  What's the WEATHER, tomorrow?! ") == "what's the weather tomorrow"
    assert normalise("L’app non funziona") == "l'app non funziona"
    assert normalise("카드를  잃어버렸어요.") == "카드를 잃어버렸어요"


def test_spell_lets_the_engine_split_words_its_own_way():
    specs = (IntentSpec("lost_card", ("카드를 잃어버렸어요",)),)
    split = {"카드를": "카드 를", "잃어버렸어요": "잃어버렸 어요"}
    matcher = IntentMatcher(specs, spell=lambda t: " ".join(split.get(w, w) for w in t.split()))
    assert matcher.match(hyp("카드 를 잃어버렸 어요")).intent == "lost_card"


def test_specs_and_grammar_from_the_demo_flow():
    flow = load_flow(REPO_DIALPLANS / "flows" / "demo-en.yaml")
    specs = specs_from_flow(flow)
    assert [s.name for s in specs] == ["billing", "lost_card", "tech_support", "agent"]
    assert {s.name: s.dtmf for s in specs} == {"billing": "1", "lost_card": "2",
                                               "tech_support": "3", "agent": "0"}
    grammar = grammar_for(specs, flow.language)
    assert grammar.language == "en"
    billing = grammar.intents[0]
    assert "a question about my bill" in billing.phrases and "invoice" in billing.keywords
    assert grammar.key == grammar_for(specs, "en").key != grammar_for(specs[:2], "en").key
