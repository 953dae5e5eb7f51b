"""The gateway's HTTP app: liveness and readiness probes; components add their routes to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[bool] | bool]


def create_app(checks: dict[str, ReadinessCheck]) -> web.Application:
    """``checks`` name each link readiness depends on (AMI, ARI, database); the dict is read on
    every request, so components may add checks during their ``setup``."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        state = {}
        for name, check in checks.items():
            try:
                res = check()
                state[name] = bool(await res) if hasattr(res, "__await__") else bool(res)
            except Exception:  # noqa: BLE001 - a failing check is "not ready", never a 500
                state[name] = False
        ok = all(state.values())
        return web.json_response({"ready": ok, "links": state}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
