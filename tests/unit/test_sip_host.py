"""The real pjsua2 phone host, without a PBX: limits are refused (never an abort), bad input is
answered clearly, and the host always ends cleanly (shutdown, lost client, kill)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gateway.sip.client import CommandError, PhoneError, PhoneHost, PhoneHostDied

pytest.importorskip("pjsua2")  # the [sip] extra; installed with the dev extras


async def test_the_host_starts_reports_its_limits_and_shuts_down_cleanly():
    host = await PhoneHost().start()
    assert host.ready.pjsua.startswith("2.") and host.ready.max_accounts == 8
    assert host.ready.max_calls == 4
    await host.close()
    assert host.returncode == 0
    with pytest.raises(PhoneHostDied, match="closed"):
        await host.ping()


async def test_a_ninth_account_is_refused_instead_of_aborting_pjsua():
    async with PhoneHost() as host:
        for i in range(8):
            await host.add_account(f"load{i}", "pw", "127.0.0.1", 5, register=False)
        with pytest.raises(CommandError, match="at most 8 accounts") as err:
            await host.add_account("load8", "pw", "127.0.0.1", 5, register=False)
        assert err.value.kind == "limit"
        await host.remove_account("load0")
        await host.add_account("load8", "pw", "127.0.0.1", 5, register=False)  # room again
        assert sorted((await host.ping())["accounts"]) == sorted(
            [f"load{i}" for i in range(1, 9)])
    assert host.returncode == 0


async def test_bad_requests_get_clear_answers_and_the_host_carries_on():
    async with PhoneHost() as host:
        with pytest.raises(CommandError, match="no account 'nobody'"):
            await host.call("nobody", "6001")
        await host.add_account("caller1", "pw", "127.0.0.1", 5, register=False)
        with pytest.raises(CommandError, match="codec 'opus' is not available"):
            await host.add_account("caller2", "pw", "127.0.0.1", 5, register=False,
                                   codec="opus")
        with pytest.raises(CommandError, match="already exists"):
            await host.add_account("caller1", "pw", "127.0.0.1", 5, register=False)
        with pytest.raises(CommandError, match="unknown command 'dance'"):
            await host._request("dance", {})
        with pytest.raises(CommandError, match="argument 'port' must be int"):
            await host._request("add_account", {"account": "x", "password": "p",
                                                "host": "h", "port": "5060"})
        with pytest.raises(CommandError, match="call c99 is unknown"):
            await host._request("stats", {"call": "c99"})
        host._proc.stdin.write(b"{broken\n")
        await host._proc.stdin.drain()
        assert await host.ping()  # still answering
        assert any("line" in p and "not JSON" in p for p in host.problems)
    assert host.returncode == 0


def test_the_host_tidies_up_and_exits_when_its_client_disappears():
    proc = subprocess.Popen([sys.executable, "-m", "gateway.sip.host"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready = json.loads(proc.stdout.readline())
    assert ready["event"] == "ready"
    proc.stdin.write(b'{"id":1,"cmd":"add_account","args":{"account":"a","password":"p",'
                     b'"host":"127.0.0.1","port":5,"register":false}}\n')
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["ok"] is True
    proc.stdin.close()  # what a crashed test process looks like from the host
    assert proc.wait(20) == 0


async def test_a_killed_host_is_a_clear_error_not_a_hang():
    async with PhoneHost() as host:
        waiting = asyncio.create_task(host.wait_for_incoming("agent1", timeout=120))
        await asyncio.sleep(0.1)
        os.kill(host.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(PhoneHostDied, match="killed by SIGKILL"):
            await waiting
        assert time.monotonic() - t0 < 10
        with pytest.raises(PhoneHostDied):
            await host.call("caller1", "6001")


async def test_sigterm_shuts_the_host_down_in_order():
    async with PhoneHost() as host:
        await host.add_account("caller1", "pw", "127.0.0.1", 5, register=False)
        os.kill(host.pid, signal.SIGTERM)
        with pytest.raises(PhoneError):
            await asyncio.wait_for(host.wait_for_incoming("caller1", timeout=30), 20)
    assert host.returncode == 0  # libDestroy ran without the pjsua abort


async def test_a_fifth_call_is_refused_by_the_host_with_its_limit_named():
    async with PhoneHost() as host:
        await host.add_account("caller1", "pw", "127.0.0.1", 5, register=False)
        # nobody listens on port 9: the calls stay in "calling", holding their slots
        calls = [await host.call("caller1", "sip:x@127.0.0.1:9") for _ in range(4)]
        with pytest.raises(CommandError, match="at most 4 calls at once") as err:
            await host.call("caller1", "sip:x@127.0.0.1:9")
        assert err.value.kind == "limit"
        assert [c.state.value for c in calls] == ["calling"] * 4  # the others are untouched
    assert host.returncode == 0


async def test_a_call_right_after_another_keeps_sending_rtp_between_two_hosts():
    """No PBX: one host calls the other directly. The second call starts within a second of
    the first one ending, when pjsua used to close the null sound device (the conference
    bridge's clock) and the call stopped sending after ~43 packets."""
    async with PhoneHost() as caller, PhoneHost() as callee:
        await caller.add_account("caller1", "pw", "127.0.0.1", 5, register=False)
        await callee.add_account("agent1", "pw", "127.0.0.1", 5, register=False)
        uri = f"sip:agent1@127.0.0.1:{(await callee.ping())['sip_port']}"
        sent = []
        for _ in range(2):
            out = await caller.call("caller1", uri)
            inc = await callee.wait_for_incoming("agent1")
            await callee.answer(inc)
            await caller.wait_for_media(out)
            await callee.wait_for_media(inc)
            t0 = time.monotonic()
            await asyncio.sleep(3)
            tx, rx = (await caller.stats(out)).tx_packets, (await callee.stats(inc)).rx_packets
            sent.append((time.monotonic() - t0, tx, rx))
            await caller.hangup(out)
            await callee.wait_for_state(inc, "disconnected")
        for elapsed, tx, rx in sent:  # 50 packets/s; wide bounds for a loaded box
            assert 0.6 * 50 * elapsed <= min(tx, rx) <= max(tx, rx) <= 1.2 * 50 * (elapsed + 1), sent
    assert caller.returncode == callee.returncode == 0
