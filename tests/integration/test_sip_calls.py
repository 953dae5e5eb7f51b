"""A real SIP caller reaches a queue and a real SIP agent answers: the record says so."""

import asyncio
import json
import sys

import pytest

from gateway.calls.model import Kind
from gateway.service import GatewayService

pytestmark = pytest.mark.integration


async def test_a_sip_call_through_a_queue_is_recorded_with_queue_and_agent(sandbox, tmp_path):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0})}))
    await service.start()
    try:
        a = s.asterisk
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.sip", a.host, str(a.sip_port),
            "caller1", sandbox.phone_password("caller1"), "agent1", sandbox.phone_password("agent1"),
            "6001", "3.0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        media = json.loads(out.decode().strip().splitlines()[-1])
        assert media["rtp_packets_received"] > 50  # real G.711 RTP reached the agent phone
        for _ in range(100):
            if await service.store.count() == 1 and not service.tracker.live:
                break
            await asyncio.sleep(0.1)
        async with service.engine.connect() as conn:
            from sqlalchemy import text
            (lid,) = (await conn.execute(text("SELECT linkedid FROM calls"))).one()
        call = await service.store.get(lid)
        assert call.caller_number == "caller1"
        assert [l.endpoint for l in call.legs] == ["caller1", "agent1"]
        kinds = [e.kind for e in call.timeline]
        for k in (Kind.QUEUE_JOIN, Kind.AGENT_OFFERED, Kind.AGENT_CONNECTED, Kind.AGENT_COMPLETE):
            assert k in kinds, kinds
        joined = next(e for e in call.timeline if e.kind is Kind.QUEUE_JOIN)
        assert joined.data["queue"] == "billing"
    finally:
        await service.stop()
