"""`centralino run`: ready against the real PBX, a clear non-zero exit on wrong credentials."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "gateway.cli.entry"]


def env_for(sandbox, tmp_path, **override):
    a = sandbox.settings.asterisk
    env = dict(os.environ,
               CENTRALINO_DATA_DIR=str(tmp_path), CENTRALINO_ASTERISK__AMI_PORT=str(a.ami_port),
               CENTRALINO_ASTERISK__HTTP_PORT=str(a.http_port),
               CENTRALINO_ASTERISK__AMI_PASSWORD=a.ami_password.get_secret_value(),
               CENTRALINO_ASTERISK__ARI_PASSWORD=a.ari_password.get_secret_value())
    env.update(override)
    return env


@pytest.mark.parametrize("which,setting", [("AMI", "ami_password"), ("ARI", "ari_password")])
def test_wrong_credentials_exit_non_zero_with_one_clear_line(sandbox, tmp_path, which, setting):
    env = env_for(sandbox, tmp_path, **{f"CENTRALINO_ASTERISK__{setting.upper()}": "wrong"})
    r = subprocess.run(CLI + ["run"], env=env, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode != 0
    assert which in r.stderr and setting in r.stderr
    assert "Traceback" not in r.stderr


def test_readyz_is_200_against_the_real_pbx_and_503_when_it_dies(sandbox, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(CLI + ["run", "--port", str(port)], env=env_for(sandbox, tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def readyz():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
        except OSError:
            return None, None

    try:
        for _ in range(100):
            status, body = readyz()
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, body
        sandbox.kill()
        for _ in range(50):
            status, body = readyz()
            if status == 503:
                break
            time.sleep(0.2)
        assert status == 503 and body["links"]["ami"] is False
    finally:
        sandbox.up()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
