"""Nothing crosses Asterisk unrecorded, even while the gateway is cut off or stopped.

The AMI link runs through a proxy the test cuts: calls end, start and end, or start and go on
while the gateway is blind; after the link comes back each has exactly one record, with its
true end taken from Asterisk's CEL trail.
"""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from gateway.calls.cel import CelReader
from gateway.calls.model import Kind
from gateway.db.migrate import upgrade
from gateway.sandbox.instance import Sandbox
from gateway.service import GatewayService
from tests.support.tcpproxy import CuttableProxy

pytestmark = pytest.mark.integration


def settings_for(sandbox, tmp_path, db_url, ami_port=None):
    s = sandbox.settings
    return s.model_copy(update={
        "data_dir": tmp_path, "database": s.database.model_copy(update={"url": db_url}),
        "http": s.http.model_copy(update={"port": 0}),
        "asterisk": s.asterisk.model_copy(update={"ami_port": ami_port or s.asterisk.ami_port}),
        "ami": s.ami.model_copy(update={"reconnect_initial_s": 0.2, "reconnect_max_s": 0.5,
                                        "keepalive_interval_s": 1.0, "action_timeout_s": 2.0})})


async def wait_for(cond, timeout=30.0):
    for _ in range(int(timeout * 10)):
        if await cond():
            return True
        await asyncio.sleep(0.1)
    return False


async def records(service, since):
    """This test's calls: the shared sandbox's earlier calls may be rebuilt too, rightly."""
    async with service.engine.connect() as conn:
        lids = [r[0] for r in await conn.execute(text("SELECT linkedid FROM calls"))]
    calls = [await service.store.get(lid) for lid in lids]
    return [c for c in calls if c.started_at >= since]


async def test_calls_during_a_network_cut_get_one_record_each_with_their_true_end(
        sandbox, db_url, tmp_path):
    t0 = datetime.now(UTC)
    proxy = CuttableProxy(sandbox.settings.asterisk.host, sandbox.settings.asterisk.ami_port)
    await proxy.start()
    service = GatewayService(settings_for(sandbox, tmp_path, db_url, proxy.port), components=[])
    await service.start()
    try:
        await service.ami.action("Originate", Channel="Local/198@from-callers", Application="Wait",
                                 Data="3", Async="true", CallerID="Before cut <5550101>")
        assert await wait_for(lambda: _true(any(c.caller_number == "5550101"
                                                for c in service.tracker.live.values())))
        cut_at = datetime.now(UTC)
        await proxy.cut()
        # While blind: one call starts and ends, another starts and is still up at reconnect.
        await asyncio.to_thread(sandbox.cli, "channel originate Local/199@from-callers application Wait 1")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(sandbox.cli, "channel originate Local/198@from-callers application Wait 6")
        await asyncio.sleep(3.5)
        restored_at = datetime.now(UTC)
        await proxy.restore()
        assert await wait_for(lambda: _own(service, t0, 3), 40), "three calls, three records"
        assert await wait_for(lambda: _true(not service.tracker.live), 20)
        await asyncio.sleep(0.5)
        calls = await records(service, t0)
        assert len(calls) == 3 and len({c.linkedid for c in calls}) == 3

        before = next(c for c in calls if c.caller_number == "5550101")
        hangup = next(e for e in before.timeline if e.kind is Kind.HANGUP)
        trail = (await service.cel.events_for({before.linkedid}))[before.linkedid]
        logged = next(e for e in trail if e.event == "HANGUP" and e.uniqueid == before.legs[0].uniqueid)
        assert hangup.data == {"reconciled": "cel", "cause": logged.extra["hangupcause"]}
        # It really ended about 3 s after it started, while we were cut off, not at reconnect.
        assert cut_at < before.ended_at < restored_at
        assert all(l.ended_at <= before.ended_at and l.hangup_cause is not None for l in before.legs)

        blind = [c for c in calls if c.timeline[0].data.get("reconciled") == "cel"]
        assert len(blind) == 1 and len(blind[0].legs) == 2
        assert cut_at < blind[0].started_at < blind[0].ended_at < restored_at

        adopted = [c for c in calls if c.timeline[0].data.get("adopted")]
        assert len(adopted) == 1
        assert "reconciled" not in next(e for e in adopted[0].timeline if e.kind is Kind.HANGUP).data
        assert adopted[0].ended_at > restored_at  # it went on after the link came back
    finally:
        await service.stop()
        await proxy.cut()


async def test_a_call_made_while_the_gateway_was_stopped_is_rebuilt_at_start(sandbox, db_url, tmp_path):
    t0 = datetime.now(UTC)
    settings = settings_for(sandbox, tmp_path, db_url)
    first = GatewayService(settings, components=[])
    await first.start()
    try:
        await first.ami.action("Originate", Channel="Local/199@from-callers", Application="Wait",
                               Data="1", Async="true", CallerID="Seen <5550201>")
        assert await wait_for(lambda: _count(first, 1))
    finally:
        await first.stop()
    await asyncio.to_thread(sandbox.cli, "channel originate Local/199@from-callers application Wait 1")
    await asyncio.sleep(3)
    second = GatewayService(settings, components=[])
    await second.start()
    try:
        assert await wait_for(lambda: _own(second, t0, 2))
        await asyncio.sleep(1)
        calls = await records(second, t0)
        assert len(calls) == 2
        missed = next(c for c in calls if c.caller_number != "5550201")
        assert missed.timeline[0].data["reconciled"] == "cel" and missed.hangup_cause == 16
    finally:
        await second.stop()


async def test_asterisk_writes_its_cel_trail_into_postgresql_for_production(sandbox, pg_url, tmp_path):
    """cel_pgsql into the gateway's own database: the production trail, read the same way."""
    import socket
    import uuid

    await upgrade(pg_url)  # creates asterisk_cel before Asterisk loads cel_pgsql

    def free(kind=socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    s = sandbox.settings
    pg_sandbox = Sandbox(s.model_copy(update={
        "data_dir": tmp_path, "asterisk": s.asterisk.model_copy(update={
            "instance": f"pytest-pgcel-{uuid.uuid4().hex[:6]}", "sip_port": free(socket.SOCK_DGRAM),
            "ami_port": free(), "http_port": free(), "rtp_start": s.asterisk.rtp_end + 1,
            "rtp_end": s.asterisk.rtp_end + 40, "ami_password": None, "ari_password": None,
            "cel_url": pg_url})}))
    await asyncio.to_thread(pg_sandbox.up)
    reader = CelReader(pg_url)
    try:
        assert "Running" in pg_sandbox.cli("module show like cel_pgsql")
        await asyncio.to_thread(pg_sandbox.cli, "channel originate Local/199@from-callers application Wait 1")
        trail = {}

        async def ended():
            nonlocal trail
            trail = await reader.ended_between(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
            return bool(trail)

        assert await wait_for(ended, 20)
        (events,) = trail.values()
        kinds = [e.event for e in events]
        assert kinds[0] == "CHAN_START" and kinds[-1] == "LINKEDID_END" and "HANGUP" in kinds
        assert next(e for e in events if e.event == "HANGUP").extra["hangupcause"] == 16
        assert abs((events[0].at - datetime.now(UTC)).total_seconds()) < 60  # times are UTC
    finally:
        await reader.close()
        await asyncio.to_thread(pg_sandbox.down)


async def _true(v):
    return v


async def _count(service, n):
    return await service.store.count() >= n


async def _own(service, since, n):
    return len(await records(service, since)) >= n
