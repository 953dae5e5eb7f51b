"""The production start path, without a Docker engine: what docker/compose.yaml does.

The config service renders with `centralino dialplan render` (Debian's layout, secrets from the
environment); the Asterisk image's entrypoint (docker/asterisk-entrypoint.sh) installs those
files for the unprivileged asterisk user and starts Asterisk. Here the same script runs in the
cached Debian sid rootfs (the image's base) and the gateway's own clients talk to the result.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from gateway.ami.client import AMIClient
from gateway.settings import REPO_DIALPLANS, Settings

pytestmark = pytest.mark.integration
ENTRYPOINT = REPO_DIALPLANS.parent / "docker" / "asterisk-entrypoint.sh"


def free(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rendered(sandbox, tmp_path):
    root, tag = sandbox.root, uuid.uuid4().hex[:6]
    rtp = sandbox.settings.asterisk.rtp_end + 200
    env = dict(os.environ, CENTRALINO_DATA_DIR=str(tmp_path / "data"),
               CENTRALINO_ASTERISK__SIP_PORT=str(free(socket.SOCK_DGRAM)),
               CENTRALINO_ASTERISK__AMI_PORT=str(free()), CENTRALINO_ASTERISK__HTTP_PORT=str(free()),
               CENTRALINO_ASTERISK__RTP_START=str(rtp), CENTRALINO_ASTERISK__RTP_END=str(rtp + 49),
               CENTRALINO_ASTERISK__AMI_PASSWORD="ami-" + uuid.uuid4().hex,
               CENTRALINO_ASTERISK__ARI_PASSWORD="ari-" + uuid.uuid4().hex,
               CENTRALINO_ASTERISK__PROMPTS_DIR=f"/var/lib/centralino/sounds-{tag}")
    out, etc = f"/etc/asterisk-rendered-{tag}", f"/etc/asterisk-{tag}"
    r = subprocess.run([sys.executable, "-m", "gateway.cli.entry", "dialplan", "render",
                        "--out", f"{root}{out}", "--asterisk-etc", etc,
                        "--sounds", f"{root}/var/lib/centralino/sounds-{tag}"],
                       env=env, capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    shutil.copy(ENTRYPOINT, root / "usr/local/bin/asterisk-entrypoint")
    settings = Settings(_env_file=None, asterisk={k.split("__")[1].lower(): v for k, v in env.items()
                     if k.startswith("CENTRALINO_ASTERISK__")})
    try:
        yield root, out, etc, settings
    finally:
        for p in (out, etc, f"/var/lib/centralino/sounds-{tag}"):
            shutil.rmtree(f"{root}{p}", ignore_errors=True)


@pytest.fixture
def started(rendered):
    """The image's entrypoint, run as the container would run it."""
    root, out, etc, settings = rendered
    log_path = Path(f"{root}/var/log") / f"entrypoint-{Path(etc).name}.log"
    cli = ["chroot", str(root), "/usr/sbin/asterisk", "-C", f"{etc}/asterisk.conf", "-rx"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["setsid", "chroot", str(root), "env", f"CENTRALINO_RENDERED={out}",
             f"ASTERISK_ETC={etc}", "/bin/sh", "/usr/local/bin/asterisk-entrypoint"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            r = subprocess.run(cli + ["core waitfullybooted"], capture_output=True, text=True,
                               check=False, timeout=10)
            if r.returncode == 0:
                break
            assert proc.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.2)
        assert r.returncode == 0, log_path.read_text()[-2000:]
        yield root, out, etc, settings, proc.pid
    finally:
        subprocess.run(cli + ["core stop now"], capture_output=True, check=False, timeout=20)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_the_image_entrypoint_starts_asterisk_unprivileged_with_the_rendered_config(started):
    root, out, etc, settings, pid = started
    assert f"astetcdir => {etc}" in Path(f"{root}{out}/asterisk.conf").read_text()
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(int(line.split()[1]) for line in status if line.startswith("Uid:"))
    assert uid != 0, "Asterisk must drop root"
    assert oct(Path(f"{root}{etc}/manager.conf").stat().st_mode & 0o777) == "0o640"

    ami = AMIClient(settings)
    await ami.connect()
    try:
        assert (await ami.action("Ping")).success
    finally:
        await ami.close()
    a = settings.asterisk
    auth = {"Authorization": aiohttp.encode_basic_auth(a.ari_username,
                                                       a.ari_password.get_secret_value())}
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{a.http_port}/ari/asterisk/info", headers=auth) as resp:
        assert resp.status == 200 and (await resp.json())["system"]["version"].startswith("22.")


def test_the_entrypoint_refuses_to_start_without_a_rendered_configuration(sandbox):
    r = subprocess.run(["chroot", str(sandbox.root), "env", "CENTRALINO_RENDERED=/nonexistent",
                        "/bin/sh", "-c", Path(ENTRYPOINT).read_text()], capture_output=True,
                       text=True, check=False, timeout=20)
    assert r.returncode == 1 and "no rendered configuration in /nonexistent" in r.stderr


