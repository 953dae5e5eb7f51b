"""The in-process bus: components share facts without importing each other."""

import asyncio
from dataclasses import dataclass

from gateway.bus import Bus


@dataclass
class Ping:
    n: int


@dataclass
class Other:
    pass


async def test_sync_and_async_handlers_each_get_events_of_their_type_only():
    bus, seen = Bus(), []

    async def slow(e):
        await asyncio.sleep(0.01)
        seen.append(("async", e.n))

    bus.subscribe(Ping, lambda e: seen.append(("sync", e.n)))
    bus.subscribe(Ping, slow)
    bus.subscribe(Other, lambda e: seen.append("other"))
    bus.publish(Ping(1))
    assert seen == [("sync", 1)]  # the async one runs later, off the publisher's stack
    await bus.drain()
    assert seen == [("sync", 1), ("async", 1)]


async def test_a_failing_handler_breaks_neither_the_publisher_nor_the_others(caplog):
    bus, seen = Bus(), []

    def broken(e):
        raise RuntimeError("boom")

    async def broken_later(e):
        raise RuntimeError("boom later")

    bus.subscribe(Ping, broken)
    bus.subscribe(Ping, broken_later)
    bus.subscribe(Ping, lambda e: seen.append(e.n))
    bus.publish(Ping(2))
    await bus.drain()
    assert seen == [2]
    assert "boom" in caplog.text and "boom later" in caplog.text
