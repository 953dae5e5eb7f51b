"""IVR flows, ``dialplans/flows/*.yaml``: what the IVR asks, understands and where it routes.

A flow names its language, its prompts (a sound file, or text rendered once to audio with
espeak-ng), its intents (example phrases and keywords for speech, an optional DTMF digit, a
target queue) and its recognition policy (confidence threshold, when to confirm, retries,
timeouts, barge-in). :func:`check_flow` reports every problem with file and line;
:func:`load_flow` returns the typed :class:`Flow` the IVR runner and the speech engine use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gateway.dialplan.problems import ConfigError, Problem, Problems, display_path
from gateway.dialplan.schema import Strict, validate_model
from gateway.dialplan.site import NAME, Site
from gateway.dialplan.yamlsrc import Doc, load_doc

# Languages a flow may use: the espeak-ng voice that renders its text prompts.
LANGUAGES = {
    "en": "en-us", "en-US": "en-us", "en-GB": "en-gb", "it": "it", "it-IT": "it",
    "de": "de", "de-DE": "de", "fr": "fr", "fr-FR": "fr", "es": "es", "es-ES": "es",
    "pt": "pt", "pt-PT": "pt", "nl": "nl", "ko": "ko", "ko-KR": "ko",
}
# Languages each engine can recognise out of the box (vosk: any language with a model installed).
ENGINE_LANGUAGES = {"pocketsphinx": {"en"}}
REQUIRED_PROMPTS = ("welcome", "retry", "fallback")
PROMPT_FIELDS = re.compile(r"\{(\w+)\}")
PROMPT_FIELD_NAMES = {"label", "queue", "intent"}
DIGITS = set("0123456789*#")


class PromptModel(Strict):
    text: str | None = None
    file: str | None = None


class RecognitionModel(Strict):
    engine: Literal["pocketsphinx", "vosk"] | None = None
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0)
    confirm_below: float = Field(0.0, ge=0.0, le=1.0)  # 0: never ask "is that right?"
    no_input_timeout_s: float = Field(5.0, gt=0.5, le=30.0)
    max_speech_s: float = Field(10.0, ge=1.0, le=60.0)
    end_of_speech_ms: int = Field(700, ge=200, le=3000)
    max_retries: int = Field(2, ge=0, le=5)
    barge_in: bool = True
    dtmf_timeout_s: float = Field(3.0, gt=0.5, le=20.0)


class IntentModel(Strict):
    label: str | None = None
    queue: str
    dtmf: str | None = None
    phrases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @field_validator("dtmf", mode="before")
    @classmethod
    def _digit(cls, v: object) -> object:
        v = str(v) if isinstance(v, int) else v
        if v is not None and (len(str(v)) != 1 or str(v) not in DIGITS):
            raise ValueError(f"must be one key of 0-9, * or #, got {v!r}")
        return v


class FlowModel(Strict):
    flow: str
    language: str
    description: str | None = None
    prompts: dict[str, PromptModel]
    recognition: RecognitionModel = RecognitionModel()
    intents: dict[str, IntentModel]
    fallback_intent: str = "agent"


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    text: str | None
    file: Path | None  # resolved, exists (checked)


@dataclass(frozen=True, slots=True)
class Recognition:
    engine: str | None
    confidence_threshold: float
    confirm_below: float
    no_input_timeout_s: float
    max_speech_s: float
    end_of_speech_ms: int
    max_retries: int
    barge_in: bool
    dtmf_timeout_s: float


@dataclass(frozen=True, slots=True)
class IntentDef:
    name: str
    label: str
    queue: str
    dtmf: str | None
    phrases: tuple[str, ...]
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    language: str  # base language, e.g. "en"
    locale: str  # as written, e.g. "en-US"
    voice: str  # espeak-ng voice for text prompts
    path: Path
    engine: str | None  # None: settings.speech.engine
    prompts: dict[str, Prompt]
    recognition: Recognition
    intents: tuple[IntentDef, ...]
    fallback_intent: str

    def intent(self, name: str) -> IntentDef:
        return next(i for i in self.intents if i.name == name)

    def by_digit(self, digit: str) -> IntentDef | None:
        return next((i for i in self.intents if i.dtmf == digit), None)


def check_flow(path: Path, site: Site | None) -> tuple[Flow | None, list[Problem]]:
    """Every problem in one flow file; the :class:`Flow` when there are no errors.

    ``site`` gives the queue names; without one, queues cannot be checked and that is said.
    """
    doc, problems = load_doc(path, display_path(path))
    if doc is None:
        return None, problems
    probs = Problems(doc.file, list(problems))
    model = validate_model(FlowModel, doc, probs)
    if model is None:
        return None, probs.items
    flow = _semantics(model, doc, probs, path, site)
    return (flow if not probs.errors else None), probs.items


def load_flow(path: Path | str, site: Site | None = None) -> Flow:
    """The flow, or :class:`ConfigError` listing every error (file:line).

    Without ``site``, the site file of the configured dialplans dir is used for queue names.
    """
    path = Path(path)
    if site is None:
        site = _default_site()
    flow, problems = check_flow(path, site)
    if flow is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
    return flow


def _default_site() -> Site:
    from gateway.dialplan.site import load_site, site_path
    from gateway.settings import Settings

    return load_site(site_path(Settings().dialplans_path))


def _semantics(m: FlowModel, doc: Doc, probs: Problems, path: Path, site: Site | None) -> Flow:
    expected = path.stem
    if m.flow != expected:
        probs.add(doc.line(("flow",)), f"flow: name {m.flow!r} must match the file name {expected!r}")
    voice = LANGUAGES.get(m.language)
    base = m.language.split("-")[0]
    if voice is None:
        probs.add(doc.line(("language",)),
                  f"language: {m.language!r} is not supported; use one of {', '.join(sorted(LANGUAGES))}")
    engine = m.recognition.engine
    if engine in ENGINE_LANGUAGES and voice is not None and base not in ENGINE_LANGUAGES[engine]:
        probs.add(doc.line(("recognition", "engine")),
                  f"recognition.engine: {engine} ships only an English model; for {m.language!r} "
                  f"use engine: vosk with a model installed by `centralino speech models install`")
    r = m.recognition
    if r.confirm_below and r.confirm_below < r.confidence_threshold:
        probs.add(doc.line(("recognition", "confirm_below")),
                  f"recognition.confirm_below ({r.confirm_below}) must be 0 (never confirm) or at "
                  f"least confidence_threshold ({r.confidence_threshold})")

    prompts = {}
    needed = list(REQUIRED_PROMPTS) + (["confirm"] if r.confirm_below else [])
    for name in needed:
        if name not in m.prompts:
            probs.add(doc.line(("prompts",)), f"prompts: missing prompt {name!r}")
    for name, p in m.prompts.items():
        line = doc.key_line(("prompts", name))
        if not NAME.match(name):
            probs.add(line, f"prompt name {name!r}: use lower-case letters, digits and _")
        if (p.text is None) == (p.file is None):
            probs.add(line, f"prompt {name}: give exactly one of text or file")
            continue
        file = None
        if p.file is not None:
            file = (path.parent / p.file).resolve()
            if not file.is_file():
                probs.add(doc.line(("prompts", name, "file")),
                          f"prompt {name}: sound file {p.file!r} not found")
            elif file.suffix.lower() not in (".wav", ".ulaw", ".alaw", ".gsm", ".sln", ".g722"):
                probs.add(doc.line(("prompts", name, "file")),
                          f"prompt {name}: {file.suffix} is not a sound format Asterisk plays")
        if p.text is not None:
            if not p.text.strip():
                probs.add(doc.line(("prompts", name, "text")), f"prompt {name}: empty text")
            for f in PROMPT_FIELDS.findall(p.text):
                if f not in PROMPT_FIELD_NAMES:
                    probs.add(doc.line(("prompts", name, "text")),
                              f"prompt {name}: unknown field {{{f}}}; use {{label}}, {{queue}} or {{intent}}")
        prompts[name] = Prompt(name, p.text, file)

    intents = []
    digits: dict[str, str] = {}
    phrases: dict[str, str] = {}
    if not m.intents:
        probs.add(doc.line(("intents",)), "intents: at least one intent is needed")
    for name, i in m.intents.items():
        line = doc.key_line(("intents", name))
        if not NAME.match(name):
            probs.add(line, f"intent name {name!r}: use lower-case letters, digits and _")
        clean = tuple(" ".join(ph.split()) for ph in i.phrases)
        if not any(clean) and not any(k.strip() for k in i.keywords):
            probs.add(line, f"intent {name}: empty: give example phrases (and keywords) a caller may say")
        for n, ph in enumerate(clean):
            pline = doc.line(("intents", name, "phrases", n))
            if not ph:
                probs.add(pline, f"intent {name}: empty phrase")
                continue
            key = ph.lower()
            if key in phrases and phrases[key] != name:
                probs.add(pline, f"intent {name}: phrase {ph!r} is also an example of intent {phrases[key]}")
            phrases.setdefault(key, name)
        if site is not None and i.queue not in site.queues:
            probs.add(doc.line(("intents", name, "queue")),
                      f"intent {name}: unknown queue {i.queue!r}; the site has {', '.join(sorted(site.queues))}")
        if i.dtmf is not None:
            if i.dtmf in digits:
                probs.add(doc.line(("intents", name, "dtmf")),
                          f"intent {name}: duplicate digit {i.dtmf!r}, already used by intent {digits[i.dtmf]}")
            else:
                digits[i.dtmf] = name
        intents.append(IntentDef(name, i.label or name.replace("_", " "), i.queue, i.dtmf,
                                 tuple(p for p in clean if p),
                                 tuple(k.strip().lower() for k in i.keywords if k.strip())))
    if m.fallback_intent not in m.intents:
        probs.add(doc.line(("fallback_intent",)) if "fallback_intent" in (doc.data or {}) else 1,
                  f"fallback_intent: {m.fallback_intent!r} is not one of this flow's intents")
    if site is None:
        probs.add(1, "no site file: queue names were not checked", "warning")

    rec = Recognition(r.engine, r.confidence_threshold, r.confirm_below, r.no_input_timeout_s,
                      r.max_speech_s, r.end_of_speech_ms, r.max_retries, r.barge_in, r.dtmf_timeout_s)
    return Flow(m.flow, base, m.language, voice or "", path.resolve(), r.engine, prompts, rec,
                tuple(intents), m.fallback_intent)
