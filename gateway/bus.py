"""In-process publish/subscribe of domain events between the gateway's components.

Why: the IVR, the CTI screen pop and the quality/handle-time parts react to the same call facts
(a call was saved, the IVR understood an intent, an agent wrapped up) without importing each
other. Handlers are looked up by the event's exact type. A synchronous handler runs inline and
must be quick; a coroutine handler runs as its own task, so a slow consumer never delays the AMI
reader that published. A failing handler is logged and never breaks the publisher or the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None] | None]


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        self._handlers.setdefault(event_type, []).append(handler)

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                res = handler(event)
            except Exception:
                log.exception("bus handler %r failed on %s", handler, type(event).__name__)
                continue
            if asyncio.iscoroutine(res):
                task = asyncio.get_running_loop().create_task(
                    _guard(res, handler, event), name=f"bus:{type(event).__name__}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the coroutine handlers still running (shutdown, tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.error("bus: %d handlers still running at shutdown", len(self._tasks))
                return
            await asyncio.wait(set(self._tasks), timeout=left)


async def _guard(coro: Awaitable[None], handler: Handler, event: object) -> None:
    try:
        await coro
    except Exception:
        log.exception("bus handler %r failed on %s", handler, type(event).__name__)
