"""A system-installed Asterisk is used instead of the chroot when there is one.

This machine has none, so the test makes one as a host install looks to the gateway: an
executable ``asterisk`` on PATH, run with host paths. Behind it is the sandbox's own Debian
binary (this test's data dir and /run/centralino are bind-mounted at the same paths inside the
rootfs, so host paths are valid there too); nothing in the gateway knows or cares.
"""

import asyncio
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from gateway.sandbox.instance import Sandbox
from gateway.service import GatewayService
from gateway.settings import Settings

pytestmark = pytest.mark.integration


def free(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def system_asterisk(sandbox, tmp_path, monkeypatch):
    root = sandbox.root
    data = tmp_path / "data"
    data.mkdir()
    inside = root / str(data).lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(data), str(inside)], check=True)
    run = Path("/run/centralino")
    run.mkdir(parents=True, exist_ok=True)
    (root / "run" / "centralino").mkdir(parents=True, exist_ok=True)
    if f" {root}/run/centralino " not in Path("/proc/mounts").read_text():
        subprocess.run(["mount", "--bind", str(run), str(root / "run" / "centralino")], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "asterisk"
    wrapper.write_text(f'#!/bin/sh\nexec chroot {root} /usr/sbin/asterisk "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(inside)], check=False)


async def test_auto_mode_runs_the_asterisk_on_path_with_host_paths(system_asterisk, sandbox):
    rtp = sandbox.settings.asterisk.rtp_end + 100
    settings = Settings(
        data_dir=system_asterisk,
        http={"port": 0},
        asterisk={"mode": "auto", "instance": f"pytest-sys-{uuid.uuid4().hex[:6]}",
                  "sip_port": free(socket.SOCK_DGRAM), "ami_port": free(), "http_port": free(),
                  "rtp_start": rtp, "rtp_end": rtp + 49,
                  "modules_dir": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
                  "share_dir": "/usr/share/asterisk"})
    sb = Sandbox(settings)
    eff = await asyncio.to_thread(sb.up)
    try:
        status = sb.status()
        assert status["runtime"] == "system" and status["binary"].endswith("/bin/asterisk")
        assert status["running"] and "rootfs" not in status
        base = sb.base
        assert base.startswith(str(system_asterisk)) and (sb.host_path(base) / "etc" / "pjsip.conf").is_file()
        assert f"astetcdir => {base}/etc" in (sb.host_path(base) / "etc" / "asterisk.conf").read_text()
        assert "Asterisk 22" in sb.cli("core show version")
        assert eff.asterisk.cel_url == f"sqlite:///{base}/log/cel.db"
        service = GatewayService(eff, components=[])
        await service.start()
        try:
            await service.ami.action("Originate", Channel="Local/199@from-callers",
                                     Application="Wait", Data="1", Async="true",
                                     CallerID="System <5550301>")
            for _ in range(100):
                if await service.store.count() >= 1:
                    break
                await asyncio.sleep(0.1)
            assert await service.store.count() == 1
        finally:
            await service.stop()
    finally:
        await asyncio.to_thread(sb.down)
    assert not sb.is_running()
