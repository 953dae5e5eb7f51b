"""Real calls through the sandbox Asterisk become quality and handle-time rows.

A pjsua2 caller reaches the billing queue, a pjsua2 agent (logged in through the CTI's HTTP API)
answers, puts the caller on hold for a scripted time, hangs up, and submits the wrap-up through
the CTI's HTTP API a scripted time later. The stored figures must match the script.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from sqlalchemy import select

from cti.auth import add_user
from cti.component import CTIComponent
from gateway.calls.orm import CallRow
from gateway.quality.component import QualityComponent
from gateway.service import GatewayService
from gateway.sip import CallState, PhoneHost

pytestmark = pytest.mark.integration

PW = "correct horse battery"
TALK_BEFORE_HOLD, HOLD, TALK_AFTER_HOLD, ACW = 2.0, 3.0, 2.0, 4.0


async def until(cond, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        res = await cond()
        if res:
            return res
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


@pytest.fixture
async def gateway(sandbox, tmp_path):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0})}),
        components=[CTIComponent(), QualityComponent()])
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def login(http, base, username):
    async with http.post(f"{base}/api/v1/auth/login",
                         json={"username": username, "password": PW}) as r:
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def test_handle_time_and_quality_of_a_scripted_call(sandbox, gateway):
    quality: QualityComponent = gateway.ctx.component("quality")
    sessions = gateway.ctx.sessions
    await add_user(sessions, "anna", "agent", PW, team="red", endpoint="agent1",
                   queues=["billing"])
    a = sandbox.settings.asterisk
    async with aiohttp.ClientSession() as http, PhoneHost() as phones:
        agent = await login(http, gateway.base_url, "anna")
        async with http.post(f"{gateway.base_url}/api/v1/agent/login", headers=agent,
                             json={"queues": ["billing"]}) as r:
            assert r.status == 200, await r.text()
        await phones.register("agent1", sandbox.phone_password("agent1"), a.host, a.sip_port)
        await phones.add_account("caller1", sandbox.phone_password("caller1"), a.host,
                                 a.sip_port, register=False)
        try:
            out = await phones.call("caller1", "6001")
            inc = await phones.wait_for_incoming("agent1", timeout=30)
            await phones.answer(inc)
            await phones.wait_for_state(out, CallState.CONFIRMED)
            t_answer = time.monotonic()
            await asyncio.sleep(TALK_BEFORE_HOLD)
            await phones.hold(inc)
            t_hold = time.monotonic()
            await asyncio.sleep(HOLD)
            await phones.unhold(inc)
            t_unhold = time.monotonic()
            await asyncio.sleep(TALK_AFTER_HOLD)
            await phones.hangup(inc)
            t_hangup = time.monotonic()
            await phones.wait_for_state(out, CallState.DISCONNECTED)
        finally:
            async with http.post(f"{gateway.base_url}/api/v1/agent/logout", headers=agent):
                pass

        async def saved_row():
            async with sessions() as s:
                lid = await s.scalar(select(CallRow.linkedid).where(
                    CallRow.caller_number == "caller1"))
            return lid and await quality.store.metrics(lid)

        row = await until(saved_row, what="call metrics saved")
        lid = row.linkedid
        assert row.acw_started_at is not None and row.aht_s is None  # ACW still open
        await asyncio.sleep(max(0.0, ACW - (time.monotonic() - t_hangup)))
        async with http.post(f"{gateway.base_url}/api/v1/agent/wrapup", headers=agent,
                             json={"linkedid": lid, "disposition": "resolved"}) as r:
            assert r.status == 200, await r.text()
        t_wrap = time.monotonic()

        async def closed():
            m = await quality.store.metrics(lid)
            return m if m.aht_s is not None else None

        row = await until(closed, what="ACW closed")

    held, talked, acw = t_unhold - t_hold, (t_hangup - t_answer) - (t_unhold - t_hold), \
        t_wrap - t_hangup
    print(f"\nscript: talk {talked:.2f} s, hold {held:.2f} s, acw {acw:.2f} s; stored: talk "
          f"{row.talk_s:.2f} hold {row.hold_s:.2f} acw {row.acw_s:.2f} aht {row.aht_s:.2f} "
          f"wait {row.queue_wait_s:.2f} ring {row.ring_s:.2f}")
    assert row.hold_s == pytest.approx(held, abs=0.5) and row.hold_count == 1
    assert row.talk_s == pytest.approx(talked, abs=0.5)
    assert row.acw_s == pytest.approx(acw, abs=0.5) and not row.acw_capped
    assert row.aht_s == pytest.approx(talked + held + acw, abs=0.5)
    assert row.aht_s == pytest.approx(row.talk_s + row.hold_s + row.acw_s)
    assert row.answered and row.queued and row.queue == "billing"
    assert (row.agent_username, row.team, row.agent_endpoint) == ("anna", "red", "agent1")

    legs = {leg.endpoint: leg for leg in await quality.store.legs(lid)}
    assert set(legs) == {"caller1", "agent1"}
    for leg in legs.values():
        print(f"leg {leg.endpoint}: codec {leg.codec} in {leg.packets_in} pkts "
              f"{leg.loss_pct_in}% out {leg.packets_out} pkts {leg.loss_pct_out}% jitter "
              f"{leg.jitter_ms_avg} ms rtt {leg.rtt_ms_avg} ms R {leg.r_factor:.1f} "
              f"MOS {leg.mos:.2f} reports {leg.reports}")
        assert leg.codec == "ulaw"
        assert leg.packets_in > 200 and leg.loss_pct_in == 0  # ~7 s of 20 ms packets
        assert leg.reports > 4  # RTCP every 500 ms, both directions
        assert leg.mos > 4.3  # a clean loopback G.711 call
    assert row.mos_min == min(leg.mos for leg in legs.values())
    assert row.review == [] and row.repeat_contact is False and row.repeat_source == "cti"
