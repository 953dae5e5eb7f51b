"""Who may see which figures, enforced by the gateway itself (the real CTI auth, real HTTP).

Every dashboard, coaching and quality endpoint is walked with every kind of caller: anonymous
and bad tokens get 401, agents 403 everywhere, a supervisor sees their own team only, managers
and admins get their 200. ``/metrics`` carries aggregate series only.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from cti.auth import add_user
from cti.component import CTIComponent
from gateway.calls.model import CallEvent, CallRecord, Kind, Leg
from gateway.events import CallSaved
from gateway.quality.api import ROUTES
from gateway.quality.component import QualityComponent
from gateway.service import GatewayService

# One gateway for the whole table: its event loop lives as long as the module.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PW = "correct horse battery"
USERS = {  # name: (role, team, phone)
    "anna": ("agent", "red", "agent1"), "bruno": ("agent", "red", "agent2"),
    "carla": ("agent", "blue", "agent3"), "sara": ("supervisor", "red", None),
    "sam": ("supervisor", "blue", None), "nora": ("supervisor", None, None),
    "mike": ("manager", None, None), "ada": ("admin", None, None),
}
MANAGERS_ONLY = {p for p, roles in ROUTES.items() if "supervisor" not in roles}
RED_CALL, BLUE_CALL = "1700000000.1", "1700000000.2"


def call(lid: str, agent_phone: str, member: str, *, hold_s: float, intent: str) -> CallRecord:
    t0 = datetime.now(UTC) - timedelta(hours=1)
    at = lambda s: t0 + timedelta(seconds=s)
    c = CallRecord(lid, t0, caller_number="+393351234567", queue="billing", agent=member,
                   intent=intent)
    c.legs = [Leg(lid, "PJSIP/caller1-1", "caller1", "inbound", t0, "ulaw", t0, at(100)),
              Leg(lid + "1", f"PJSIP/{agent_phone}-2", agent_phone, "outbound", at(5), "ulaw",
                  at(8), at(100))]
    c.timeline = [CallEvent(t0, Kind.START), CallEvent(t0, Kind.QUEUE_JOIN, {"queue": "billing"}),
                  CallEvent(at(5), Kind.AGENT_OFFERED, {"agent": member}),
                  CallEvent(at(8), Kind.AGENT_CONNECTED, {"agent": member}),
                  CallEvent(at(10), Kind.HOLD_ON, {"channel": f"PJSIP/{agent_phone}-2"}),
                  CallEvent(at(10 + hold_s), Kind.HOLD_OFF, {"channel": f"PJSIP/{agent_phone}-2"}),
                  CallEvent(at(100 + hold_s), Kind.AGENT_COMPLETE, {"agent": member}),
                  CallEvent(at(100 + hold_s), Kind.HANGUP), CallEvent(at(100 + hold_s), Kind.END)]
    c.ended_at = at(100 + hold_s)
    return c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(sandbox, tmp_path_factory):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("roles"),
        "http": s.http.model_copy(update={"port": 0}),
        "quality": s.quality.model_copy(update={"cti_wait_s": 0.5})}),
        components=[CTIComponent(), QualityComponent()])
    await service.start()
    try:
        for name, (role, team, phone) in USERS.items():
            await add_user(service.ctx.sessions, name, role, PW, team=team, endpoint=phone)
        quality = service.ctx.component("quality")
        # Two calls flagged for review (long hold), one per team, through the component's own
        # CallSaved path; the blue one's intent would run as a formula in a spreadsheet.
        service.bus.publish(CallSaved(call(RED_CALL, "agent1", "anna", hold_s=200,
                                           intent="lost_card")))
        service.bus.publish(CallSaved(call(BLUE_CALL, "agent3", "carla", hold_s=300,
                                           intent="=HYPERLINK(\"x\")")))
        await service.bus.drain()
        assert (await quality.store.metrics(RED_CALL)).team == "red"
        tokens = {}
        async with aiohttp.ClientSession() as http:
            for name in USERS:
                async with http.post(f"{service.base_url}/api/v1/auth/login",
                                     json={"username": name, "password": PW}) as r:
                    assert r.status == 200, await r.text()
                    tokens[name] = (await r.json())["token"]
        service.tokens = tokens
        yield service
    finally:
        await service.stop()


def url(path: str, who: str | None) -> str:
    path = path.replace("{username}", "anna").replace("{linkedid}", RED_CALL)
    if path == "/api/v1/coaching/reviews" and who in ("mike", "ada"):
        path += "?team=red"
    return path


async def get(gw, path: str, who: str | None, token: str | None = None):
    headers = {}
    if who is not None:
        headers["Authorization"] = f"Bearer {token or gw.tokens[who]}"
    async with aiohttp.ClientSession() as http, \
            http.get(gw.base_url + path, headers=headers) as r:
        return r.status, await r.read(), r.headers


async def test_the_route_table_lists_every_guarded_route(gw):
    served = {r.resource.canonical for r in gw.ctx.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith(
                  ("/api/v1/dashboards", "/api/v1/coaching", "/api/v1/quality"))}
    assert served == set(ROUTES)


CASES = [  # who, expected status for a manager-only route, for a supervisor route
    (None, 401, 401), ("anna", 403, 403), ("carla", 403, 403), ("sara", 403, 200),
    ("mike", 200, 200), ("ada", 200, 200),
]


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize("who, managers_only, supervisor_route", CASES)
async def test_every_endpoint_answers_each_role_as_specified(gw, path, who, managers_only,
                                                            supervisor_route):
    status, body, _ = await get(gw, url(path, who), who)
    expected = managers_only if path in MANAGERS_ONLY else supervisor_route
    assert status == expected, (path, who, body[:200])
    if status in (401, 403):
        assert b'"error"' in body


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_an_unknown_or_revoked_token_is_401(gw, path):
    status, _, headers = await get(gw, url(path, "mike"), "mike", token="not-a-token")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"


async def test_the_overview_answers_a_manager_and_refuses_an_agent(gw):
    status, body, _ = await get(gw, "/api/v1/dashboards/overview", "mike")
    assert status == 200
    import json
    data = json.loads(body)
    assert data["totals"]["calls"] == 2 and "agent" not in json.dumps(data)
    assert (await get(gw, "/api/v1/dashboards/overview", "anna"))[0] == 403


@pytest.mark.parametrize("path", [
    "/api/v1/coaching/reviews?team=blue",  # another team, named
    "/api/v1/coaching/agents/carla",  # an agent of another team
    f"/api/v1/quality/calls/{BLUE_CALL}",  # a call of another team
])
async def test_a_supervisor_of_team_red_cannot_see_team_blue(gw, path):
    status, body, _ = await get(gw, path, "sara")
    assert status == 403, body
    assert (await get(gw, path, "sam"))[0] == 200  # blue's own supervisor can


async def test_a_supervisor_without_a_team_sees_nothing(gw):
    for path in ("/api/v1/coaching/reviews", "/api/v1/coaching/agents/anna",
                 f"/api/v1/quality/calls/{RED_CALL}"):
        assert (await get(gw, path, "nora"))[0] == 403


async def test_the_coaching_view_lists_calls_with_reasons_and_agents_alphabetically(gw):
    import json
    status, body, _ = await get(gw, "/api/v1/coaching/reviews", "sara")
    data = json.loads(body)
    assert status == 200 and data["team"] == "red"
    assert [c["linkedid"] for c in data["calls"]] == [RED_CALL]
    assert data["calls"][0]["reasons"][0]["code"] == "long_hold"
    assert data["agents"] == sorted(data["agents"]) == ["anna", "bruno"]
    status, body, _ = await get(gw, "/api/v1/coaching/agents/anna", "sara")
    detail = json.loads(body)
    assert detail["agent"] == "anna" and detail["figures"]["answered"] == 1
    assert "rank" not in body.decode()


async def test_a_manager_must_name_a_team_for_the_coaching_view(gw):
    assert (await get(gw, "/api/v1/coaching/reviews", "mike"))[0] == 400


async def test_csv_export_is_aggregate_and_defuses_formulas(gw):
    status, body, headers = await get(gw, "/api/v1/dashboards/export.csv?report=intent", "ada")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert {r["intent"] for r in rows} == {"lost_card", "'=HYPERLINK(\"x\")"}
    assert not any("agent" in k for k in rows[0])
    assert (await get(gw, "/api/v1/dashboards/export.csv?report=people", "ada"))[0] == 400
    assert (await get(gw, "/api/v1/dashboards/overview?days=0", "ada"))[0] == 400


async def test_metrics_has_aggregate_series_and_no_per_agent_labels(gw):
    status, body, _ = await get(gw, "/metrics", None)
    text = body.decode()
    assert status == 200
    assert 'centralino_calls_total{intent="lost_card",queue="billing"} 1.0' in text
    assert "centralino_call_mos_bucket" in text and "centralino_active_calls" in text
    assert 'centralino_link_up{link="ami"} 1.0' in text
    labels = set(re.findall(r'[{,]([a-z_]+)="', text))
    assert labels <= {"queue", "intent", "link", "le"}, labels
    for secret in ("anna", "carla", "agent1", "agent3", "3351234567", RED_CALL):
        assert secret not in text
    values = set(re.findall(r'="([^"]*)"', text))
    assert not values & {"red", "blue", "sara", "mike"}, values


async def test_pages_are_served_with_a_strict_csp_and_vendored_chartjs(gw):
    status, body, headers = await get(gw, "/dashboards/", None)
    csp = headers["Content-Security-Policy"]
    assert status == 200 and b"<canvas" in body
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert b"http://" not in body and b"https://" not in body  # no CDN
    status, js, _ = await get(gw, "/dashboards/static/chart.umd.min.js", None)
    assert status == 200 and js.startswith(b"/*!\n * Chart.js v4.6.1")
    assert (await get(gw, "/dashboards/coaching", None))[0] == 200
    assert (await get(gw, "/dashboards/static/..%2Fapi.py", None))[0] == 404
    assert (await get(gw, "/dashboards/static/api.py", None))[0] == 404
