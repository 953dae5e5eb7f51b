"""A real SIP caller reaches a queue and a real SIP agent answers: the record says so."""

import asyncio

import pytest

from gateway.ami.client import AMIActionError
from gateway.calls.model import Kind
from gateway.service import GatewayService
from gateway.sip import CallState, PhoneHost

pytestmark = pytest.mark.integration


async def test_a_sip_call_through_a_queue_is_recorded_with_queue_and_agent(sandbox, tmp_path, db_url):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "database": s.database.model_copy(update={"url": db_url}),
        "http": s.http.model_copy(update={"port": 0})}))
    await service.start()
    try:
        a = s.asterisk
        try:  # agents join queues from their desktop (dynamic membership)
            await service.ami.action("QueueAdd", Queue="billing", Interface="PJSIP/agent1",
                                     MemberName="agent1")
            added = True
        except AMIActionError as exc:
            assert "Already there" in str(exc)
            added = False
        async with PhoneHost() as phones:
            await phones.register("agent1", sandbox.phone_password("agent1"), a.host, a.sip_port)
            await phones.add_account("caller1", sandbox.phone_password("caller1"), a.host,
                                     a.sip_port, register=False)
            out = await phones.call("caller1", "6001")
            ringing = await phones.wait_for_incoming("agent1", timeout=20)
            await phones.answer(ringing)
            await phones.wait_for_state(out, CallState.CONFIRMED)
            await asyncio.sleep(3)
            media = await phones.stats(ringing)
            assert media.rx_packets > 50 and media.codec == "PCMU/8000"  # real G.711 RTP
            await phones.hangup(out)
            await phones.wait_for_state(ringing, CallState.DISCONNECTED)
        if added:
            await service.ami.action("QueueRemove", Queue="billing", Interface="PJSIP/agent1")
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
