"""The AMI connector against the real Asterisk: actions, lists, events, auth, reconnect."""

import asyncio

import pytest

from gateway.ami.client import AMIAuthError, AMIClient

pytestmark = pytest.mark.integration


async def test_actions_lists_and_events(sandbox):
    client = AMIClient(sandbox.settings)
    events = []
    client.on_event(events.append)
    await client.connect()
    try:
        resp = await client.action("Command", Command="core show version")
        assert any("Asterisk 22" in line for line in resp.output)
        assert await client.action_list("CoreShowChannels") == []
        await client.action("Originate", Channel="Local/100@from-callers", Application="Wait",
                            Data="1", Async="true")
        for _ in range(100):
            if any(e.name == "Hangup" for e in events):
                break
            await asyncio.sleep(0.1)
        names = {e.name for e in events}
        assert {"Newchannel", "Hangup"} <= names
    finally:
        await client.close()


async def test_wrong_password_is_an_auth_error_naming_the_setting(sandbox):
    bad = sandbox.settings.model_copy(update={"asterisk": sandbox.settings.asterisk.model_copy(
        update={"ami_password": type(sandbox.settings.asterisk.ami_password)("wrong")})})
    with pytest.raises(AMIAuthError, match="ami_password"):
        await AMIClient(bad).connect()


async def test_reconnects_by_itself_after_asterisk_is_killed(sandbox):
    settings = sandbox.settings.model_copy(update={"ami": sandbox.settings.ami.model_copy(
        update={"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0})})
    client = AMIClient(settings)
    ups, downs = [], []
    client.on_connected(lambda: ups.append(1))
    client.on_disconnected(lambda: downs.append(1))
    await client.connect()
    try:
        await asyncio.to_thread(sandbox.kill)
        for _ in range(50):
            if downs:
                break
            await asyncio.sleep(0.1)
        assert downs and not client.connected
        await asyncio.to_thread(sandbox.up)
        for _ in range(100):
            if len(ups) == 2 and client.connected:
                break
            await asyncio.sleep(0.1)
        assert len(ups) == 2
        resp = await client.action("Ping")
        assert resp.success
    finally:
        await client.close()
