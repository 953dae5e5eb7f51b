"""Load callers: many concurrent real SIP calls with RTP, spread over several phone hosts.

Why several hosts: one pjsua2 host carries at most 4 calls and 8 accounts (limits compiled into
the pjsua2-python wheel), so ``concurrency`` calls take ``ceil(concurrency / 4)`` host
processes; that also spreads the RTP work over the cores. Callers do not REGISTER (they only authenticate their INVITEs), so
many calls can share one caller endpoint and no real phone is displaced.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from gateway.sip.client import Call, CallEnded, PhoneError, PhoneHost, PhoneTimeout, check_wav
from gateway.sip.model import CallState


@dataclass(frozen=True, slots=True)
class LoadCall:
    index: int
    account: str
    answered: bool
    setup_s: float | None  # INVITE sent -> 200 OK seen (None when not answered)
    ended_early: bool  # answered, then hung up by the far end before hold_s
    error: str  # "" when answered; the SIP status or the failure otherwise


@dataclass(frozen=True, slots=True)
class LoadResult:
    number: str
    calls: int
    concurrency: int
    hosts: int
    answered: int
    failed: int
    ended_early: int
    mean_setup_s: float | None
    max_setup_s: float | None
    p95_setup_s: float | None
    duration_s: float
    failures: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


async def run_load(*, accounts: list[tuple[str, str]], host: str, port: int, number: str,
                   calls: int, concurrency: int, hold_s: float = 5.0, play: Path | None = None,
                   answer_timeout: float = 30.0, calls_per_host: int = 4,
                   clock_rate: int = 8000) -> LoadResult:
    """Place ``calls`` calls to ``number``, ``concurrency`` at a time, each up for ``hold_s``.

    ``accounts`` are (endpoint, password) pairs used round-robin. With ``play`` each answered
    call plays that WAV from the start (the call still lasts ``hold_s``).
    """
    if calls < 1 or concurrency < 1:
        raise PhoneError("calls and concurrency must be at least 1")
    if not accounts:
        raise PhoneError("no caller accounts to place load calls from")
    if play is not None:
        check_wav(play)
    concurrency = min(concurrency, calls)
    n_hosts = math.ceil(concurrency / calls_per_host)
    hosts = [PhoneHost(clock_rate=clock_rate) for _ in range(n_hosts)]
    per_host: list[list[str]] = [[] for _ in hosts]
    for i, (name, password) in enumerate(accounts[: 8 * n_hosts]):
        per_host[i % n_hosts].append(name)
    for i in range(n_hosts):
        if not per_host[i]:
            per_host[i] = [accounts[i % len(accounts)][0]]
    passwords = dict(accounts)
    results: list[LoadCall] = []
    counter = iter(range(calls))
    started = time.monotonic()
    try:
        await asyncio.gather(*(h.start() for h in hosts))
        await asyncio.gather(*(
            h.add_account(name, passwords[name], host, port, register=False)
            for h, names in zip(hosts, per_host, strict=True) for name in names))

        async def worker(w: int) -> None:
            h, names = hosts[w % n_hosts], per_host[w % n_hosts]
            for i in counter:
                results.append(await _one(h, i, names[i % len(names)], number, hold_s, play,
                                          answer_timeout))

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        await asyncio.gather(*(h.close() for h in hosts), return_exceptions=True)
    setups = sorted(r.setup_s for r in results if r.setup_s is not None)
    failures = Counter(r.error for r in results if not r.answered)
    return LoadResult(
        number=number, calls=calls, concurrency=concurrency, hosts=n_hosts,
        answered=len(setups), failed=len(results) - len(setups),
        ended_early=sum(r.ended_early for r in results),
        mean_setup_s=round(statistics.fmean(setups), 4) if setups else None,
        max_setup_s=round(setups[-1], 4) if setups else None,
        p95_setup_s=round(setups[min(len(setups) - 1, int(0.95 * len(setups)))], 4)
        if setups else None,
        duration_s=round(time.monotonic() - started, 2), failures=dict(failures))


async def _one(h: PhoneHost, i: int, account: str, number: str, hold_s: float,
               play: Path | None, answer_timeout: float) -> LoadCall:
    t0 = time.monotonic()
    try:
        call = await h.call(account, number)
    except PhoneError as exc:
        return LoadCall(i, account, False, None, False, f"not placed: {exc}")
    try:
        await h.wait_for_state(call, CallState.CONFIRMED, answer_timeout)
    except CallEnded as exc:
        return LoadCall(i, account, False, None, False, f"{exc.code} {exc.reason}")
    except PhoneTimeout:
        await _quiet_hangup(h, call)
        return LoadCall(i, account, False, None, False, f"no answer within {answer_timeout:g} s")
    except PhoneError as exc:
        return LoadCall(i, account, False, None, False, type(exc).__name__)
    setup = time.monotonic() - t0
    try:
        if play is not None:
            await h.wait_for_media(call, timeout=5)
            await h.play(call, play)
        await h.wait_for_state(call, CallState.DISCONNECTED, hold_s)
        return LoadCall(i, account, True, setup, True, "")
    except CallEnded:
        return LoadCall(i, account, True, setup, True, "")
    except PhoneTimeout:
        pass  # still up after hold_s (the normal case): we hang up
    except PhoneError as exc:
        return LoadCall(i, account, True, setup, True, type(exc).__name__)
    await _quiet_hangup(h, call)
    return LoadCall(i, account, True, setup, False, "")


async def _quiet_hangup(h: PhoneHost, call: Call) -> None:
    try:
        await h.hangup(call)
        await h.wait_for_state(call, CallState.DISCONNECTED, 10)
    except PhoneError:
        pass
