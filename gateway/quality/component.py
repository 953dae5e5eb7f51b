"""The ``quality`` component: voice quality per leg, handle time per call, coaching, dashboards.

What it listens to:

* AMI ``RTCPSent`` / ``RTCPReceived`` / ``UserEvent: CentralinoRTCP`` (inline, cheap: they only
  feed :class:`~gateway.quality.rtcp.RtcpCollector`), and ``Newchannel`` of PJSIP channels, on
  which it pushes the dialplan's ``centralino-hangup`` handler over AMI (``Setvar
  CHANNEL(hangup_handler_push)``) so every PJSIP leg, also those app_queue dials, reports its
  RTCP totals before it goes, whatever the rest of the dialplan does.
* bus :class:`~gateway.events.CallSaved`: the call's legs are summarised and rated, its handle
  time computed, the agent resolved to a CTI user and team, and both rows written at once.
  :class:`~gateway.events.MediaStats` (RTP the gateway itself received) joins its call's legs.
* bus :class:`~gateway.events.WrapUpSubmitted` and :class:`~gateway.events.AgentStateChanged`
  (``ready``): the call's after-call work closes and its AHT is written. A wrap-up that
  arrives before the call is saved is remembered and applied when it is; a forgotten one is
  closed at ``quality.acw_max_s`` by a sweeper and flagged.

Repeat contact: from the CTI's ``interactions.repeat_contact`` when the CTI component is loaded
(waiting up to ``quality.cti_wait_s`` for its row), else same caller + same topic within the
window from the calls table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.ami.client import AMIError
from gateway.component import Component, GatewayContext
from gateway.events import AgentStateChanged, CallSaved, MediaStats, WrapUpSubmitted
from gateway.metrics.handle_time import acw_span, close_acw, handle_time
from gateway.metrics.prom import GatewayMetrics
from gateway.metrics.review import ReviewRules
from gateway.quality.rtcp import LegQuality, RtcpCollector, from_media_stats, summarise
from gateway.quality.store import QualityStore, aware, metrics_values

log = logging.getLogger(__name__)

_RTCP_EVENTS = frozenset({"RTCPSent", "RTCPReceived", "UserEvent"})
HANDLER = "centralino-hangup,s,1"


@dataclass
class OpenAcw:
    """A call whose agent has hung up and not yet wrapped up."""

    linkedid: str
    started_at: datetime
    talk_s: float
    hold_s: float
    endpoint: str | None
    username: str | None
    queue: str | None


class _Recent:
    """A bounded map of recent facts (early wrap-ups, ready clicks), oldest dropped first."""

    def __init__(self, size: int = 10_000) -> None:
        self._d: OrderedDict[str, datetime] = OrderedDict()
        self._size = size

    def put(self, key: str, at: datetime) -> None:
        self._d[key] = at
        self._d.move_to_end(key)
        while len(self._d) > self._size:
            self._d.popitem(last=False)

    def get(self, key: str | None) -> datetime | None:
        return self._d.get(key) if key else None

    def pop(self, key: str) -> datetime | None:
        return self._d.pop(key, None)

    def drop_before(self, when: datetime) -> None:
        for k in [k for k, v in self._d.items() if v < when]:
            del self._d[k]


class QualityComponent(Component):
    name = "quality"

    def setup(self, ctx: GatewayContext) -> None:
        from gateway.quality.api import add_routes

        self.ctx = ctx
        self.cfg = cfg = ctx.settings.quality
        self.rules = ReviewRules(cfg.review_mos_below, cfg.review_hold_over_s,
                                 cfg.review_transfers_over)
        self.store = QualityStore(ctx.sessions)
        self.collector = RtcpCollector()
        self.metrics = GatewayMetrics(active=lambda: len(ctx.tracker.live))
        self.service_levels = _service_levels(ctx)
        self._open: dict[str, OpenAcw] = {}
        self._early_wrapups = _Recent()
        self._ready = _Recent()  # endpoint / "u:username" -> last ready
        self._media: dict[str, list[LegQuality]] = {}  # before their call is saved
        self._media_at = _Recent()
        self._saved = _Recent()  # linkedids already summarised (late MediaStats)
        self._locks: dict[str, list[Any]] = {}  # linkedid -> [lock, users]
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.pushes_failed = 0
        ctx.ami.on_event(self._on_ami)
        ctx.bus.subscribe(CallSaved, self._on_call_saved)
        ctx.bus.subscribe(MediaStats, self._on_media)
        ctx.bus.subscribe(WrapUpSubmitted, self._on_wrapup)
        ctx.bus.subscribe(AgentStateChanged, self._on_agent_state)
        add_routes(ctx.app, self)

    async def start(self) -> None:
        for row in await self.store.open_acw():
            self._open[row.linkedid] = OpenAcw(
                row.linkedid, aware(row.acw_started_at), row.talk_s, row.hold_s,
                row.agent_endpoint, row.agent_username, row.queue)
        if self._open:
            log.info("quality: %d calls still in after-call work", len(self._open))
        self._sweeper = asyncio.create_task(self._sweep(), name="quality-sweeper")

    async def stop(self) -> None:
        tasks = [t for t in (self._sweeper, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # -- AMI (inline on the reader: quick) ------------------------------------------------------
    def _on_ami(self, ev: Any) -> None:
        name = ev.name
        if name in _RTCP_EVENTS:
            self.collector.handle(ev)
        elif name == "Newchannel" and self.cfg.push_hangup_handler:
            chan = ev.get("Channel") or ""
            if chan.upper().startswith("PJSIP/"):
                self._spawn(self._push_handler(chan))

    async def _push_handler(self, channel: str) -> None:
        try:
            await self.ctx.ami.action("Setvar", Channel=channel,
                                      Variable="CHANNEL(hangup_handler_push)", Value=HANDLER)
        except AMIError as exc:  # the channel may already be gone: RTCP events still count
            self.pushes_failed += 1
            log.debug("quality: could not push the hangup handler on %s: %s", channel, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def _locked(self, linkedid: str):
        """One writer per call at a time (save, repeat update, ACW close, late media)."""
        entry = self._locks.setdefault(linkedid, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[linkedid]

    # -- a call was saved -----------------------------------------------------------------------
    async def _on_call_saved(self, ev: CallSaved) -> None:
        call = ev.call
        lid = call.linkedid
        async with self._locked(lid):
            legs: list[LegQuality] = []
            for leg in call.legs:
                stats = self.collector.pop(leg.uniqueid)
                if stats is not None:
                    q = summarise(stats, lid, leg.endpoint, leg.codec)
                    if q is not None:
                        legs.append(q)
            legs += self._media.pop(lid, [])
            self._media_at.pop(lid)
            earlier = [r for r in await self.store.legs(lid)
                       if (r.uniqueid, r.source) not in {(q.uniqueid, q.source) for q in legs}]
            self._saved.put(lid, datetime.now(UTC))
            ht = handle_time(call, self.service_levels.get(call.queue or "",
                                                           self.cfg.default_service_level_s))
            user = await self.store.agent_user(ht.agent_endpoint, ht.agent)
            username, team = user if user else (None, None)
            closed_at = self._early_close(lid, ht.acw_started_at, ht.agent_endpoint, username)
            if closed_at is not None:
                ht = close_acw(ht, closed_at, self.cfg.acw_max_s)
            cti = "cti" in self.ctx.components
            repeat = None if cti else await self.store.repeat_from_calls(call, self._window)
            values = metrics_values(call, ht, [*legs, *earlier], repeat_contact=repeat,
                                    repeat_source=None if cti or repeat is None else "calls",
                                    agent_username=username, team=team, rules=self.rules)
            await self.store.save(legs, values)
            if ht.acw_open:
                self._open[lid] = OpenAcw(lid, ht.acw_started_at, ht.talk_s, ht.hold_s,
                                          ht.agent_endpoint, username, call.queue)
            self.metrics.call_saved(queue=call.queue, intent=call.intent, queued=ht.queued,
                                    answered=ht.answered, within_sl=ht.answered_within_sl,
                                    queue_wait_s=ht.queue_wait_s, mos=values["mos_min"])
            if ht.acw_ended_at is not None:
                self.metrics.acw_closed(queue=call.queue, aht_s=ht.aht_s, capped=ht.acw_capped)
        if cti:
            await self._repeat_from_cti(call)

    @property
    def _window(self) -> timedelta:
        return timedelta(days=self.cfg.repeat_window_days)

    def _early_close(self, lid: str, acw_start: datetime | None, endpoint: str | None,
                     username: str | None) -> datetime | None:
        """A wrap-up or a ready click that came before the call was saved."""
        if acw_start is None:
            return None
        at = self._early_wrapups.pop(lid)
        if at is not None:
            return at
        readies = [t for t in (self._ready.get(endpoint), self._ready.get(f"u:{username}"))
                   if t is not None and t >= acw_start]
        return min(readies) if readies else None

    async def _repeat_from_cti(self, call) -> None:
        deadline = time.monotonic() + self.cfg.cti_wait_s
        repeat = None
        while True:
            repeat = await self.store.repeat_from_cti(call.linkedid)
            if repeat is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        source = "cti"
        if repeat is None:  # the CTI kept no interaction for this call: use the calls table
            repeat, source = await self.store.repeat_from_calls(call, self._window), "calls"
        async with self._locked(call.linkedid):
            await self.store.update_metrics(call.linkedid, rules=self.rules,
                                            repeat_contact=repeat,
                                            repeat_source=source if repeat is not None else None)

    # -- media the gateway received -------------------------------------------------------------
    async def _on_media(self, ev: MediaStats) -> None:
        q = from_media_stats(ev)
        if self._saved.get(ev.linkedid) is None:
            self._media.setdefault(ev.linkedid, []).append(q)
            self._media_at.put(ev.linkedid, datetime.now(UTC))
            return
        async with self._locked(ev.linkedid):  # the call is saved already: add the leg to it
            await self.store.save([q])
            row = await self.store.metrics(ev.linkedid)
            if row is not None and q.r_factor is not None and \
                    (row.r_min is None or q.r_factor < row.r_min):
                await self.store.update_metrics(
                    ev.linkedid, rules=self.rules, r_min=q.r_factor, mos_min=q.mos,
                    worst_uniqueid=q.uniqueid, quality_legs=row.quality_legs + 1)

    # -- after-call work ------------------------------------------------------------------------
    async def _on_wrapup(self, ev: WrapUpSubmitted) -> None:
        if not await self.close_acw(ev.linkedid, ev.at):
            self._early_wrapups.put(ev.linkedid, ev.at)

    async def _on_agent_state(self, ev: AgentStateChanged) -> None:
        if ev.state != "ready":
            return
        mine = [o.linkedid for o in self._open.values()
                if (ev.endpoint and o.endpoint == ev.endpoint)
                or (ev.username and o.username == ev.username)]
        for lid in mine:
            await self.close_acw(lid, ev.at)
        if ev.endpoint:
            self._ready.put(ev.endpoint, ev.at)
        if ev.username:
            self._ready.put(f"u:{ev.username}", ev.at)

    async def close_acw(self, linkedid: str, at: datetime) -> bool:
        """Close the call's after-call work at ``at``; False when it is not (yet) open here."""
        async with self._locked(linkedid):
            o = self._open.pop(linkedid, None)
            if o is None:
                return False
            acw, capped, ended = acw_span(o.started_at, at, self.cfg.acw_max_s)
            aht = o.talk_s + o.hold_s + acw
            await self.store.update_metrics(linkedid, acw_s=acw, acw_capped=capped,
                                            acw_ended_at=ended, aht_s=aht)
            self.metrics.acw_closed(queue=o.queue, aht_s=aht, capped=capped)
        return True

    async def _sweep(self) -> None:
        period = max(0.2, min(5.0, self.cfg.acw_max_s / 10))
        while True:
            await asyncio.sleep(period)
            try:
                now = datetime.now(UTC)
                for o in list(self._open.values()):
                    if (now - o.started_at).total_seconds() >= self.cfg.acw_max_s:
                        await self.close_acw(o.linkedid, now)
                self.collector.purge(self.cfg.stale_leg_s)
                hour_ago = now - timedelta(hours=1)
                for recent in (self._early_wrapups, self._ready, self._saved):
                    recent.drop_before(hour_ago)
                stale = now - timedelta(seconds=self.cfg.stale_leg_s)
                for lid in [k for k in self._media if (self._media_at.get(k) or now) < stale]:
                    del self._media[lid]
                    self._media_at.pop(lid)
            except Exception:
                log.exception("quality sweeper failed; going on")


def _service_levels(ctx: GatewayContext) -> dict[str, float]:
    """Service-level seconds per queue from the site file (none: the default for all)."""
    from gateway.dialplan.problems import ConfigError
    from gateway.dialplan.site import load_site, site_path

    try:
        site = load_site(site_path(ctx.settings.dialplans_path))
    except (ConfigError, OSError) as exc:
        log.warning("quality: no site file for service levels (%s); using %s s for every queue",
                    exc, ctx.settings.quality.default_service_level_s)
        return {}
    return {name: float(q.service_level_s) for name, q in site.queues.items()}
