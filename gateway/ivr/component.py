"""The IVR runner as a gateway component: ARI StasisStart ``ivr,<flow>`` -> an :class:`IvrSession`.

Every call is its own task; ARI events reach the session they concern by channel id (the caller,
its snoop and external media channels) or by the playback's target channel, in the ARI reader
and without blocking it. Flows are loaded at start; a flow whose language has no installed
speech model runs on keys alone, said once at start with the reason, not on every call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

from gateway.component import Component, GatewayContext
from gateway.dialplan.flow import Flow, load_flow
from gateway.dialplan.problems import ConfigError
from gateway.events import IvrCompleted, MediaStats
from gateway.ivr import transcripts
from gateway.ivr.ears import DtmfOnly, Ears
from gateway.ivr.media import CallMedia
from gateway.ivr.session import IvrConfig, IvrSession

log = logging.getLogger(__name__)


class IvrComponent(Component):
    name = "ivr"

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.flows: dict[str, Flow] = {}
        self.ears: dict[str, Ears] = {}
        self.sessions: dict[str, IvrSession] = {}  # caller channel id -> session
        self._by_channel: dict[str, IvrSession] = {}
        self._tasks: set[asyncio.Task] = set()
        self.completed: list[IvrSession] = []  # recent, for tests and the debug endpoint
        self.asterisk_queues: set[str] = set()
        self._stopping = False

    # -- component life cycle ----------------------------------------------------------------
    def setup(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        ctx.ari.on_event(self._on_ari)
        ctx.readiness["ivr"] = lambda: bool(self.flows)

    async def start(self) -> None:
        self.flows = await asyncio.to_thread(self._load_flows, self.ctx.settings.flows_path)
        for flow in self.flows.values():
            self.ears[flow.name] = await self._make_ears(flow)
        await self._check_queues()

    async def _check_queues(self) -> None:
        """Say at start, once, when a flow routes to a queue Asterisk does not have: such a call
        would be continued into ``Queue()`` and hung up on."""
        try:
            summary = await self.ctx.ami.action_list("QueueSummary")
        except Exception as exc:  # noqa: BLE001 - a check, not a reason to stop the IVR
            log.warning("IVR: could not list Asterisk's queues: %s", exc)
            return
        self.asterisk_queues = {e.get("Queue") for e in summary if e.get("Queue")}
        for flow in self.flows.values():
            missing = sorted({i.queue for i in flow.intents} - self.asterisk_queues)
            if missing:
                log.error("IVR flow %s routes to queues Asterisk does not have: %s (callers "
                          "sent there are hung up on)", flow.name, ", ".join(missing))

    def _load_flows(self, path: Path) -> dict[str, Flow]:
        flows = {}
        for f in sorted(path.glob("*.yaml")):
            try:
                flows[f.stem] = load_flow(f)
            except ConfigError as exc:
                log.error("IVR flow %s not loaded; its calls go to the fallback queue:\n%s", f, exc)
        if not flows:
            log.error("IVR: no usable flow in %s", path)
        return flows

    async def _make_ears(self, flow: Flow) -> Ears:
        from gateway.ivr.pipeline import ears_for

        try:
            ears = await ears_for(flow, self.ctx.settings)
        except Exception as exc:  # noqa: BLE001 - one clear warning per flow, then keys only
            ears = DtmfOnly(str(exc) or type(exc).__name__)
        if not ears.speech:
            log.warning("IVR flow %s (%s): no speech recognition (%s); callers use keys only",
                        flow.name, flow.locale, ears.reason)
        return ears

    async def stop(self) -> None:
        """Callers still in the IVR go to their fallback queue, then the tasks end."""
        self._stopping = True
        for s in list(self.sessions.values()):
            s.shutdown()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=15)
        for t in list(self._tasks):
            t.cancel()

    # -- ARI events ---------------------------------------------------------------------------
    def _on_ari(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "StasisStart":
            args = ev.get("args") or []
            if args and args[0] == "ivr":
                self._begin(ev["channel"], args[1] if len(args) > 1 else "")
                return
        chan = (ev.get("channel") or {}).get("id")
        if chan is None and kind and kind.startswith("Playback"):
            target = (ev.get("playback") or {}).get("target_uri", "")
            chan = target.partition(":")[2] if target.startswith("channel:") else None
        s = self._by_channel.get(chan or "")
        if s is not None:
            s.on_ari_event(ev)

    def _begin(self, channel: dict, flow_name: str) -> None:
        settings = self.ctx.settings
        flow = self.flows.get(flow_name)
        if flow is None or self._stopping:
            asyncio.get_running_loop().create_task(self._unknown_flow(channel, flow_name))
            return
        ivr = settings.ivr
        ports = (ivr.rtp_port_start, ivr.rtp_port_end) if ivr.rtp_port_start else None
        cfg = IvrConfig(settings.asterisk.ari_app, settings.asterisk.prompts_dir, ivr.media_host,
                        ports, ivr.decode_timeout_s, ivr.prompt_timeout_s, ivr.db_timeout_s)
        ears = self.ears[flow.name]

        def media(on_pcm):
            m = CallMedia(self.ctx.ari, cfg.app, channel["id"], cfg.media_host, cfg.rtp_ports,
                          on_pcm)
            for cid in m.channel_ids:
                self._by_channel[cid] = session
            return m

        session = IvrSession(
            ari=self.ctx.ari, flow=flow, ears=ears, config=cfg, channel=channel,
            media_factory=media if ears.speech else None,
            save_transcript=lambda s: transcripts.save(self.ctx.sessions, s),
            redirect=self._redirect, on_leave=self._on_leave, on_media_stats=self._on_media_stats)
        self.sessions[session.channel_id] = session
        self._by_channel[session.channel_id] = session
        enter = asyncio.get_running_loop().create_task(self._enter(session))
        self._tasks.add(enter)
        enter.add_done_callback(self._tasks.discard)
        task = asyncio.get_running_loop().create_task(self._run(session),
                                                      name=f"ivr-{session.linkedid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enter(self, session: IvrSession) -> None:
        """Mark the record once the tracker knows the call: ARI's StasisStart and AMI's
        Newchannel travel on different sockets and either may come first."""
        tracker = self.ctx.tracker
        for _ in range(100):
            call = tracker.live.get(session.linkedid)
            if call is not None:
                tracker.ivr_enter(session.linkedid, session.flow.name)
                if call.ivr_via is None and not session.outcome.via:
                    # Provisional: a caller who hangs up ends the record on AMI's Hangup, which
                    # may come before this IVR sees its own StasisEnd; routing overwrites it.
                    call.ivr_via = "hangup"
                return
            await asyncio.sleep(0.05)
        log.warning("IVR %s: the call tracker never saw this call", session.linkedid)

    async def _run(self, session: IvrSession) -> None:
        try:
            await session.run()
        finally:
            self.sessions.pop(session.channel_id, None)
            for cid in [c for c, s in self._by_channel.items() if s is session]:
                del self._by_channel[cid]
            self.completed.append(session)
            del self.completed[:-200]

    async def _unknown_flow(self, channel: dict, flow_name: str) -> None:
        """Bad Stasis arguments (or stopping): the caller still reaches an agent."""
        queue = self.ctx.settings.ivr.fallback_queue
        log.error("IVR: %s for channel %s; sending it to queue %s",
                  "gateway stopping" if self._stopping else f"unknown flow {flow_name!r}",
                  channel.get("name"), queue)
        try:
            await self.ctx.ari.request("POST", f"/channels/{channel['id']}/continue",
                                       context="centralino-queues", extension=queue, priority=1)
        except Exception:
            log.exception("IVR: could not continue %s", channel.get("name"))

    # -- what a session reports -----------------------------------------------------------------
    def _on_leave(self, s: IvrSession) -> None:
        o = s.outcome
        self.ctx.tracker.ivr_leave(s.linkedid, intent=o.intent, confidence=o.confidence,
                                   language=s.flow.language, via=o.via,
                                   transcript_id=o.transcript_id, queue=o.queue)
        self.ctx.bus.publish(IvrCompleted(
            linkedid=s.linkedid, channel_id=s.channel_id, flow=s.flow.name,
            language=s.flow.language, intent=o.intent, confidence=o.confidence, via=o.via or "",
            queue=o.queue, transcript=o.transcript, transcript_id=o.transcript_id,
            at=datetime.now(UTC)))

    def _on_media_stats(self, s: IvrSession, media: CallMedia, snap) -> None:
        self.ctx.bus.publish(MediaStats(
            linkedid=s.linkedid, uniqueid=s.channel_id, source="ivr-external-media",
            codec="ulaw", packets=snap.received, lost=snap.lost,
            jitter_ms_avg=snap.jitter_ms_avg, jitter_ms_max=snap.jitter_ms_max, rtt_ms=None,
            started_at=media.started_at, ended_at=media.ended_at or datetime.now(UTC)))

    async def _redirect(self, channel_name: str, queue: str) -> None:
        await self.ctx.ami.action("Redirect", Channel=channel_name, Context="centralino-queues",
                                  Exten=queue, Priority="1")
