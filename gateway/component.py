"""The seam every part of the gateway plugs into: a component with a shared context.

Why: the IVR runner, the CTI, voice quality and metrics each need the same links (AMI, ARI,
database, call tracker, HTTP app, bus) and a place in the start/stop order, but must not import
each other or grow one giant service class. The service builds one :class:`GatewayContext`, calls
every component's ``setup`` (synchronous wiring: routes, subscriptions) before anything connects,
then ``start`` in order once AMI and ARI are up, and ``stop`` in reverse order.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

if TYPE_CHECKING:
    from gateway.ami.client import AMIClient
    from gateway.ari.client import ARIClient
    from gateway.bus import Bus
    from gateway.calls.store import CallStore
    from gateway.calls.tracker import CallTracker
    from gateway.settings import Settings

ReadinessCheck = Callable[[], Awaitable[bool] | bool]


@dataclass
class GatewayContext:
    settings: Settings
    ami: AMIClient
    ari: ARIClient
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    calls: CallStore
    tracker: CallTracker
    bus: Bus
    app: web.Application
    readiness: dict[str, ReadinessCheck]
    components: dict[str, Component] = field(default_factory=dict)

    def component(self, name: str) -> Any:
        """Another component by name (e.g. ``ctx.component("cti")``); KeyError if not loaded."""
        return self.components[name]


class Component:
    """Base class: override what you need. ``name`` must be unique."""

    name: str = ""

    def setup(self, ctx: GatewayContext) -> None:
        """Wire routes and subscriptions; nothing is connected yet and nothing may block."""

    async def start(self) -> None:
        """AMI and ARI are connected; the HTTP server is not serving yet."""

    async def stop(self) -> None:
        """Release what ``start`` took; called in reverse order, also after a failed start."""


def load_components(specs: tuple[str, ...]) -> list[Component]:
    """Instantiate ``"module:Class"`` specs in order (see :mod:`gateway.components`)."""
    out = []
    for spec in specs:
        module, _, cls = spec.partition(":")
        out.append(getattr(importlib.import_module(module), cls)())
    return out
