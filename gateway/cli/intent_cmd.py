"""`centralino intent --audio WAV`: one recording through the IVR's own speech pipeline.

Same end-pointer, grammar, rejection and threshold as a live call (``speech.pipeline``), so what
this prints is what the IVR would have decided. Output: one JSON object with ``intent`` (null
when no intent), ``confidence``, ``transcript`` (card numbers masked), ``engine``, ``latency_ms``
(end of speech -> result); ``--details`` adds the reason and timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.settings import Settings


def _flow_path(settings: Settings, flow: str | None) -> Path:
    if flow is None:
        return settings.flows_path / f"{settings.speech.default_flow}.yaml"
    p = Path(flow)
    if p.exists() or p.suffix:
        return p
    return settings.flows_path / f"{flow}.yaml"  # a flow name


@click.command(name="intent")
@click.option("--audio", "audio", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Mono WAV, 8000 or 16000 Hz, 16-bit PCM (or 8-bit G.711 at 8000 Hz).")
@click.option("--flow", "flow", default=None,
              help="Flow file or name (default: settings.speech.default_flow, demo-en).")
@click.option("--engine", "engine", type=click.Choice(["pocketsphinx", "vosk"]), default=None,
              help="Override the flow's engine.")
@click.option("--details", is_flag=True, help="Also print reason, candidate, language, speech_ms.")
@click.pass_obj
def intent(settings: Settings, audio: Path, flow: str | None, engine: str | None,
           details: bool) -> None:
    """Recognise the caller's intent in a WAV recording; print one JSON object."""
    from gateway.dialplan.flow import load_flow
    from gateway.dialplan.problems import ConfigError
    from speech.audio import AudioFormatError, read_wav
    from speech.pipeline import SpeechPipeline
    from speech.recognisers import RecogniserError

    try:
        recording = read_wav(audio)
    except AudioFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    path = _flow_path(settings, flow)
    if not path.is_file():
        raise click.ClickException(f"flow file {path} not found")
    try:
        loaded = load_flow(path)
    except ConfigError as exc:
        raise click.ClickException(f"invalid flow:\n{exc}") from exc
    try:
        pipeline = SpeechPipeline.from_flow(loaded, settings, engine=engine)
        result = pipeline.decode_pcm(recording.pcm, recording.sample_rate)
    except RecogniserError as exc:
        raise click.ClickException(str(exc)) from exc
    out = {
        "intent": result.intent,
        "confidence": round(result.confidence, 3),
        "transcript": result.transcript,
        "engine": result.engine,
        "latency_ms": round(result.latency_ms, 1),
    }
    if details:
        out.update(reason=result.reason, candidate=result.candidate, language=result.language,
                   speech_ms=result.speech_ms, end_reason=result.end_reason,
                   flow=loaded.name, audio_s=round(recording.duration_s, 2),
                   sample_rate=recording.sample_rate,
                   model=str(getattr(pipeline.recogniser, "model_dir", "")))
    click.echo(json.dumps(out, ensure_ascii=False))
