"""ARI connector start-up: started means the Stasis app can take calls, or a clear error."""

import asyncio

import pytest
from aiohttp import web
from pydantic import SecretStr

from gateway.ari.client import ARIClient, ARIError
from gateway.settings import Settings


async def fake_ari(events_ok: bool) -> tuple[web.AppRunner, int, list[str]]:
    seen: list[str] = []

    async def info(_):
        return web.json_response({"system": {"version": "22"}})

    async def events(request):
        seen.append(request.query.get("app", ""))
        if not events_ok:
            return web.Response(status=403)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "StasisStart", "channel": {"id": "c1"}}')
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ari/asterisk/info", info)
    app.router.add_get("/ari/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1], seen


def settings_for(port: int) -> Settings:
    s = Settings()
    return s.model_copy(update={
        "asterisk": s.asterisk.model_copy(update={"http_port": port, "ari_password": SecretStr("pw")}),
        "ami": s.ami.model_copy(update={"action_timeout_s": 1.0}),
    })


async def test_connect_returns_only_once_the_events_websocket_is_open():
    runner, port, seen = await fake_ari(events_ok=True)
    ari = ARIClient(settings_for(port))
    got = []
    ari.on_event(got.append)
    try:
        await ari.connect()
        assert ari.connected is True
        assert seen == ["centralino"]
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got[0]["type"] == "StasisStart"
    finally:
        await ari.close()
        await runner.cleanup()


async def test_a_websocket_that_never_opens_is_a_clear_start_error():
    runner, port, _ = await fake_ari(events_ok=False)
    ari = ARIClient(settings_for(port))
    try:
        with pytest.raises(ARIError, match="events websocket .* did not open"):
            await ari.connect()
        assert ari.connected is False
    finally:
        await ari.close()
        await runner.cleanup()
