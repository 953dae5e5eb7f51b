"""The agent desktop, served by the gateway at ``/desktop/`` (plain HTML/JS/CSS, no build step).

Why strict headers: the page shows data typed by callers' CRMs and IVR transcripts; a strict
Content-Security-Policy (scripts, styles and connections from this origin only, no inline
script, no framing) is the second line behind rendering every customer value as text.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"index.html": "text/html", "desktop.js": "text/javascript", "desktop.css": "text/css",
         "favicon.svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_cache: dict[str, bytes] = {}


async def _file(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name") or "index.html"
    ctype = FILES.get(name)
    if ctype is None:
        raise web.HTTPNotFound()
    body = _cache.get(name)
    if body is None:
        body = _cache[name] = await asyncio.to_thread((STATIC / name).read_bytes)
    return web.Response(body=body, content_type=ctype, charset="utf-8", headers=HEADERS)


async def _redirect(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desktop/")


def add_desktop_routes(app: web.Application) -> None:
    app.router.add_get("/desktop", _redirect)
    app.router.add_get("/desktop/", _file)
    app.router.add_get("/desktop/{name}", _file)
