"""Screen-pop latency: from the AMI ``AgentCalled`` bytes entering the gateway's AMI parser to the
pop frame written on that agent's websocket, with many agents connected and bursts of calls.

What runs: the real AMI connector (its parser and dispatch), the real call tracker, the real
CTI component (agent registry, customer lookup against SQLite, pop building, websocket hub,
audit writer) and aiohttp serving real websockets. The other side runs in a child process
(:mod:`bench.screenpop.driver`): a fake AMI server that plays the calls, and one real websocket
client per agent. Each round, every agent gets one call: the callers' ``Newchannel`` and
``QueueCallerJoin`` arrive, then after ``--ring-delay-ms`` all ``AgentCalled`` frames in one
write (a burst), then the calls end.

Figures, per pop (warm-up round excluded):

- ``written``: AMI bytes in -> first pop frame for that call written on the agent's socket;
- ``complete``: AMI bytes in -> first pop frame with the customer lookup done (the first
  frame is already complete when the lookup, started at ``Newchannel``, beat the ring);
- ``received``: the same, as the agent's websocket client read it (other process, same
  monotonic clock; includes the client process's own queueing of a 200-frame burst);
- CPU: the gateway process's CPU time (all threads, incl. SQLite's) over the measured rounds
  divided by the pops, and the AMI callback's own CPU for ``AgentCalled`` (the hot path).

The instrumentation (a timestamp per read in the parser, one per written frame) is included.
Call records are not saved (that is not pop work). Results: printed and written as JSON to
``bench/results/screenpop-*.json``.

Run: ``python -m bench.screenpop [--agents 200] [--rounds 6] [--ring-delay-ms 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

import gateway.ami.client as ami_client
from cti.auth import hash_password, token_hash
from cti.component import CTIComponent
from cti.importer import import_customers
from cti.orm import CustomerPhoneRow, InteractionRow, TokenRow, UserQueueRow, UserRow
from gateway.ami.protocol import Event, Parser
from gateway.ari.client import ARIClient
from gateway.bus import Bus
from gateway.calls.store import CallStore
from gateway.calls.tracker import CallTracker
from gateway.component import GatewayContext
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.http.app import create_app
from gateway.settings import Settings

RESULTS = Path(__file__).resolve().parent.parent / "results"
T0: dict[str, float] = {}


class TimedParser(Parser):
    """Stamps each read as it enters the parser; remembers it for every AgentCalled in it."""

    def feed(self, data: bytes):
        t = time.perf_counter()
        out = super().feed(data)
        for m in out:
            if type(m) is Event and m.name == "AgentCalled":
                T0[m.get("Linkedid")] = t
        return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p90_ms": round(pct(ms, 90), 3),
            "p99_ms": round(pct(ms, 99), 3), "max_ms": round(max(ms), 3) if ms else None,
            "mean_ms": round(statistics.fmean(ms), 3) if ms else None}


async def prepare(url: str, agents: list[str], customers: int) -> tuple[list[str], list[str]]:
    """Users with tokens, customers with three past calls each; returns tokens and numbers."""
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    numbers = [f"+39 02 {1000000 + i}" for i in range(customers)]
    csv = "name,phones,segment,language,notes\n" + "".join(
        f"Cliente {i},{n},{'gold' if i % 5 == 0 else 'standard'},it,note {i}\n"
        for i, n in enumerate(numbers))
    report = await import_customers(sessions, csv.encode())
    assert report.added == customers, report.errors[:3]
    pw = await hash_password("bench password")
    now = datetime.now(UTC)
    tokens = [secrets.token_urlsafe(32) for _ in agents]
    async with sessions.begin() as s:
        for name, tok in zip(agents, tokens, strict=True):
            u = UserRow(username=name, password_hash=pw, role="agent", team="bench",
                        endpoint=name, disabled=False, created_at=now, password_changed_at=now)
            s.add(u)
            await s.flush()
            s.add(UserQueueRow(user_id=u.id, queue="billing"))
            s.add(TokenRow(token_hash=token_hash(tok), user_id=u.id, created_at=now,
                           expires_at=now + timedelta(hours=2)))
        owners = dict((await s.execute(select(CustomerPhoneRow.e164,
                                              CustomerPhoneRow.customer_id))).all())
        for e164, cid in owners.items():
            for k in range(3):
                s.add(InteractionRow(linkedid=f"old-{cid}-{k}", at=now - timedelta(days=k * 3 + 1),
                                     customer_id=cid, caller_number=e164, intent="billing",
                                     queue="billing", agent="someone", disposition="resolved",
                                     outcome="resolved", notes=f"earlier call {k}",
                                     repeat_contact=False))
    await engine.dispose()
    return tokens, numbers


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="screenpop-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    agents = [f"bench{i:03d}" for i in range(1, args.agents + 1)]
    driver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.screenpop.driver", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, limit=1 << 26)

    async def hear() -> dict:
        line = await driver.stdout.readline()
        if not line:
            raise RuntimeError("the driver process died")
        return json.loads(line)

    def say(obj: dict) -> None:
        driver.stdin.write((json.dumps(obj) + "\n").encode())

    ami_port = (await hear())["ami_port"]
    tokens, numbers = await prepare(url, agents, args.customers)
    settings = Settings(data_dir=tmp, database={"url": url},
                        http={"host": "127.0.0.1", "port": 0},
                        asterisk={"host": "127.0.0.1", "ami_port": ami_port,
                                  "ami_password": "bench"},
                        ami={"keepalive_interval_s": 3600})
    ami_client.Parser = TimedParser
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    ami = ami_client.AMIClient(settings)
    tracker = CallTracker()
    ami.on_event(tracker.handle)  # as the service does, before any component
    app = create_app({})
    ctx = GatewayContext(settings=settings, ami=ami, ari=ARIClient(settings), engine=engine,
                         sessions=sessions, calls=CallStore(sessions), tracker=tracker,
                         bus=Bus(), app=app, readiness={})
    cti = CTIComponent()
    ctx.components["cti"] = cti
    cti.setup(ctx)
    hot = [0.0, 0]
    inner = cti._ami_handlers["AgentCalled"]

    def timed(ev, inner=inner):
        t = time.thread_time()
        inner(ev)
        hot[0] += time.thread_time() - t
        hot[1] += 1

    cti._ami_handlers["AgentCalled"] = timed
    written: dict[str, float] = {}
    complete: dict[str, float] = {}

    def on_sent(conn, text: str) -> None:
        if text.startswith('{"type": "pop"'):
            t = time.perf_counter()
            i = text.find('"linkedid": "') + 13
            lid = text[i:text.find('"', i)]
            written.setdefault(lid, t)
            if '"match": "loading"' not in text:
                complete.setdefault(lid, t)

    cti.hub.on_sent = on_sent
    await ami.connect()
    await cti.start()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    say({"http_port": port, "agents": agents, "tokens": tokens,
         "numbers": numbers})
    assert (await hear())["connected"] == len(agents)
    warm = 1
    say({"rounds": args.rounds + warm, "burst": len(agents),
         "ring_delay_ms": args.ring_delay_ms})
    cpu0 = hot0 = None
    while True:
        msg = await hear()
        if msg.get("round") == warm - 1:
            cpu0, hot0 = time.process_time(), tuple(hot)
            written_before = set(written)
        if msg.get("done"):
            cpu = time.process_time() - cpu0
            break
    measured = [lid for lid in written if lid not in written_before]
    await runner.cleanup()
    await cti.stop()
    await ami.close()
    await engine.dispose()
    await driver.wait()
    recv_first, recv_complete = msg["first"], msg["complete"]
    pops = len(measured)
    ms = lambda a, b: [(a[lid] - b[lid]) * 1000 for lid in measured if lid in a]
    first_complete = sum(1 for lid in measured if complete.get(lid) == written[lid])
    hot_n = hot[1] - hot0[1]
    return {
        "bench": "screenpop",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "config": {"agents": len(agents), "rounds": args.rounds, "burst": len(agents),
                   "ring_delay_ms": args.ring_delay_ms, "customers": args.customers,
                   "database": "sqlite"},
        "pops": pops,
        "written": summary(ms(written, T0)),
        "complete": summary(ms(complete, T0)),
        "received": summary(ms({k: v for k, v in recv_first.items()}, T0)),
        "received_complete": summary(ms({k: v for k, v in recv_complete.items()}, T0)),
        "first_frame_complete_pct": round(100 * first_complete / pops, 1) if pops else None,
        "cpu_ms_per_pop": round(cpu * 1000 / pops, 3) if pops else None,
        "hot_path_us_per_agentcalled": round((hot[0] - hot0[0]) * 1e6 / hot_n, 1)
        if hot_n else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=6, help="measured rounds (one call per agent)")
    ap.add_argument("--ring-delay-ms", type=float, default=20.0,
                    help="time from the caller joining the queue to AgentCalled")
    ap.add_argument("--customers", type=int, default=5000)
    args = ap.parse_args()
    res = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"screenpop-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    w, c, r = res["written"], res["complete"], res["received"]
    print(f"screen pop, {res['config']['agents']} agents connected, bursts of "
          f"{res['config']['burst']} calls, {res['pops']} pops measured")
    print(f"  AgentCalled bytes in -> pop written:      p50 {w['p50_ms']:.2f} ms  "
          f"p99 {w['p99_ms']:.2f} ms  max {w['max_ms']:.2f} ms")
    print(f"  AgentCalled bytes in -> complete pop:     p50 {c['p50_ms']:.2f} ms  "
          f"p99 {c['p99_ms']:.2f} ms  ({res['first_frame_complete_pct']}% of first frames "
          "already had the customer)")
    print(f"  AgentCalled bytes in -> client received:  p50 {r['p50_ms']:.2f} ms  "
          f"p99 {r['p99_ms']:.2f} ms")
    print(f"  gateway CPU per pop: {res['cpu_ms_per_pop']:.3f} ms (all work, all threads); "
          f"AgentCalled callback: {res['hot_path_us_per_agentcalled']} us")
    print(f"  -> {out}")


if __name__ == "__main__":
    main()
