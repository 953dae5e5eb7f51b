"""The AMI connector against an in-process fake AMI server (fault injection: drops, silence,
bursts, wrong credentials). The real Asterisk is in tests/integration/test_ami_client.py."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from gateway.ami.client import (
    AMIActionError,
    AMIAuthError,
    AMIClient,
    AMIConnectionError,
    AMIEventOverflow,
    AMITimeoutError,
    backoff,
)
from gateway.settings import Settings

pytestmark = pytest.mark.timeout(60)


def frame(**headers) -> bytes:
    return b"".join(f"{k.replace('_', '-')}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


def event(name, **headers) -> bytes:
    return frame(Event=name, **headers)


class FakeAMI:
    """Speaks enough AMI for the connector; every reply can be scripted per action name."""

    def __init__(self, username="gw", secret="s3cret"):
        self.username, self.secret = username, secret
        self.accepts: list[float] = []
        self.actions: list[dict] = []
        self.reject_next = 0  # close this many new connections at once
        self.answer_pings = True
        self.channels = ["PJSIP/a-1", "PJSIP/b-2"]
        self.handlers = {}
        self.writer: asyncio.StreamWriter | None = None
        self.logins = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self.server.close()
        if self.writer:
            self.writer.close()

    def send(self, raw: bytes):
        self.writer.write(raw)

    def drop(self):
        self.writer.transport.abort()

    async def _serve(self, reader, writer):
        self.accepts.append(time.monotonic())
        if self.reject_next:
            self.reject_next -= 1
            writer.transport.abort()
            return
        self.writer = writer
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if line)
                self.actions.append(action)
                handler = self.handlers.get(action["Action"]) or getattr(
                    self, "on_" + action["Action"], self.on_unknown)
                res = handler(action, writer)
                if asyncio.iscoroutine(res):
                    asyncio.ensure_future(res)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass

    def on_unknown(self, a, w):
        w.write(frame(Response="Error", ActionID=a["ActionID"], Message="Invalid/unknown command"))

    def on_Login(self, a, w):
        if (a.get("Username"), a.get("Secret")) == (self.username, self.secret):
            self.logins += 1
            w.write(frame(Response="Success", ActionID=a["ActionID"], Message="Authentication accepted"))
            w.write(event("FullyBooted", Privilege="system,all", Status="Fully Booted"))
        else:
            w.write(frame(Response="Error", ActionID=a["ActionID"], Message="Authentication failed"))

    def on_Ping(self, a, w):
        if self.answer_pings:
            w.write(frame(Response="Success", ActionID=a["ActionID"], Ping="Pong", Timestamp="1.0"))

    def on_CoreShowChannels(self, a, w):
        aid = a["ActionID"]
        w.write(frame(Response="Success", ActionID=aid, EventList="start",
                      Message="Channels will follow"))
        for i, chan in enumerate(self.channels):
            w.write(event("CoreShowChannel", ActionID=aid, Channel=chan, Uniqueid=f"17.{i}"))
            w.write(event("Newexten", Channel="PJSIP/z-9", Exten="100"))  # unrelated, interleaved
        w.write(event("CoreShowChannelsComplete", ActionID=aid, EventList="Complete",
                      ListItems=len(self.channels)))


@pytest.fixture
async def ami():
    server = await FakeAMI().start()
    yield server
    await server.stop()


def settings_for(server, tmp_path, **ami) -> Settings:
    cfg = {"action_timeout_s": 2.0, "keepalive_interval_s": 30.0, "reconnect_initial_s": 0.05,
           "reconnect_max_s": 0.2, **ami}
    return Settings(data_dir=tmp_path, ami=cfg,
                    asterisk={"host": "127.0.0.1", "ami_port": server.port,
                              "ami_username": "gw", "ami_password": "s3cret"})


@pytest.fixture
async def client(ami, tmp_path):
    c = AMIClient(settings_for(ami, tmp_path))
    yield c
    await c.close()


async def until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# --- login ----------------------------------------------------------------------------------

async def test_login_gives_a_connected_client_that_knows_the_version(ami, client):
    await client.connect()
    assert client.connected and client.version == "9.0.0"
    assert ami.actions[0]["Action"] == "Login" and ami.actions[0]["Events"] == "on"


async def test_wrong_credentials_are_an_auth_error_naming_the_settings(ami, tmp_path):
    ami.secret = "other"
    c = AMIClient(settings_for(ami, tmp_path))
    with pytest.raises(AMIAuthError, match="ami_password") as info:
        await c.connect()
    assert "s3cret" not in str(info.value)
    assert not c.connected


async def test_a_refused_port_is_a_connection_error_not_an_auth_error(ami, tmp_path):
    settings = settings_for(ami, tmp_path)
    await ami.stop()
    await ami.server.wait_closed()
    with pytest.raises(AMIConnectionError, match="cannot reach AMI") as info:
        await AMIClient(settings).connect()
    assert not isinstance(info.value, AMIAuthError)


async def test_a_server_that_hangs_up_during_login_is_a_connection_error(ami, tmp_path):
    ami.handlers["Login"] = lambda a, w: w.transport.abort()
    with pytest.raises(AMIConnectionError, match="did not answer the login"):
        await AMIClient(settings_for(ami, tmp_path)).connect()


# --- actions --------------------------------------------------------------------------------

async def test_replies_are_matched_by_action_id_whatever_order_and_events_in_between(ami, client):
    held = []

    def hold(a, w):
        held.append((a, w))
        if len(held) == 2:  # answer the second first, with events in between
            for a2, w2 in reversed(held):
                w2.write(event("Newstate", Channel="PJSIP/x-1", ActionIDish="no"))
                w2.write(frame(Response="Success", ActionID=a2["ActionID"], Message=a2["Tag"]))

    ami.handlers["Echo"] = hold
    seen = []
    client.on_event(seen.append)
    await client.connect()
    first, second = await asyncio.gather(client.action("Echo", Tag="one"),
                                         client.action("Echo", Tag="two"))
    assert (first.message, second.message) == ("one", "two")
    assert [e.name for e in seen].count("Newstate") == 2


async def test_an_error_response_raises_with_its_message(ami, client):
    await client.connect()
    with pytest.raises(AMIActionError, match="Invalid/unknown command") as info:
        await client.action("NoSuchThing")
    assert info.value.response.success is False


async def test_a_list_action_collects_its_items_and_leaves_other_events_to_subscribers(ami, client):
    seen = []
    client.on_event(seen.append)
    await client.connect()
    resp = await client.action("CoreShowChannels")
    assert [e.get("Channel") for e in resp.events] == ["PJSIP/a-1", "PJSIP/b-2"]
    listed = await client.action_list("CoreShowChannels")
    assert [e.get("Channel") for e in listed] == ["PJSIP/a-1", "PJSIP/b-2"]
    names = [e.name for e in seen]
    assert "CoreShowChannel" not in names and "CoreShowChannelsComplete" not in names
    assert names.count("Newexten") == 4


async def test_an_empty_list_is_an_empty_list(ami, client):
    ami.channels = []
    await client.connect()
    assert await client.action_list("CoreShowChannels") == []


async def test_an_unanswered_action_times_out_and_its_late_reply_does_no_harm(ami, client):
    late = []
    ami.handlers["Slow"] = lambda a, w: late.append((a, w))
    await client.connect()
    with pytest.raises(AMITimeoutError) as info:
        await client.action("Slow", timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    a, w = late[0]
    w.write(frame(Response="Success", ActionID=a["ActionID"]))
    assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_a_list_that_never_completes_times_out_and_its_late_items_are_swallowed(ami, client):
    pending = []

    def start_only(a, w):
        pending.append(a["ActionID"])
        w.write(frame(Response="Success", ActionID=a["ActionID"], EventList="start"))

    ami.handlers["QueueStatus"] = start_only
    seen = []
    client.on_event(seen.append)
    await client.connect()
    with pytest.raises(AMITimeoutError):
        await client.action("QueueStatus", timeout=0.2)
    ami.send(event("QueueParams", ActionID=pending[0], Queue="billing"))
    ami.send(event("QueueStatusComplete", ActionID=pending[0], EventList="Complete"))
    ami.send(event("Hangup", Channel="PJSIP/a-1"))
    await until(lambda: any(e.name == "Hangup" for e in seen))
    assert [e.name for e in seen if e.name.startswith("Queue")] == []


async def test_actions_fail_fast_when_not_connected(ami, tmp_path):
    with pytest.raises(AMIConnectionError):
        await AMIClient(settings_for(ami, tmp_path)).action("Ping")


# --- events ---------------------------------------------------------------------------------

async def test_events_reach_callbacks_and_streams_in_order(ami, client):
    seen = []
    client.on_event(seen.append)
    stream = client.events()
    await client.connect()
    for i in range(100):
        ami.send(event("VarSet", Variable="N", Value=i))
    got = [await stream.get(timeout=5) for _ in range(101)]
    assert [e.get("Value") for e in got if e.name == "VarSet"] == [str(i) for i in range(100)]
    assert [e.get("Value") for e in seen if e.name == "VarSet"] == [str(i) for i in range(100)]


async def test_a_slow_blocking_subscriber_loses_nothing_and_the_link_stays_up(ami, tmp_path):
    c = AMIClient(settings_for(ami, tmp_path, keepalive_interval_s=0.1, action_timeout_s=0.2))
    stream = c.events(maxsize=10)
    fast = []
    c.on_event(fast.append)
    await c.connect()
    try:
        ami.send(b"".join(event("VarSet", Value=i) for i in range(3000)))
        await asyncio.sleep(0.6)  # the stream is full for several keepalive periods
        assert c.connected and c.connects == 1
        assert len(fast) < 3000  # the reader waited for the slow subscriber
        values = []
        async for ev in stream:
            if ev.name == "VarSet":
                values.append(int(ev.get("Value")))
                if len(values) == 3000:
                    break
        assert values == list(range(3000))
        assert c.connects == 1
        await until(lambda: len([e for e in fast if e.name == "VarSet"]) == 3000)
    finally:
        await c.close()


async def test_an_error_policy_subscriber_that_falls_behind_is_told_and_others_go_on(ami, client):
    lossy = client.events(maxsize=5, overflow="error")
    whole = client.events()
    await client.connect()
    ami.send(b"".join(event("VarSet", Value=i) for i in range(50)))
    got = [await whole.get(timeout=5) for _ in range(51)]
    assert [e.get("Value") for e in got[1:]] == [str(i) for i in range(50)]
    first = [await lossy.get(timeout=1) for _ in range(5)]
    assert first[0].name == "FullyBooted"
    with pytest.raises(AMIEventOverflow, match="resubscribe"):
        await lossy.get(timeout=1)
    with pytest.raises(StopAsyncIteration):
        await lossy.get(timeout=1)


async def test_a_failing_callback_does_not_stop_the_others(ami, client):
    seen = []
    client.on_event(lambda ev: 1 / 0)
    client.on_event(seen.append)
    await client.connect()
    ami.send(event("Hangup", Cause="16"))
    await until(lambda: any(e.name == "Hangup" for e in seen))
    assert (await client.action("Ping")).success


async def test_garbage_on_the_wire_is_counted_and_the_link_goes_on(ami, client):
    seen = []
    client.on_event(seen.append)
    await client.connect()
    ami.send(b"Nonsense: here\r\n\r\n\xff\xfe\r\n\r\n" + event("Hangup", Cause="16"))
    await until(lambda: any(e.name == "Hangup" for e in seen))
    assert client.protocol_errors == 2 and client.connected


async def test_close_ends_streams_and_fails_waiting_actions(ami, client):
    ami.handlers["Slow"] = lambda a, w: None
    stream = client.events()
    await client.connect()
    waiting = asyncio.ensure_future(client.action("Slow", timeout=10))
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(AMIConnectionError):
        await waiting
    assert (await stream.get(timeout=1)).name == "FullyBooted"
    with pytest.raises(StopAsyncIteration):
        await stream.get(timeout=1)


# --- supervision ----------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_cap_with_jitter():
    rnd = random.Random(7)
    waits = [w for w, _ in zip(backoff(0.5, 30.0, rnd), range(12))]
    steps = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30]
    assert all(s * 0.5 <= w <= s for w, s in zip(waits, steps))
    assert len({round(w, 6) for w in waits[6:]}) > 1  # jittered, not lockstep


async def test_a_link_dropped_mid_frame_reconnects_with_backoff_and_resyncs(ami, client):
    ups, downs, resyncs, seen = [], [], [], []
    client.on_connected(lambda: ups.append(time.monotonic()))
    client.on_disconnected(lambda: downs.append(time.monotonic()))

    async def resync(channels):
        resyncs.append([c.get("Channel") for c in channels])

    client.on_resync(resync)
    client.on_event(seen.append)
    await client.connect()
    assert len(ups) == 1 and resyncs == [["PJSIP/a-1", "PJSIP/b-2"]]

    ami.reject_next = 3  # the next three connections are closed at once
    ami.channels = ["PJSIP/c-3"]
    ami.send(b"Event: Hangup\r\nChannel: PJSIP/a-1\r\nCau")  # half a frame, then gone
    await asyncio.sleep(0.05)
    ami.drop()
    await until(lambda: len(ups) == 2)
    assert len(downs) == 1 and not any(e.name == "Hangup" for e in seen)
    assert resyncs[-1] == ["PJSIP/c-3"]
    assert client.connected and (await client.action("Ping")).success
    gaps = [b - a for a, b in zip(ami.accepts[1:], ami.accepts[2:])]
    assert len(gaps) == 3
    assert gaps[0] >= 0.05 * 0.5 * 0.9 and gaps[1] >= 0.1 * 0.5 * 0.9 and gaps[2] >= 0.2 * 0.5 * 0.9


async def test_the_keepalive_notices_a_silent_link_and_reconnects(ami, tmp_path):
    c = AMIClient(settings_for(ami, tmp_path, keepalive_interval_s=0.1, action_timeout_s=0.3))
    downs = []
    c.on_disconnected(lambda: downs.append(1))
    await c.connect()
    try:
        ami.answer_pings = False
        await until(lambda: downs)
        ami.answer_pings = True
        await until(lambda: c.connected and c.connects == 2)
        assert (await c.action("Ping")).success
    finally:
        await c.close()


async def test_a_failing_state_callback_does_not_stop_reconnecting(ami, client):
    ups = []
    client.on_connected(lambda: 1 / 0)
    client.on_connected(lambda: ups.append(1))
    await client.connect()
    ami.drop()
    await until(lambda: len(ups) == 2)
    assert (await client.action("Ping")).success
