"""ARI connector (aiohttp): REST calls and the Stasis application's events websocket.

The websocket is kept open by a supervisor task with capped exponential backoff, so the IVR
keeps receiving StasisStart after Asterisk restarts; ``connected`` feeds ``/readyz``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.settings import Settings

log = logging.getLogger(__name__)


class ARIError(Exception):
    pass


class ARIAuthError(ARIError):
    pass


class ARINotFound(ARIError):
    pass


class ARIClient:
    def __init__(self, settings: Settings) -> None:
        a = settings.asterisk
        self._base = f"http://{a.host}:{a.http_port}/ari"
        pw = a.ari_password.get_secret_value() if a.ari_password else ""
        token = base64.b64encode(f"{a.ari_username}:{pw}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._app = a.ari_app
        self._user = a.ari_username
        self._cfg = settings.ami
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._handlers: list[Callable[[dict[str, Any]], None]] = []
        self.connected = False

    def on_event(self, handler: Callable[[dict[str, Any]], None]) -> None:
        self._handlers.append(handler)

    async def request(self, method: str, path: str, **params: Any) -> Any:
        assert self._session is not None, "call connect() first"
        try:
            async with self._session.request(method, self._base + path, params=params or None,
                                             headers=self._headers,
                                             timeout=aiohttp.ClientTimeout(total=10)) as r:
                body = await r.text()
                if r.status == 401:
                    raise ARIAuthError(f"ARI refused user {self._user!r}; check asterisk.ari_username / ari_password")
                if r.status == 404:
                    raise ARINotFound(f"{method} {path}: not found")
                if r.status >= 400:
                    raise ARIError(f"{method} {path}: HTTP {r.status} {body[:200]}")
                return json.loads(body) if body else None
        except aiohttp.ClientError as exc:
            raise ARIError(f"cannot reach ARI at {self._base}: {exc}") from exc

    async def connect(self) -> None:
        """Check credentials now (fatal at start), then keep the events websocket open.

        Returns only once the websocket is open: until then Asterisk has no Stasis app to hand
        calls to, and a gateway that reports itself started must be able to take them."""
        self._session = aiohttp.ClientSession()
        try:
            await self.request("GET", "/asterisk/info")
        except ARIError:
            await self._session.close()
            raise
        self._opened = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name="ari-events")
        try:
            await asyncio.wait_for(self._opened.wait(), self._cfg.action_timeout_s)
        except TimeoutError:
            await self.close()
            raise ARIError(f"ARI events websocket at {self._base} did not open") from None

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._session:
            await self._session.close()
        self.connected = False

    async def _supervise(self) -> None:
        delay = self._cfg.reconnect_initial_s
        url = self._base.replace("http://", "ws://") + f"/events?app={self._app}&subscribeAll=false"
        while True:
            try:
                async with self._session.ws_connect(url, headers=self._headers, heartbeat=20) as ws:
                    self.connected = True
                    self._opened.set()
                    delay = self._cfg.reconnect_initial_s
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self._dispatch(msg.data)
            except (aiohttp.ClientError, OSError) as exc:
                log.warning("ARI websocket: %s", exc)
            self.connected = False
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._cfg.reconnect_max_s)

    def _dispatch(self, text: str) -> None:
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            log.warning("ARI sent a frame that is not JSON; ignored")
            return
        for h in self._handlers:
            try:
                h(event)
            except Exception:
                log.exception("ARI event handler failed")
