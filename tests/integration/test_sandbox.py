"""The sandbox is a real Asterisk 22 on loopback, reachable by AMI and ARI with its own secrets."""

import asyncio

import aiohttp
import pytest

from gateway.ami.protocol import Banner, Parser, Response, encode_action

pytestmark = pytest.mark.integration


async def ami_login(settings, password):
    a = settings.asterisk
    reader, writer = await asyncio.open_connection(a.host, a.ami_port)
    parser = Parser()
    msgs = []
    writer.write(encode_action("Login", "1", Username=a.ami_username, Secret=password))
    while not any(isinstance(m, Response) for m in msgs):
        data = await asyncio.wait_for(reader.read(4096), 5)
        assert data, "AMI closed the connection"
        msgs += parser.feed(data)
    writer.close()
    await writer.wait_closed()
    return msgs


async def test_ami_accepts_the_generated_credentials(sandbox):
    msgs = await ami_login(sandbox.settings, sandbox.settings.asterisk.ami_password.get_secret_value())
    assert isinstance(msgs[0], Banner)
    (resp,) = [m for m in msgs if isinstance(m, Response)]
    assert resp.success and resp.action_id == "1"


async def test_ami_refuses_a_wrong_password(sandbox):
    msgs = await ami_login(sandbox.settings, "wrong")
    (resp,) = [m for m in msgs if isinstance(m, Response)]
    assert not resp.success and "Authentication failed" in resp.message


async def test_ari_answers_with_the_generated_credentials_only(sandbox):
    a = sandbox.settings.asterisk
    url = f"http://{a.host}:{a.http_port}/ari/asterisk/info"
    async with aiohttp.ClientSession() as http:
        good = {"Authorization": aiohttp.encode_basic_auth(a.ari_username, a.ari_password.get_secret_value())}
        async with http.get(url, headers=good) as r:
            assert r.status == 200
            assert (await r.json())["system"]["version"].startswith("22.")
        bad = {"Authorization": aiohttp.encode_basic_auth(a.ari_username, "wrong")}
        async with http.get(url, headers=bad) as r:
            assert r.status == 401


def test_every_listener_is_bound_to_loopback(sandbox):
    out = sandbox.cli("manager show settings")
    assert f"127.0.0.1:{sandbox.settings.asterisk.ami_port}" in out
    assert "127.0.0.1" in sandbox.cli("pjsip show transports")


def test_a_killed_sandbox_starts_again(sandbox):
    sandbox.kill()
    assert not sandbox.is_running()
    sandbox.up()
    assert sandbox.is_running()
    assert "Asterisk 22" in sandbox.cli("core show version")
