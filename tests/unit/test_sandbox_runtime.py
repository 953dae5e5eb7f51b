"""Which Asterisk the sandbox runs, and the clear errors when it cannot."""

import pytest

from gateway.sandbox import runtime as rt
from gateway.settings import Settings


def fake_asterisk(tmp_path, version_line):
    exe = tmp_path / "asterisk"
    exe.write_text(f'#!/bin/sh\necho "{version_line}"\n')
    exe.chmod(0o755)
    return exe


def never_build(cache_dir):
    raise AssertionError("the chroot must not be built when a system Asterisk is used")


def test_a_configured_binary_is_used_with_its_directories(tmp_path):
    exe = fake_asterisk(tmp_path, "Asterisk 22.10.1")
    s = Settings(asterisk={"binary": exe, "modules_dir": "/opt/ast/modules", "share_dir": "/opt/ast/share"})
    r = rt.choose(s, never_build)
    assert isinstance(r, rt.SystemRuntime) and r.command("-V") == [str(exe), "-V"]
    assert (r.dirs.modules, r.dirs.share) == ("/opt/ast/modules", "/opt/ast/share")
    assert r.base("x", tmp_path / "state") == str((tmp_path / "state" / "asterisk").resolve())


def test_an_old_asterisk_is_refused_with_the_version_needed(tmp_path):
    exe = fake_asterisk(tmp_path, "Asterisk 16.2.1~dfsg-1")
    with pytest.raises(rt.RuntimeError_, match="is Asterisk 16; Centralino needs 20 or newer"):
        rt.choose(Settings(asterisk={"binary": exe}), never_build)


def test_something_that_is_not_asterisk_is_refused(tmp_path):
    exe = fake_asterisk(tmp_path, "hello")
    with pytest.raises(rt.RuntimeError_, match="does not look like Asterisk"):
        rt.choose(Settings(asterisk={"binary": exe}), never_build)


def test_system_mode_without_an_asterisk_says_what_to_do(monkeypatch):
    monkeypatch.setattr(rt, "_on_path", lambda: None)
    with pytest.raises(rt.RuntimeError_, match="no Asterisk is installed.*set asterisk.binary"):
        rt.choose(Settings(asterisk={"mode": "system"}), never_build)


def test_auto_mode_without_a_system_asterisk_uses_the_chroot(monkeypatch, tmp_path):
    monkeypatch.setattr(rt, "_on_path", lambda: None)
    r = rt.choose(Settings(cache_dir=tmp_path), lambda cache: cache / "rootfs")
    assert isinstance(r, rt.ChrootRuntime) and r.root == tmp_path / "rootfs"
    assert r.command("-rx", "x")[:3] == ["chroot", str(tmp_path / "rootfs"), "/usr/sbin/asterisk"]


def test_external_mode_never_starts_asterisk():
    with pytest.raises(rt.RuntimeError_, match="Asterisk is run elsewhere"):
        rt.choose(Settings(asterisk={"mode": "external"}), never_build)


def test_a_system_instance_keeps_its_control_socket_short(tmp_path, monkeypatch):
    exe = fake_asterisk(tmp_path, "Asterisk 22.10.1")
    r = rt.choose(Settings(asterisk={"binary": exe, "modules_dir": "/m", "share_dir": "/s"}), never_build)
    deep = "/very/deep/data/dir" * 10
    assert len(r.run_dir("ci", deep)) < 60 and "deep" not in r.run_dir("ci", deep)
    with pytest.raises(rt.RuntimeError_, match="too long for Asterisk's control socket"):
        r.run_dir("x" * 120, deep)
