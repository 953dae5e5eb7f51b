"""Embedded English recogniser: pocketsphinx 5, the flow's grammar as an FSG, and rejection.

Why a grammar: the wheel's ``en-us`` model with its general language model turns telephone
speech into nonsense; constrained to the flow's phrases and keywords (an FSG built here, one
alternative per phrase or keyword) it decodes them at a real-time factor of a few hundredths.

Why rejection, and how: a grammar always outputs *some* phrase, so "what's the weather
tomorrow" would be routed to a queue. The confidence is an acoustic likelihood ratio:
pocketsphinx scores each frame against the best-scoring senone of that frame, so a word's
acoustic score divided by its frames is the log-ratio between "this word" and "the best sound at
every instant, whatever the words". It is near zero when the audio is the word and strongly
negative when the grammar forced it. The confidence is a logistic of the *unweighted* mean of
that ratio over the recognised words (centre -4.0 nats/frame = 0.5, 0.5 nats per unit), fitted
on ``python -m bench.asr``; the flow's threshold then rejects. A path that never reached the
grammar's final state (pocketsphinx returns the best partial path) has confidence 0.

Measured, and rejected (bench set: 8 espeak-ng voices, 3 speeds, clean/white 20 dB/pink 10 dB,
8 kHz mu-law):

- a garbage loop inside the grammar (``phrase | [garbage] keyword [garbage] | garbage``) made
  of one-phone words, or of 40 short English words: RTF 17.5 and 5.9 (one-phone words explode
  into every cross-word triphone context), and the loop swallowed every utterance, in-grammar
  ones included, at every penalty tried (``python -m bench.asr --compare-rejection``
  re-measures it; the ``garbage`` option keeps the loop available for that);
- pocketsphinx's own posterior ``hyp().prob`` (about 0.3 for right and wrong phrases alike
  under an FSG) and the ``allphone`` search (no usable scores through the Python API);
- a second pass with the general English LM as the "anything else" competitor: better
  separation, but RTF ~0.4, too slow for the latency target;
- an 8 kHz front end (``-samprate 8000 -upperf 3500``) with this 16 kHz model: nearly every
  phrase wrong, so telephone audio is upsampled to 16 kHz instead.

Cepstral mean: streaming must normalise the cepstra before the utterance is over, so it starts
from a prior mean for the band (telephone audio upsampled has an empty 4-8 kHz band, so its mean
differs from wideband speech; the band is read from the first audio). Streaming alone was 15-20
accuracy points worse than decoding the finished utterance with its own mean, so an utterance
whose streaming confidence is below ``rescore_below`` is decoded once more, whole, with its own
mean (``reinit_feat()`` first, else the mean is blended with the previous one) and the better of
the two kept: the extra pass costs a few tens of ms for the ~30 % of utterances that need it
(most of them out-of-grammar ones, which end up rejected anyway).
(Starting the streaming pass from the mean of its first 800 ms instead of the prior measured
within the noise of the prior, so the simpler prior stays.)

Line floor: a G.711 call of synthetic or gated audio has digitally silent pauses, which no
recording the model was trained on has; the silence model then absorbed whole one-word answers
("billing", "agent" decoded as silence) and the confidences swung with +-1 LSB of dither in the
test audio. A seeded white floor at -68 dBFS (a quiet real line) is added under narrowband audio:
on the flow's 22 phrases x 4 espeak-ng voices, accuracy at the 0.5 threshold went from 64 % to
83-85 % with wrong intents 1 % -> 0-1 % and out-of-grammar accepts 17 % -> 4-8 %. The plateau is
-63..-75 dBFS; at -56 dBFS and above it collapses (the floor is then heard as speech).

Resources: a ``Decoder`` with the full CMU dictionary costs ~29 MB, so decoders are created with
only the words the grammars need (~5 MB, ~12 ms each) and pooled: a session borrows one and
gives it back in ``final()``. The acoustic model files are memory-mapped and shared. pocketsphinx
holds the GIL while decoding; one core still serves dozens of calls (the bench measures it).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
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

GARBAGE_PREFIX = "ph_"
_FRAME_MS = 10  # pocketsphinx frame rate is 100/s
_BLOCK = 1600  # 100 ms of 16 kHz audio per decoder call
_FIRST_SAMPLES = 4 * _BLOCK  # the band (narrow/wide) is judged on the first 400 ms
_DITHER = np.random.default_rng(0).integers(-1, 2, 1 << 16).astype(np.int32)
# Short, frequent English words: a garbage model made of real words is far cheaper to search
# than a phone loop (one-phone words explode into every cross-word triphone context).
FILLER_WORDS = ["a", "the", "to", "of", "and", "i", "my", "me", "you", "it", "is", "was", "be", "have", "do", "can", "want", "need", "like", "would", "um", "uh", "yes", "no", "please", "hello", "hi", "about", "with", "for", "on", "in", "at", "this", "that", "what", "how", "call", "calling", "help", "today"]
# Start-of-utterance cepstral means (pocketsphinx's batch CMN over 30 espeak-ng utterances, six
# voice variants): telephone-band audio upsampled to 16 kHz has an empty 4-8 kHz band, so its
# mean is far from wideband speech's. The band of a session is read from its first audio.
CMN_PRIOR_NARROW = "49.2,27.5,-36.9,43.0,-28.9,-4.8,14.8,-34.1,11.4,-11.2,-3.4,9.6,-17.6"
CMN_PRIOR_WIDE = "55.3,1.8,-2.1,18.6,-20.4,2.8,-5.0,-11.9,-5.0,-8.4,7.0,-7.5,-0.8"
_SILENCE = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"}


@dataclass(frozen=True)
class PocketsphinxOptions:
    """Tunables; the defaults are the operating point chosen on the bench (see module doc)."""

    garbage_penalty: float = 1e-3  # FSG probability of each garbage phone (grammar words: 1)
    garbage_only_weight: float = 1.0  # weight of the "none of these" alternative
    confidence_centre: float = -4.0  # mean log-ratio (nats/frame) that maps to confidence 0.5
    confidence_scale: float = 0.5  # nats/frame per logistic unit
    garbage: str = "none"  # "none", or (bench comparisons only) "words" / "phones" loops
    rescore_below: float = 0.5  # re-decode with whole-utterance CMN when streaming is less sure

    beam: float = 1e-48
    dither: bool = True  # +-1 LSB noise on wideband audio (all-zero frames upset the front end)
    line_floor_dbfs: float | None = -68.0  # seeded white noise under narrowband audio, see doc
    line_floor_hz: float = 0.0  # the floor's lowest frequency (0: white over the whole band)
    decoder_config: tuple[tuple[str, object], ...] = ()  # extra pocketsphinx options
    cmn_prior_narrow: str | None = None
    loglevel: str = "FATAL"


def _default_model() -> tuple[Path, Path]:
    import pocketsphinx

    return (Path(pocketsphinx.get_model_path("en-us/en-us")),
            Path(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")))


class _Dictionary:
    """Pronunciations looked up in a CMU-format dictionary, read once per file."""

    _cache: ClassVar[dict[Path, _Dictionary]] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.prons: dict[str, list[str]] = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2:
                    continue
                word = parts[0]
                base = word.split("(", 1)[0]
                self.prons.setdefault(base, []).append(" ".join(parts[1:]))
        self.phones = sorted({p for prons in self.prons.values() for pr in prons for p in pr.split()})

    @classmethod
    def load(cls, path: Path) -> _Dictionary:
        with cls._lock:
            if path not in cls._cache:
                cls._cache[path] = cls(path)
            return cls._cache[path]


@dataclass(frozen=True)
class _CompiledGrammar:
    key: str
    final_state: int
    transitions: tuple[tuple, ...]  # (from, to, prob[, word]) for Decoder.create_fsg
    words: dict[str, list[str]]  # word -> pronunciations a decoder must know
    sentences: frozenset[str]  # every complete path (phrase or keyword)


class PocketsphinxRecogniser(Recogniser):
    """English (``en-us`` wheel model by default); see the module docstring for the method."""

    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, model_dir: Path | None = None, dictionary: Path | None = None,
                 language: str = "en", options: PocketsphinxOptions | None = None) -> None:
        default_model, default_dict = _default_model()
        self.model_dir = Path(model_dir or default_model)
        self.dictionary_path = Path(dictionary or default_dict)
        if not (self.model_dir / "mdef").is_file():
            raise RecogniserError(f"{self.model_dir}: not a pocketsphinx acoustic model (no mdef)")
        if not self.dictionary_path.is_file():
            raise RecogniserError(f"{self.dictionary_path}: pronunciation dictionary not found")
        self.language = language
        self.options = options or PocketsphinxOptions()
        self._dict = _Dictionary.load(self.dictionary_path)
        if self.options.garbage == "phones":
            self._garbage = {f"{GARBAGE_PREFIX}{p.lower()}": [p] for p in self._dict.phones}
        elif self.options.garbage == "words":
            self._garbage = {f"{GARBAGE_PREFIX}{w}": self._dict.prons[w] for w in FILLER_WORDS
                             if w in self._dict.prons}
        else:
            self._garbage = {}
        self._grammars: dict[str, _CompiledGrammar] = {}
        self._idle: list[_PooledDecoder] = []
        self._lock = threading.Lock()
        self.decoders_created = 0

    # -- grammar -----------------------------------------------------------------------------

    def check_grammar(self, grammar: Grammar) -> None:
        self._compile(grammar)

    def _compile(self, grammar: Grammar) -> _CompiledGrammar:
        with self._lock:
            cached = self._grammars.get(grammar.key)
        if cached:
            return cached
        missing: dict[str, list[str]] = {}
        words: dict[str, list[str]] = {}
        phrase_alts: list[str] = []
        keyword_alts: list[str] = []
        for intent in grammar.intents:
            for kind, items in (("phrase", intent.phrases), ("keyword", intent.keywords)):
                for text in items:
                    toks = text.split()
                    if not toks:
                        continue
                    for t in toks:
                        prons = self._dict.prons.get(t)
                        if prons is None:
                            missing.setdefault(t, []).append(f"{intent.name} {kind} {text!r}")
                        else:
                            words[t] = prons
                    (phrase_alts if kind == "phrase" else keyword_alts).append(" ".join(toks))
        if missing:
            detail = "; ".join(f"{w!r} (in {', '.join(where)})" for w, where in missing.items())
            raise RecogniserError(
                f"pocketsphinx has no pronunciation for {len(missing)} word(s) in "
                f"{self.dictionary_path.name}: {detail}")
        if not phrase_alts and not keyword_alts:
            raise RecogniserError("the grammar has no phrases or keywords")
        phrase_alts = list(dict.fromkeys(phrase_alts))
        # A keyword that is also a whole phrase is one sentence, not two parallel arcs: duplicate
        # arcs split the path score between them and a one-word answer came out empty.
        keyword_alts = [k for k in dict.fromkeys(keyword_alts) if k not in phrase_alts]
        transitions, final = self._fsg(phrase_alts, keyword_alts)
        compiled = _CompiledGrammar(grammar.key, final, tuple(transitions),
                                    {**words, **self._garbage},
                                    frozenset(phrase_alts) | frozenset(keyword_alts))
        with self._lock:
            self._grammars[grammar.key] = compiled
        return compiled

    def _fsg(self, phrases: list[str], keywords: list[str]) -> tuple[list[tuple], int]:
        """utterance = phrase | [garbage] keyword [garbage] | garbage, as FSG transitions.

        Phrase and keyword alternatives share probability 1 (the grammar is a classifier, not a
        language model: a longer list must not make each phrase less likely); each garbage phone
        costs ``garbage_penalty``, so the garbage path wins only where the grammar fits badly.
        """
        o = self.options
        t: list[tuple] = []
        n = 2  # 0 start, 1 final
        final = 1

        def chain(src: int, dst: int, toks: list[str], prob: float) -> None:
            nonlocal n
            cur = src
            for i, tok in enumerate(toks):
                nxt = dst if i == len(toks) - 1 else n
                if nxt == n:
                    n += 1
                t.append((cur, nxt, prob if i == 0 else 1.0, tok))
                cur = nxt

        def garbage_loop(src: int, dst: int, min_one: bool) -> None:
            """src -(phone)+-> dst, or src -(phone)*-> dst when not min_one."""
            nonlocal n
            loop = n
            n += 1
            for g in self._garbage:
                t.append((src, loop, o.garbage_penalty, g))
                t.append((loop, loop, o.garbage_penalty, g))
            t.append((loop, dst, 1.0))
            if not min_one:
                t.append((src, dst, 1.0))

        for p in phrases:
            chain(0, final, p.split(), 1.0)
        if keywords and not self._garbage:
            for k in keywords:
                chain(0, final, k.split(), 1.0)
        elif keywords:
            k_in, k_out = n, n + 1
            n += 2
            garbage_loop(0, k_in, min_one=False)
            for k in keywords:
                chain(k_in, k_out, k.split(), 1.0)
            garbage_loop(k_out, final, min_one=False)
        if self._garbage:
            g_in = n
            n += 1
            t.append((0, g_in, o.garbage_only_weight))
            garbage_loop(g_in, final, min_one=True)
        return t, final

    # -- decoders ----------------------------------------------------------------------------

    def _new_decoder(self) -> _PooledDecoder:
        from pocketsphinx import Decoder

        empty = self._empty_dict()
        try:
            d = Decoder(hmm=str(self.model_dir), dict=str(empty), lm=None,
                        beam=self.options.beam, dither=False,
                        loglevel=self.options.loglevel, **dict(self.options.decoder_config))
        except RuntimeError as exc:
            raise RecogniserError(f"pocketsphinx could not load {self.model_dir}: {exc}") from exc
        self.decoders_created += 1
        return _PooledDecoder(d)

    def _empty_dict(self) -> Path:
        import tempfile

        path = Path(tempfile.gettempdir()) / "centralino-pocketsphinx-seed.dict"
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text("sil SIL\n")
            tmp.replace(path)
        return path

    def _borrow(self, compiled: _CompiledGrammar) -> _PooledDecoder:
        with self._lock:
            pooled = next((p for p in self._idle if compiled.key in p.searches), None)
            if pooled is None and self._idle:
                pooled = self._idle[-1]
            if pooled is not None:
                self._idle.remove(pooled)
        if pooled is None:
            pooled = self._new_decoder()
        pooled.load(compiled)
        return pooled

    def _give_back(self, pooled: _PooledDecoder) -> None:
        with self._lock:
            self._idle.append(pooled)

    def session(self, grammar: Grammar) -> PocketsphinxSession:
        compiled = self._compile(grammar)
        return PocketsphinxSession(self, self._borrow(compiled), compiled)


class _PooledDecoder:
    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.searches: set[str] = set()
        self.words: set[str] = set()

    def load(self, compiled: _CompiledGrammar) -> None:
        if compiled.key not in self.searches:
            new = [(w, p) for w, prons in compiled.words.items() if w not in self.words
                   for p in prons]
            seen: dict[str, int] = {}
            for i, (w, pron) in enumerate(new):
                n = seen.get(w, 0)
                seen[w] = n + 1
                self.decoder.add_word(w if n == 0 else f"{w}({n + 1})", pron, i == len(new) - 1)
            self.words.update(compiled.words)
            fsg = self.decoder.create_fsg(f"g{compiled.key}", 0, compiled.final_state,
                                          list(compiled.transitions))
            self.decoder.add_fsg(f"g{compiled.key}", fsg)
            self.searches.add(compiled.key)
        self.decoder.activate_search(f"g{compiled.key}")


class PocketsphinxSession(RecogniserSession):
    def __init__(self, owner: PocketsphinxRecogniser, pooled: _PooledDecoder,
                 compiled: _CompiledGrammar) -> None:
        self._owner = owner
        self._pooled: _PooledDecoder | None = pooled
        self._compiled = compiled
        self._samples = 0  # received
        self._sent = 0  # conditioned and handed to the decoder
        self._audio: list[bytes] = []  # conditioned audio, for the re-decode
        self._pending = np.zeros(0, np.int16)  # received, not yet sent
        self._narrow = True
        self._started = False

    def accept(self, pcm: np.ndarray) -> None:
        if self._pooled is None:
            raise RuntimeError("session already finished")
        if not len(pcm):
            return
        x = np.asarray(pcm, dtype=np.int16)
        self._pending = np.concatenate([self._pending, x])
        self._samples += len(x)
        if not self._started and len(self._pending) >= _FIRST_SAMPLES:
            self._start(self._pending)
        if self._started:
            self._send(final=False)

    def _condition(self, x: np.ndarray) -> np.ndarray:
        o = self._owner.options
        idx = (np.arange(len(x)) + self._sent) % len(_DITHER)  # by position: any chunking
        if self._narrow and o.line_floor_dbfs is not None:
            y = x.astype(np.float64) + _floor(o.line_floor_dbfs, o.line_floor_hz)[idx]
            return np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        if o.dither:
            # pocketsphinx's own dither draws from one process-wide generator, so concurrent
            # calls would change each other's results; this one belongs to the session.
            return np.clip(x.astype(np.int32) + _DITHER[idx], -32768, 32767).astype(np.int16)
        return x

    def _send(self, final: bool) -> None:
        """Decode in fixed 100 ms blocks whatever size the audio came in: pocketsphinx's
        results depend slightly on how a stream is cut into calls, and the same call must get
        the same answer from the CLI, the bench and the IVR's batched feed."""
        n = len(self._pending) if final else len(self._pending) // _BLOCK * _BLOCK
        for i in range(0, n, _BLOCK):
            data = self._condition(self._pending[i:min(i + _BLOCK, n)]).astype("<i2").tobytes()
            self._sent += len(data) // 2
            self._audio.append(data)
            self._pooled.decoder.process_raw(data, False, False)
        self._pending = self._pending[n:]

    def _start(self, first: np.ndarray) -> None:
        d = self._pooled.decoder
        d.reinit_feat()  # a fresh front end: nothing carried over from the previous call
        o = self._owner.options
        self._narrow = not _is_wideband(first)
        d.set_cmn((o.cmn_prior_narrow or CMN_PRIOR_NARROW) if self._narrow else CMN_PRIOR_WIDE)
        d.start_utt()
        self._started = True

    def final(self) -> Hypothesis:
        if self._pooled is None:
            raise RuntimeError("session already finished")
        d = self._pooled.decoder
        o = self._owner.options
        try:
            if not self._started:
                if not len(self._pending):
                    return Hypothesis("", 0.0, engine="pocketsphinx", details={"audio_ms": 0})
                self._start(self._pending)  # shorter than the first block
            self._send(final=True)
            d.end_utt()
            self._started = False
            best = self._hypothesis(d)
            if best.confidence < o.rescore_below:
                # Streaming normalised the cepstra with a mean guessed before the caller spoke;
                # a bad guess (an unusual line or voice) can lose a phrase that was said.
                self._redecode_with_own_mean(d)
                again = self._hypothesis(d, rescored=True)
                if again.confidence > best.confidence:
                    best = again
        finally:
            self.close()
        return best

    def close(self) -> None:
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            if self._started:
                try:
                    pooled.decoder.end_utt()
                except RuntimeError:
                    pass
                self._started = False
            self._owner._give_back(pooled)

    def _redecode_with_own_mean(self, d) -> None:
        """Decode the utterance again with its own cepstral mean. The mean comes from a
        feature-only whole-utterance pass (``reinit_feat()`` first, else it is blended with the
        previous mean); the search then runs in 100 ms chunks, because pocketsphinx holds the
        GIL during a call and one long call would stall every other thread (the event loop
        included) for the whole decode."""
        audio = b"".join(self._audio)
        d.reinit_feat()
        d.start_utt()
        d.process_raw(audio, True, True)
        d.end_utt()
        d.set_cmn(d.get_cmn(False))
        d.start_utt()
        step = 3200  # 100 ms of 16-bit 16 kHz
        for i in range(0, len(audio), step):
            d.process_raw(audio[i:i + step], False, False)
        d.end_utt()

    def _hypothesis(self, d, rescored: bool = False) -> Hypothesis:
        o = self._owner.options
        segs = list(d.seg()) if d.hyp() is not None else []
        words: list[Word] = []
        total_frames = 0
        total_score = 0.0
        garbage_frames = 0
        per_word: list[tuple[str, int, float]] = []
        for s in segs:
            base = s.word.split("(", 1)[0]
            if base in _SILENCE:
                continue
            frames = max(1, s.end_frame - s.start_frame + 1)
            ratio = _log(s.ascore) / frames
            filler = base.startswith(GARBAGE_PREFIX)
            if filler:
                garbage_frames += frames
            else:
                total_frames += frames
                total_score += ratio * frames
                per_word.append((base, frames, round(ratio, 3)))
            words.append(Word(base, _logistic(ratio, o), s.start_frame * _FRAME_MS,
                              (s.end_frame + 1) * _FRAME_MS, filler))
        grammar_words = [w for w in words if not w.filler]
        # Unweighted mean over words: a forced word is short as often as long, and weighting by
        # frames let long well-matched words hide it (measured: +10 points of accuracy at a 5 %
        # false-accept rate on the bench set against the frame-weighted mean).
        mean_ratio = (sum(r for _, _, r in per_word) / len(per_word)) if per_word \
            else float("-inf")
        confidence = _logistic(mean_ratio, o) if grammar_words else 0.0
        text = " ".join(w.text for w in grammar_words)
        # No final state reached: pocketsphinx returns the best partial path ("i want to
        # speak to a"); the audio did not fit any sentence, so it is not evidence of one.
        partial = bool(text) and self._owner.options.garbage == "none" and \
            text not in self._compiled.sentences
        if partial:
            confidence = 0.0
        # Collapse runs of garbage phones into one filler token for transcripts.
        merged: list[Word] = []
        for w in words:
            if w.filler and merged and merged[-1].filler:
                prev = merged[-1]
                merged[-1] = Word("…", min(prev.confidence, w.confidence), prev.start_ms,
                                  w.end_ms, True)
            else:
                merged.append(Word("…", w.confidence, w.start_ms, w.end_ms, True) if w.filler else w)
        return Hypothesis(
            text=text,
            confidence=confidence,
            words=tuple(merged),
            engine="pocketsphinx",
            details={"mean_log_ratio": mean_ratio if total_frames else None,
                     "grammar_frames": total_frames, "garbage_frames": garbage_frames,
                     "audio_ms": self._samples * 1000 // 16000, "rescored": rescored,
                     "partial": partial, "words": per_word},
        )


def _is_wideband(pcm: np.ndarray) -> bool:
    """More than 1 % of the energy above 4 kHz: real 16 kHz audio, not upsampled telephone."""
    x = np.asarray(pcm, dtype=np.float64)
    if len(x) < 256:
        return False
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    total = spec.sum()
    return bool(total > 0 and spec[len(spec) // 2:].sum() / total > 0.01)


_FLOORS: dict[tuple[float, float], np.ndarray] = {}


def _floor(dbfs: float, hz: float) -> np.ndarray:
    key = (dbfs, hz)
    if key not in _FLOORS:
        rng = np.random.default_rng(12345)
        n = rng.normal(0.0, 1.0, 1 << 16)
        spec = np.fft.rfft(n)
        f = np.fft.rfftfreq(len(n), 1 / 16000)
        spec[f < hz] = 0.0
        x = np.fft.irfft(spec, len(n))
        x *= 32768.0 * 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))
        _FLOORS[key] = x
    return _FLOORS[key]


def _log(x: float) -> float:
    # The Python API returns exp(score); long bad segments underflow to 0.0.
    return math.log(x) if x > 0 else -745.0


def _logistic(ratio: float, o: PocketsphinxOptions) -> float:
    if ratio == float("-inf"):
        return 0.0
    z = (ratio - o.confidence_centre) / o.confidence_scale
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
