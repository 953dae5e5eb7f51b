"""Components plug into the running gateway: routes, readiness, start/stop order, CallSaved."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from gateway.component import Component
from gateway.events import CallSaved
from gateway.service import GatewayService

pytestmark = pytest.mark.integration


class Recorder(Component):
    def __init__(self, name, log):
        self.name, self.log, self.saved = name, log, []

    def setup(self, ctx):
        self.ctx = ctx
        self.log.append(f"setup {self.name} ami={ctx.ami.connected}")
        ctx.app.router.add_get(f"/test/{self.name}", self.hello)
        ctx.readiness[self.name] = lambda: True
        ctx.bus.subscribe(CallSaved, lambda e: self.saved.append(e.call.caller_number))

    async def hello(self, request):
        return web.json_response({"me": self.name, "peer": sorted(self.ctx.components)})

    async def start(self):
        self.log.append(f"start {self.name} ami={self.ctx.ami.connected}")

    async def stop(self):
        self.log.append(f"stop {self.name}")


async def test_components_are_wired_started_in_order_and_see_saved_calls(sandbox, tmp_path):
    s = sandbox.settings
    log = []
    a, b = Recorder("a", log), Recorder("b", log)
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0})}), components=[a, b])
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(service.base_url + "/test/b") as r:
                assert await r.json() == {"me": "b", "peer": ["a", "b"]}
            async with http.get(service.base_url + "/readyz") as r:
                body = await r.json()
                assert r.status == 200 and body["links"]["a"] is True
        await service.ami.action("Originate", Channel="Local/199@from-callers",
                                 Application="Wait", Data="1", Async="true",
                                 CallerID="Component test <5550001>")
        for _ in range(200):
            if "5550001" in a.saved and "5550001" in b.saved:
                break
            await asyncio.sleep(0.1)
        assert a.saved.count("5550001") == b.saved.count("5550001") == 1
    finally:
        await service.stop()
    assert log == ["setup a ami=False", "setup b ami=False", "start a ami=True",
                   "start b ami=True", "stop b", "stop a"]


async def test_two_components_with_one_name_are_refused(sandbox, tmp_path):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={"data_dir": tmp_path}),
                             components=[Recorder("x", []), Recorder("x", [])])
    with pytest.raises(ValueError, match="two components are named 'x'"):
        await service.start()
    await service.stop()
