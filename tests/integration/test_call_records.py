"""Calls that cross the real Asterisk become exactly one record each, in SQLite and PostgreSQL."""

import asyncio

import pytest

from gateway.calls.model import Kind
from gateway.service import GatewayService

pytestmark = pytest.mark.integration


async def test_originated_local_calls_are_recorded_once_with_legs_and_timeline(sandbox, db_url, tmp_path):
    s = sandbox.settings
    settings = s.model_copy(update={"data_dir": tmp_path, "database": s.database.model_copy(update={"url": db_url}),
                                    "http": s.http.model_copy(update={"port": 0})})
    service = GatewayService(settings)
    await service.start()
    try:
        for _ in range(3):
            await service.ami.action("Originate", Channel="Local/199@from-callers",
                                     Application="Wait", Data="1", Async="true",
                                     CallerID="Mario <3351234567>")
        for _ in range(150):
            if await service.store.count() >= 3 and not service.tracker.live:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert await service.store.count() == 3
        async with service.engine.connect() as conn:
            from sqlalchemy import text
            lids = [r[0] for r in await conn.execute(text("SELECT linkedid FROM calls"))]
        call = await service.store.get(lids[0])
        assert len(call.legs) == 2 and {l.direction for l in call.legs} == {"local"}
        assert call.timeline[0].kind is Kind.START and call.timeline[-1].kind is Kind.END
        assert call.ended_at is not None and call.hangup_cause is not None
        assert call.caller_number == "3351234567"
    finally:
        await service.stop()


async def test_calls_cut_by_an_asterisk_crash_still_get_exactly_one_record(sandbox, db_url, tmp_path):
    s = sandbox.settings
    settings = s.model_copy(update={
        "data_dir": tmp_path, "database": s.database.model_copy(update={"url": db_url}),
        "http": s.http.model_copy(update={"port": 0}),
        "ami": s.ami.model_copy(update={"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0})})
    service = GatewayService(settings)
    await service.start()
    try:
        for _ in range(2):
            await service.ami.action("Originate", Channel="Local/198@from-callers",
                                     Application="Wait", Data="60", Async="true")
        for _ in range(50):
            if len(service.tracker.live) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(service.tracker.live) == 2
        await asyncio.to_thread(sandbox.kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(sandbox.up)
        for _ in range(100):
            if await service.store.count() == 2 and service.ami.connected:
                break
            await asyncio.sleep(0.1)
        assert await service.store.count() == 2
        assert not service.tracker.live
    finally:
        await service.stop()
