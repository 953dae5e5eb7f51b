"""Who may call what: every CTI endpoint against every role, no token, and the websocket."""

from __future__ import annotations

import aiohttp
import pytest

from cti.auth import ROLES
from tests.integration.test_cti_support import Desk, eventually, start_gateway, stop_gateway

pytestmark = pytest.mark.integration

USER_OF = {"agent": "alice", "supervisor": "sue", "manager": "max", "admin": "root"}
MANAGERS = ("manager", "admin")
# (method, path, body, roles the guard lets through). Bodies are chosen to stop at validation,
# so an allowed call changes nothing in Asterisk.
RULES = [
    ("GET", "/api/v1/me", None, ROLES),
    ("GET", "/api/v1/agent/config", None, ("agent",)),
    ("GET", "/api/v1/agent/state", None, ("agent",)),
    ("POST", "/api/v1/agent/login", {"queues": "billing"}, ("agent",)),
    ("POST", "/api/v1/agent/pause", {"reason": "nap"}, ("agent",)),
    ("POST", "/api/v1/agent/ready", None, ("agent",)),
    ("POST", "/api/v1/agent/logout", None, ("agent",)),
    ("POST", "/api/v1/agent/wrapup", {}, ("agent",)),
    ("GET", "/api/v1/customers?q=Mario", None, MANAGERS),
    ("GET", "/api/v1/customers/1/history", None, MANAGERS),  # no call of theirs: 403 for others
    ("POST", "/api/v1/cases/1/close", None, MANAGERS),
    ("GET", "/api/v1/team/agents", None, ("supervisor", *MANAGERS)),
    ("GET", "/api/v1/audit/history-views", None, MANAGERS),
    # the quality engineer's dashboards: never an agent's (the desktop does not call them)
    ("GET", "/api/v1/dashboards/overview", None, MANAGERS),
]


@pytest.fixture
async def gateway(sandbox, tmp_path):
    service = await start_gateway(sandbox, tmp_path)
    try:
        yield service
    finally:
        await stop_gateway(service)


async def _call(http, base, method, path, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, base + path, json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_every_endpoint_against_every_role(gateway):
    desks = {role: await Desk.login(gateway.base_url, user) for role, user in USER_OF.items()}
    failures = []
    try:
        async with aiohttp.ClientSession() as http:
            for method, path, body, allowed in RULES:
                status, data = await _call(http, gateway.base_url, method, path, body)
                if status != 401 or "error" not in data:
                    failures.append((path, "no token", status))
                status, _ = await _call(http, gateway.base_url, method, path, body, "forged")
                if status != 401:
                    failures.append((path, "forged token", status))
                for role, desk in desks.items():
                    status, data = await _call(http, gateway.base_url, method, path, body,
                                               desk.token)
                    ok = status not in (401, 403)
                    if ok != (role in allowed) or (not ok and "error" not in data):
                        failures.append((path, role, status, data))
    finally:
        for d in desks.values():
            await d.close()
    assert failures == []


async def test_a_supervisor_sees_only_their_team_and_states_carry_no_kpis(gateway):
    sue, max_ = await Desk.login(gateway.base_url, "sue"), await Desk.login(gateway.base_url, "max")
    try:
        status, body = await sue.get("/api/v1/team/agents")
        assert status == 200
        assert sorted(a["agent"] for a in body["agents"]) == ["alice", "carl"]  # team red
        status, body = await max_.get("/api/v1/team/agents")
        assert sorted(a["agent"] for a in body["agents"]) == ["alice", "bob", "carl"]
        assert set(body["agents"][0]) == {"agent", "endpoint", "team", "state", "reason",
                                          "queues", "allowed_queues", "paused", "wrapup",
                                          "calls", "offered", "version"}
        # version is one sequence for all agents (ordering only), never a count of anyone's work
        alice = next(a for a in body["agents"] if a["agent"] == "alice")
        bob = next(a for a in body["agents"] if a["agent"] == "bob")
        assert alice["version"] != bob["version"] or alice["version"] == 0
    finally:
        await sue.close()
        await max_.close()


async def test_the_websocket_wants_a_token_in_its_first_message_and_ends_with_it(gateway):
    ws_url = gateway.base_url.replace("http", "ws", 1) + "/api/v1/ws"
    async with aiohttp.ClientSession() as http:
        for first in ({"type": "hello"}, {"type": "auth", "token": "forged"}, "not json"):
            async with http.ws_connect(ws_url) as ws:
                await (ws.send_str(first) if isinstance(first, str) else ws.send_json(first))
                msg = await ws.receive(timeout=20)
                assert msg.type == aiohttp.WSMsgType.TEXT and "error" in msg.json()
                await ws.receive(timeout=20)
                assert ws.close_code == 4401
        # a token in the URL is not a way in
        alice = await Desk.login(gateway.base_url, "alice")
        try:
            async with http.ws_connect(ws_url + f"?token={alice.token}") as ws:
                await ws.send_json({"type": "ping"})
                await ws.receive(timeout=20)
                await ws.receive(timeout=20)
                assert ws.close_code == 4401
            # logging out closes the open desktop at once
            hello = await alice.connect()
            assert hello["username"] == "alice" and hello["role"] == "agent"
            assert (await alice.post("/api/v1/auth/logout"))[0] == 200
            await eventually(lambda: alice.ws.closed, what="the desktop's socket to close")
            assert alice.ws.close_code == 4401
        finally:
            await alice.close()


async def test_an_open_desktop_closes_when_its_user_is_disabled_elsewhere(sandbox, tmp_path):
    from cti.auth import disable_user

    service = await start_gateway(sandbox, tmp_path, auth={"ws_recheck_s": 0.5,
                                                           "principal_cache_s": 0.0})
    alice = await Desk.login(service.base_url, "alice")
    try:
        await alice.connect()
        await disable_user(service.ctx.sessions, "alice")  # as `centralino users disable` does
        await eventually(lambda: alice.ws.closed, what="the desktop's socket to close")
        assert alice.ws.close_code == 4401
        assert (await alice.get("/api/v1/me"))[0] == 401
    finally:
        await alice.close()
        await stop_gateway(service)
