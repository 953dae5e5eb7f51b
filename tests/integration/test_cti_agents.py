"""Agent sessions on the real sandbox Asterisk: the desktop's buttons become QueueAdd,
QueuePause and QueueRemove, and the agent's state follows what Asterisk reports, including
changes made behind the gateway's back and missed while its AMI link was down."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.events import AgentStateChanged
from tests.integration.test_cti_support import (
    Desk,
    eventually,
    members,
    start_gateway,
    stop_gateway,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(sandbox, tmp_path):
    service = await start_gateway(sandbox, tmp_path)
    changes: list[AgentStateChanged] = []
    service.bus.subscribe(AgentStateChanged, changes.append)
    service.changes = changes
    try:
        yield service
    finally:
        await stop_gateway(service)


async def test_state_frames_are_numbered_so_a_late_reply_cannot_show_an_old_state(gateway):
    """The reply to a button and the websocket push race to the page: each state carries a
    version that rises with every change pushed, and the page keeps the newest."""
    alice = await Desk.login(gateway.base_url, "alice")
    try:
        await alice.connect()
        first = await alice.frame(lambda f: f["type"] == "state")
        status, reply = await alice.post("/api/v1/agent/login", {"queues": ["billing"]})
        assert status == 200
        ready = await alice.frame(lambda f: f["type"] == "state" and f["state"] == "ready")
        assert ready["version"] > first["version"]
        assert reply["version"] <= ready["version"]
        if reply["state"] != "ready":  # computed before Asterisk confirmed: visibly older
            assert reply["version"] < ready["version"]
        status, now = await alice.get("/api/v1/agent/state")
        assert (now["state"], now["version"]) == ("ready", ready["version"])
        versions = [f["version"] for f in alice.frames if f["type"] == "state"]
        assert versions == sorted(set(versions))
        await alice.post("/api/v1/agent/logout")
    finally:
        await alice.close()


async def test_login_pause_ready_logout_reach_asterisk(gateway):
    alice = await Desk.login(gateway.base_url, "alice")
    try:
        await alice.connect()
        status, st = await alice.post("/api/v1/agent/login", {"queues": ["billing", "tech_support"]})
        assert status == 200, st
        m = await eventually(lambda: members(gateway), what="members")
        assert m[("billing", "PJSIP/agent1")] == {"name": "alice", "paused": "0", "reason": None}
        assert m[("tech_support", "PJSIP/agent1")]["name"] == "alice"
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "ready")

        status, _ = await alice.post("/api/v1/agent/pause", {"reason": "lunch"})
        assert status == 200
        m = await members(gateway)
        assert m[("billing", "PJSIP/agent1")]["paused"] == "1"
        assert m[("billing", "PJSIP/agent1")]["reason"] == "lunch"
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "paused"
                          and f["reason"] == "lunch")

        status, _ = await alice.post("/api/v1/agent/ready")
        assert status == 200
        assert (await members(gateway))[("tech_support", "PJSIP/agent1")]["paused"] == "0"

        status, body = await alice.post("/api/v1/agent/pause", {"reason": "nap"})
        assert status == 400 and "unknown pause reason" in body["error"]
        status, body = await alice.post("/api/v1/agent/login", {"queues": ["lost_card"]})
        assert status == 403 and "lost_card" in body["error"]

        status, _ = await alice.post("/api/v1/agent/logout")
        assert status == 200
        m = await members(gateway)
        assert not [k for k in m if k[1] == "PJSIP/agent1"]
        await alice.frame(lambda f: f["type"] == "state" and f["state"] == "logged_out")
    finally:
        await alice.close()
    states = [(c.username, c.state, c.reason) for c in gateway.changes]
    assert states == [("alice", "ready", None), ("alice", "paused", "lunch"),
                      ("alice", "ready", None), ("alice", "logged_out", None)]


async def test_changes_made_in_asterisk_directly_show_on_the_desktop(gateway):
    bob = await Desk.login(gateway.base_url, "bob")
    try:
        await bob.connect()
        # a supervisor's tool (or the Asterisk CLI) adds, pauses and removes the member
        await gateway.ami.action("QueueAdd", Queue="lost_card", Interface="PJSIP/agent2",
                                 MemberName="bob")
        await bob.frame(lambda f: f["type"] == "state" and f["queues"] == ["lost_card"]
                        and f["state"] == "ready")
        await gateway.ami.action("QueuePause", Interface="PJSIP/agent2", Paused="true",
                                 Reason="coaching")
        await bob.frame(lambda f: f["type"] == "state" and f["state"] == "paused"
                        and f["reason"] == "coaching")
        await gateway.ami.action("QueueRemove", Queue="lost_card", Interface="PJSIP/agent2")
        await bob.frame(lambda f: f["type"] == "state" and f["state"] == "logged_out")
    finally:
        await bob.close()


class Proxy:
    """A TCP proxy between the gateway and AMI that the test can cut (fault injection)."""

    def __init__(self, port: int) -> None:
        self.target, self.port, self._server, self._conns = port, 0, None, set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        for w in list(self._conns):
            w.transport.abort()

    async def _handle(self, reader, writer) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target)
        self._conns.update((writer, uw))

        async def pipe(r, w):
            with contextlib.suppress(Exception):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))


async def test_after_an_ami_reconnect_the_state_is_reread_from_queue_status(sandbox, tmp_path):
    proxy = Proxy(sandbox.settings.asterisk.ami_port)
    await proxy.start()
    service = await start_gateway(sandbox, tmp_path, ami_port=proxy.port)
    carl = await Desk.login(service.base_url, "carl")
    try:
        await carl.connect()
        status, _ = await carl.post("/api/v1/agent/login")
        assert status == 200
        await carl.frame(lambda f: f["type"] == "state" and f["state"] == "ready")
        await proxy.cut()
        await eventually(lambda: not service.ami.connected, what="the link to drop")
        # while the gateway is blind, someone pauses carl in Asterisk
        from gateway.ami.client import AMIClient

        side = AMIClient(sandbox.settings)
        await side.connect()
        try:
            await side.action("QueuePause", Interface="PJSIP/agent3", Paused="true",
                              Reason="meeting")
        finally:
            await side.close()
        n = len(carl.frames)
        await proxy.start()  # same port: the gateway's reconnect gets through
        await carl.frame(lambda f: f["type"] == "state" and f["state"] == "paused"
                         and f["reason"] == "meeting", timeout=60, after=n)
    finally:
        await carl.close()
        await stop_gateway(service)
