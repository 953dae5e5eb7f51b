"""IVR prompts as sound files Asterisk can play, rendered once and cached.

Text prompts are spoken by espeak-ng in the flow's voice and converted by sox to 8 kHz mono
16-bit WAV (telephone band: what G.711 carries anyway). A prompt with a ``{label}``-style field
becomes one file per intent (``confirm-billing.wav``). Sound-file prompts are converted the same
way. The cache is keyed by voice, text and tool versions, so re-rendering a site is instant and
a changed sentence is re-spoken. The IVR plays ``sound:<prompts dir>/<flow>/<name>``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway.dialplan.flow import PROMPT_FIELDS, Flow


class PromptError(Exception):
    pass


def prompt_names(flow: Flow) -> dict[str, str | Path]:
    """``{file stem: text or source file}`` for every sound the flow needs."""
    out: dict[str, str | Path] = {}
    for p in flow.prompts.values():
        if p.file is not None:
            out[p.name] = p.file
        elif p.text and PROMPT_FIELDS.search(p.text):
            for i in flow.intents:
                out[f"{p.name}-{i.name}"] = p.text.format(label=i.label, queue=i.queue, intent=i.name)
        elif p.text:
            out[p.name] = p.text
    return out


def sound_name(prompt: str, intent: str | None = None, flow: Flow | None = None) -> str:
    """The file stem the IVR plays for ``prompt`` (per intent when the prompt has fields)."""
    if flow is not None and intent is not None:
        p = flow.prompts.get(prompt)
        if p is not None and p.text and PROMPT_FIELDS.search(p.text):
            return f"{prompt}-{intent}"
    return prompt


def render_prompts(flow: Flow, out_dir: Path, cache_dir: Path) -> list[Path]:
    """Write ``out_dir/<flow>/<name>.wav`` for every prompt; returns the files written."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is not installed; it renders the IVR's text prompts "
                              f"(apt-get install espeak-ng sox)")
    target = out_dir / flow.name
    target.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / "prompts"
    cache.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in prompt_names(flow).items():
        if isinstance(src, Path):
            key = hashlib.sha256(b"file\0" + src.read_bytes()).hexdigest()[:32]
        else:
            key = hashlib.sha256(f"tts\0{flow.voice}\0{src}".encode()).hexdigest()[:32]
        cached = cache / f"{key}.wav"
        if not cached.exists():
            _make(src, flow.voice, cached)
        dst = target / f"{name}.wav"
        shutil.copyfile(cached, dst)
        dst.chmod(0o644)
        written.append(dst)
    return written


def _make(src: str | Path, voice: str, dst: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        if isinstance(src, Path):
            raw = src
        else:
            _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), src], "espeak-ng")
        out = Path(tmp) / "out.wav"
        _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
              str(out)], "sox")
        shutil.move(str(out), dst)


def _run(cmd: list[str], tool: str) -> None:
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise PromptError(f"{tool} failed: {(r.stderr or r.stdout).strip()[:300]}")
