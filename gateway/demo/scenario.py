"""The demo: real SIP callers talk to the speech IVR, agents' phones ring with a screen pop.

Everything is real and on this machine: the Asterisk sandbox, the gateway with all its parts on
SQLite, pjsua2 phones for callers and agents, espeak-ng voices saying what the caller needs.
The agents use the same HTTP and websocket API as the desktop in a browser, so what the demo
prints is what an agent would see: the pop arrives while their phone still rings.

Each call: the caller dials the IVR (100) and barges in on the welcome prompt by voice or key;
the IVR routes to a queue; the agent's phone rings, the pop arrives, the agent answers, puts the
caller on hold for a moment, the caller hangs up, the agent wraps up. The last caller rings
again about the same thing, which the pop flags as a repeat contact.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from gateway.service import GatewayService
from gateway.settings import Settings

AGENTS = {  # username -> (phone, queues they serve)
    "alice": ("agent1", ("billing", "lost_card")),
    "bob": ("agent2", ("tech_support", "customer_care")),
}
STAFF = {"sue": ("supervisor", "red"), "max": ("manager", None)}


@dataclass(frozen=True)
class Scene:
    caller: str  # site phone presenting a caller ID
    who: str
    say: str | None = None
    keys: str | None = None
    talk_s: float = 3.0
    hold_s: float = 1.5
    wrap_s: float = 2.0
    disposition: str = "resolved"
    notes: str = ""


SCENES = (
    Scene("demo1", "Mario Rossi", say="I lost my card", notes="Card blocked, new one sent"),
    Scene("demo2", "Giulia Bianchi", keys="1", notes="Explained the invoice"),
    Scene("demo3", "an unknown caller", say="my internet is not working",
          disposition="escalated", notes="Line test booked"),
    Scene("demo1", "Mario Rossi, again", say="my card was stolen", notes="Second card blocked"),
)


@dataclass
class Outcome:
    scene: Scene
    linkedid: str | None = None
    pop: dict[str, Any] | None = None
    pop_before_answer_ms: float | None = None
    agent: str | None = None
    error: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)


class Desk:
    """One person at the gateway's API: a token, and for agents the desktop's websocket."""

    def __init__(self, http: aiohttp.ClientSession, base: str, username: str) -> None:
        self.http, self.base, self.username = http, base, username
        self.token = ""
        self.pops: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ws_task: asyncio.Task | None = None

    async def login(self, password: str) -> None:
        async with self.http.post(f"{self.base}/api/v1/auth/login",
                                  json={"username": self.username, "password": password}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login {self.username}: {r.status} {body}")
            self.token = body["token"]

    async def api(self, method: str, path: str, body: dict | None = None) -> Any:
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {self.token}"}) as r:
            data = await r.json(content_type=None)
            if r.status >= 400:
                raise RuntimeError(f"{method} {path} as {self.username}: {r.status} {data}")
            return data

    async def open_desktop(self) -> None:
        ws = await self.http.ws_connect(self.base.replace("http", "ws", 1) + "/api/v1/ws")
        await ws.send_json({"type": "auth", "token": self.token})

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    if frame.get("type") == "pop":
                        frame["_at"] = time.monotonic()
                        self.pops.put_nowait(frame)

        self._ws_task = asyncio.create_task(read())
        self._ws = ws

    async def close(self) -> None:
        if self._ws_task:
            await self._ws.close()
            self._ws_task.cancel()


def _credentials(path: Path) -> dict[str, str]:
    """Demo passwords: generated once, kept 0600 beside the demo database."""
    creds = json.loads(path.read_text()) if path.exists() else {}
    for name in [*AGENTS, *STAFF]:
        creds.setdefault(name, secrets.token_urlsafe(9))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    return creds


async def seed(service: GatewayService, creds: dict[str, str]) -> str:
    """Users and customers (idempotent: a second demo run keeps the history of the first)."""
    from cti.auth import UserError, add_user
    from cti.importer import import_customers
    from cti.site import site_names

    sessions = service.ctx.sessions
    site = site_names(service.settings)
    for name, (phone, queues) in AGENTS.items():
        try:
            await add_user(sessions, name, "agent", creds[name], team="red", endpoint=phone,
                           queues=queues, site=site)
        except UserError as exc:
            if "already exists" not in str(exc):
                raise
    for name, (role, team) in STAFF.items():
        try:
            await add_user(sessions, name, role, creds[name], team=team, site=site)
        except UserError as exc:
            if "already exists" not in str(exc):
                raise
    data = resources.files("gateway.demo").joinpath("customers.csv").read_bytes()
    report = await import_customers(sessions, data, "customers.csv")
    return f"{report.rows} customers loaded"


async def run(settings: Settings, echo: Callable[[str], None], keep: bool) -> list[Outcome]:
    from gateway.sandbox.instance import Sandbox
    from gateway.sip import CallState, PhoneHost
    from gateway.sip.audio import tts_wav_async

    sb = Sandbox(settings.model_copy(update={"asterisk": settings.asterisk.model_copy(
        update={"instance": "demo"})}))
    echo("Starting Asterisk 22 (sandbox, 127.0.0.1 only)...")
    eff = (await asyncio.to_thread(sb.up)).model_copy(
        update={"data_dir": settings.data_dir / "demo"})
    service = GatewayService(eff)
    outcomes: list[Outcome] = []
    try:
        await service.start()
        echo(f"Gateway up on {service.base_url} (SQLite: {eff.database_url})")
        creds = _credentials(eff.data_dir / "demo-users.json")
        echo(await seed(service, creds))
        a = eff.asterisk
        async with aiohttp.ClientSession() as http, PhoneHost() as agent_phones, \
                PhoneHost() as caller_phones:
            desks = {}
            for name, (phone, _) in AGENTS.items():
                await agent_phones.register(phone, sb.phone_password(phone), a.host, a.sip_port)
                d = desks[name] = Desk(http, service.base_url, name)
                await d.login(creds[name])
                await d.open_desktop()
                await d.api("POST", "/api/v1/agent/login", {})
            echo("Agents alice (billing, lost cards) and bob (support, customer care) logged in.\n")
            for s in {s.caller for s in SCENES}:
                await caller_phones.add_account(s, sb.phone_password(s), a.host, a.sip_port,
                                                register=False)
            for i, scene in enumerate(SCENES, 1):
                echo(f"Call {i}: {scene.who} dials the IVR and "
                     + (f'says "{scene.say}"' if scene.say else f"presses {scene.keys}"))
                o = await _one_call(scene, service, caller_phones, agent_phones, desks,
                                    tts_wav_async, CallState)
                outcomes.append(o)
                echo(_describe(o))
            await asyncio.sleep(1.5)  # the last records and metrics settle
            for o in outcomes:
                if o.linkedid:
                    o.quality = await _quality(http, service, creds, o.linkedid)
            manager = Desk(http, service.base_url, "max")
            await manager.login(creds["max"])
            overview = await manager.api("GET", "/api/v1/dashboards/overview")
            echo(_summary(outcomes, overview))
            if keep:
                echo(f"\nStill running (Ctrl-C to stop). Open {service.base_url}/desktop/ as "
                     f"alice / {creds['alice']}, {service.base_url}/dashboards/ as max / "
                     f"{creds['max']}, {service.base_url}/dashboards/coaching as sue / {creds['sue']}."
                     f"\nDial in with any SIP phone on {a.host}:{a.sip_port} (passwords in "
                     f"{sb.state_dir / 'credentials.json'}).")
                await asyncio.Event().wait()
            for d in desks.values():
                await d.close()
    finally:
        await service.stop()
        await asyncio.to_thread(sb.down)
        echo("Asterisk sandbox stopped.")
    return outcomes


async def _one_call(scene, service, callers, agents, desks, tts, CallState) -> Outcome:
    o = Outcome(scene)
    try:
        call = await callers.call(scene.caller, "100")
        await callers.wait_for_state(call, CallState.CONFIRMED, timeout=20)
        await asyncio.sleep(1.5)  # the welcome prompt is playing: barge in
        if scene.say:
            await (await callers.play(call, await tts(scene.say))).wait(timeout=15)
        else:
            await callers.send_dtmf(call, scene.keys)
        waits = {asyncio.create_task(agents.wait_for_incoming(phone, timeout=60)): name
                 for name, (phone, _) in AGENTS.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        first = done.pop()
        inc = first.result()
        o.agent = waits[first]
        desk = desks[o.agent]
        await asyncio.sleep(1.0)  # a ring or two before the agent picks up
        answered_at = time.monotonic()
        await agents.answer(inc)
        while not desk.pops.empty():
            pop = desk.pops.get_nowait()
            if pop.get("status") == "ringing" and o.pop is None:
                o.pop, o.linkedid = pop, pop["linkedid"]
                o.pop_before_answer_ms = (answered_at - pop["_at"]) * 1000
        await agents.wait_for_state(inc, CallState.CONFIRMED, timeout=10)
        await asyncio.sleep(scene.talk_s / 2)
        await agents.hold(inc)
        await asyncio.sleep(scene.hold_s)
        await agents.unhold(inc)
        await asyncio.sleep(scene.talk_s / 2)
        await callers.hangup(call)
        await asyncio.sleep(scene.wrap_s)
        if o.linkedid:
            await desk.api("POST", "/api/v1/agent/wrapup", {
                "linkedid": o.linkedid, "disposition": scene.disposition, "notes": scene.notes})
    except Exception as exc:  # noqa: BLE001 - the demo goes on with the next call and says what went wrong
        o.error = f"{type(exc).__name__}: {exc}"
    return o


async def _quality(http, service, creds, linkedid) -> dict[str, Any]:
    d = Desk(http, service.base_url, "max")
    await d.login(creds["max"])
    for _ in range(20):
        try:
            return await d.api("GET", f"/api/v1/quality/calls/{linkedid}")
        except RuntimeError:
            await asyncio.sleep(0.5)
    return {}


def _describe(o: Outcome) -> str:
    if o.error:
        return f"   ! {o.error}\n"
    p = o.pop or {}
    ivr = p.get("ivr") or {}
    cust = (p.get("customer") or {}).get("name") or p.get("match", "?")
    lines = [
        (f"   IVR: intent {ivr.get('intent')} (confidence {ivr.get('confidence')}, by "
        f"{ivr.get('via')}), queue {p.get('queue')}"),
        (f"   {o.agent}'s desktop popped {o.pop_before_answer_ms or 0:.0f} ms before the answer: "
        f"{cust}; last contacts: {len(p.get('history') or [])}; repeat contact: "
        f"{'yes' if p.get('repeat_contact') else 'no'}"),
    ]
    if ivr.get("transcript"):
        lines.insert(1, f'   transcript: "{ivr["transcript"]}"')
    return "\n".join(lines) + "\n"


def _summary(outcomes: list[Outcome], overview: dict[str, Any]) -> str:
    rows = ["Per call (what a supervisor's coaching view and the records hold):",
            (f"   {'caller':22s} {'intent':13s} {'queue':13s} {'agent':6s} {'MOS':>4s} "
            f"{'talk':>5s} {'hold':>5s} {'ACW':>5s} {'AHT':>5s}")]
    for o in outcomes:
        c = (o.quality or {}).get("call") or {}
        rows.append(
            f"   {o.scene.who[:22]:22s} {c.get('intent') or '-'!s:13s} "
            f"{c.get('queue') or '-'!s:13s} {o.agent or '-'!s:6s} "
            f"{_f(c.get('mos_min'), 4, 2)} {_f(c.get('talk_s'), 5, 1)} {_f(c.get('hold_s'), 5, 1)} "
            f"{_f(c.get('acw_s'), 5, 1)} {_f(c.get('aht_s'), 5, 1)}")
    t = overview.get("totals") or overview
    rows.append("\nManager's overview (aggregates only, no agent names): "
                + json.dumps({k: t[k] for k in list(t)[:8]} if isinstance(t, dict) else t))
    return "\n".join(rows)


def _f(v: Any, w: int, nd: int) -> str:
    return f"{v:{w}.{nd}f}" if isinstance(v, (int, float)) else f"{'-':>{w}s}"
