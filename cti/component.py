"""The CTI as a gateway component: agent sessions in step with Asterisk, the screen pop, the
customer history and the agent desktop, wired to the AMI link, the call tracker and the bus.

Hot path: ``AgentCalled`` -> the inline AMI callback finds the agent by phone, builds the pop
from the call's :class:`~cti.pop.CallInfo` (the customer lookup starts with the caller's first
channel, ``Newchannel``, and at the latest on ``QueueCallerJoin``) and
queues one JSON frame on that agent's websockets (and their supervisor's, if watching). No
database and no await on the way; the audit row is written later by a background task.

After-call work: when a queue call connects, the member is paused with reason ``wrap-up`` in
Asterisk at once, so that no second call can be offered in the instant between hang-up and
pause; the agent's state becomes ``wrap_up`` when the call ends and stays so until the wrap-up
form is submitted (or the agent goes ready), then the member is unpaused unless the agent
chose another pause meanwhile. Every state change is published as
:class:`~gateway.events.AgentStateChanged`, every submitted form as
:class:`~gateway.events.WrapUpSubmitted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta

from cti.agents import WRAP_UP, Agent, AgentRegistry, Effect, endpoint_of
from cti.auth import Authenticator, add_auth_routes
from cti.customers import (
    CustomerContext,
    CustomerStore,
    DBDirectory,
    WrapUp,
    load_directory,
)
from cti.hub import Conn, Hub, Later
from cti.pop import CallInfo, new_info, pop_payload
from gateway.ami.client import AMIActionError, AMIError
from gateway.component import Component, GatewayContext
from gateway.events import AgentStateChanged, CallSaved, IvrCompleted, WrapUpSubmitted

log = logging.getLogger(__name__)

_REGISTRY_EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause",
                    "QueueMemberStatus", "AgentCalled", "AgentRingNoAnswer", "AgentConnect",
                    "AgentComplete", "AgentDump", "QueueCallerAbandon", "Newchannel", "Newstate",
                    "Hangup", "AttendedTransfer")
_STALE = timedelta(hours=12)  # a call nobody wraps up is forgotten after this


class CTIError(Exception):
    """A desktop request that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CTIComponent(Component):
    name = "cti"

    def setup(self, ctx: GatewayContext) -> None:
        from cti.api import add_api_routes
        from cti.desktop import add_desktop_routes

        self.ctx = ctx
        self.settings = ctx.settings.cti
        self.window = timedelta(days=self.settings.repeat_window_days)
        self.auth = Authenticator(ctx.sessions, ctx.settings.auth)
        self.store = CustomerStore(ctx.sessions, repeat_window=self.window,
                                   history_limit=self.settings.history_limit)
        self.directory = load_directory(self.settings.directory, self.store)
        self.registry = AgentRegistry()
        self.hub = Hub(self.auth)
        self.calls: dict[str, CallInfo] = {}
        self._audit: asyncio.Queue[dict] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self._background: list[asyncio.Task] = []
        self._started = False
        self._pending_lookups: dict[str, list[asyncio.Future[CustomerContext]]] = {}
        self._lookup_worker: asyncio.Task | None = None
        handlers = {name: self._registry_event for name in _REGISTRY_EVENTS}
        handlers.update(Newchannel=self._on_newchannel, QueueCallerJoin=self._on_join,
                        BlindTransfer=self._on_transfer,
                        AttendedTransfer=self._on_attended, Hold=self._on_hold,
                        Unhold=self._on_hold)
        self._ami_handlers = handlers
        self._state_seq = 0
        ctx.ami.on_event(self._on_ami)
        ctx.ami.on_connected(self._on_ami_connected)
        ctx.bus.subscribe(IvrCompleted, self._on_ivr)
        ctx.bus.subscribe(CallSaved, self._on_call_saved)
        ctx.app.on_shutdown.append(self._close_desktops)
        add_auth_routes(ctx.app, self.auth)
        add_api_routes(ctx.app, self)
        add_desktop_routes(ctx.app)

    async def start(self) -> None:
        await self.load_agents()
        self._background = [asyncio.create_task(self._audit_writer(), name="cti-audit"),
                            asyncio.create_task(self._sweeper(), name="cti-sweep")]
        self._started = True
        await self.resync_queues()

    async def _close_desktops(self, _app=None) -> None:
        """HTTP shutdown: open websockets would hold it up until its timeout; say goodbye."""
        for conns in list(self.hub.by_user.values()):
            for c in list(conns):
                c.close(1001)

    async def stop(self) -> None:
        self._started = False
        await self._close_desktops()
        for t in self._background:
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._flush_audit()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- roster and resync -------------------------------------------------------------------------
    async def load_agents(self) -> None:
        from sqlalchemy import select

        from cti.orm import UserQueueRow, UserRow

        async with self.ctx.sessions() as s:
            users = (await s.scalars(select(UserRow).where(
                UserRow.role == "agent", UserRow.disabled.is_(False),
                UserRow.endpoint.is_not(None)))).all()
            queues: dict[int, list[str]] = {}
            for uq in (await s.scalars(select(UserQueueRow))).all():
                queues.setdefault(uq.user_id, []).append(uq.queue)
        names = set()
        for u in users:
            self.registry.put(u.id, u.username, u.endpoint, u.team,
                              tuple(sorted(queues.get(u.id, ()))))
            names.add(u.username)
        for gone in set(self.registry.by_name) - names:
            self.registry.remove(gone)
            self.hub.close_user(gone)

    async def agent_for(self, username: str) -> Agent:
        """The agent's live session; (re)loads the roster for a user added since start."""
        a = self.registry.by_name.get(username)
        if a is None:
            await self.load_agents()
            a = self.registry.by_name.get(username)
        if a is None:
            raise CTIError(409, "this user has no phone bound; ask an admin (users add --phone)")
        return a

    async def _on_ami_connected(self) -> None:
        if self._started:  # the first login happens before start(), which resyncs itself
            await self.resync_queues()

    async def resync_queues(self) -> None:
        """Membership and pauses from ``QueueStatus``: after start and after every reconnect."""
        try:
            resp = await self.ctx.ami.action("QueueStatus")
        except AMIError as exc:
            log.warning("CTI: QueueStatus failed, agent states may be stale: %s", exc)
            return
        members = [ev.get for ev in resp.events if ev.name == "QueueMember"]
        self.registry.resync(members)
        for a in self.registry.by_name.values():
            self._announce(a)

    # -- AMI events (inline on the reader: quick, no awaits) ---------------------------------------
    def _on_ami(self, ev) -> None:
        h = self._ami_handlers.get(ev.name)
        if h is not None:
            h(ev)

    def _registry_event(self, ev) -> None:
        get = ev.get
        effects = self.registry.handle(ev.name, get, self._is_customer_call)
        for e in effects:
            self._apply(e)
        touched = self.registry.of_interface(get)
        if touched is None:
            touched = self.registry.by_endpoint.get(endpoint_of(get("Channel")) or "")
        if touched is not None:
            self._announce(touched)
        for e in effects:
            if e.agent is not touched:
                self._announce(e.agent)
        if ev.name == "Hangup":
            lid = get("Linkedid")
            if lid and lid in self.calls and lid not in self.ctx.tracker.live:
                self.calls[lid].ended = True
                self._maybe_forget(lid)

    def _is_customer_call(self, lid: str) -> bool:
        call = self.ctx.tracker.live.get(lid)
        if call is None:
            return lid in self.calls
        first = call.legs[0].endpoint if call.legs else None
        return first not in self.registry.by_endpoint

    def _on_newchannel(self, ev) -> None:
        """A caller's first channel: start the customer lookup now, well before any queue."""
        self._registry_event(ev)
        uid, lid = ev.get("Uniqueid"), ev.get("Linkedid")
        if uid and uid == lid and lid not in self.calls and self._is_customer_call(lid):
            self._ensure_lookup(self._info(lid, ev.get("CallerIDNum"), ev.get("CallerIDName")))

    def _on_join(self, ev) -> None:
        lid = ev.get("Linkedid")
        if not lid:
            return
        info = self._info(lid, ev.get("CallerIDNum"), ev.get("CallerIDName"))
        info.queue = ev.get("Queue") or info.queue
        self._ensure_lookup(info)

    def _on_transfer(self, ev) -> None:
        lid = ev.get("TransfererLinkedid")
        if lid and lid in self.calls:
            self.calls[lid].refresh(self.ctx.tracker.live.get(lid))
            self._update_pops(lid)

    def _on_attended(self, ev) -> None:
        """The registry moves the consulted agent onto the caller's call; the count of transfers
        is raised first so that agent's first pop of the call already shows it."""
        lid = ev.get("OrigTransfererLinkedid")
        info = self.calls.get(lid) if lid else None
        if info is not None:
            info.refresh(self.ctx.tracker.live.get(lid))
            info.transfers = max(info.transfers, 1)
        self._registry_event(ev)
        if info is not None:
            self._update_pops(lid)

    def _on_hold(self, ev) -> None:
        lid = ev.get("Linkedid")
        if lid and lid in self.calls:
            self.calls[lid].hold = ev.name == "Hold"
            self._update_pops(lid)

    def _apply(self, e: Effect) -> None:
        a, lid = e.agent, e.linkedid
        if e.kind == "offered":
            info = self._info(lid)
            if e.queue:
                info.queue = e.queue
            info.offered_at.setdefault(a.username, datetime.now(UTC))
            self._ensure_lookup(info)
            self._push(a, info, "ringing")
        elif e.kind in ("connected", "moved"):
            info = self._info(lid)
            if e.kind == "moved" and e.why:
                self._pop_end(a, e.why, "transferred")
            info.offered_at.setdefault(a.username, datetime.now(UTC))
            self._ensure_lookup(info)
            self._push(a, info, "connected")
            if a.member and e.queue is not None:
                self._spawn(self._pause(a, True, WRAP_UP), "pre-pause for wrap-up")
        elif e.kind == "ended_offer":
            self._pop_end(a, lid, e.why or "ended")
        elif e.kind == "ended_call":
            info = self.calls.get(lid)
            if info is not None:
                self._push(a, info, "wrap_up")
            if a.member and not a.paused:
                self._spawn(self._pause(a, True, WRAP_UP), "pause for wrap-up")

    # -- calls and customers -----------------------------------------------------------------------
    def _info(self, lid: str, number: str | None = None, name: str | None = None) -> CallInfo:
        if name in ("", "<unknown>"):
            name = None
        if number in ("", "<unknown>"):
            number = None
        info = self.calls.get(lid)
        live = self.ctx.tracker.live.get(lid)
        if info is None:
            if live is not None:
                info = new_info(lid, live.caller_number or number, live.caller_name or name,
                                live.started_at, self.settings.caller_aliases)
            else:
                info = new_info(lid, number, name, aliases=self.settings.caller_aliases)
            self.calls[lid] = info
        info.refresh(live)
        return info

    def _ensure_lookup(self, info: CallInfo) -> None:
        if info.ctx is not None or info.lookup is not None:
            return
        if info.number.status != "ok":  # withheld or not a number: nothing to look up
            info.ctx = CustomerContext(None, None)
            return
        info.lookup = self._spawn(self._lookup(info), f"lookup {info.linkedid}")

    async def _lookup(self, info: CallInfo) -> None:
        e164 = info.number.e164
        try:
            if type(self.directory) is DBDirectory:
                info.ctx = await self._batched_lookup(e164)
            else:
                customer = await self.directory.lookup(e164)
                if customer is not None and customer.id is None:
                    customer = await self.store.ensure_local(customer)
                info.ctx = await self.store.context(customer, e164)
        except Exception:
            log.exception("CTI: customer lookup failed for call %s", info.linkedid)
            info.ctx = CustomerContext(None, e164)
        self._update_pops(info.linkedid)

    def _batched_lookup(self, e164: str) -> asyncio.Future[CustomerContext]:
        """Lookups asked for in the same moment (a burst of calls) share one set of queries."""
        fut = asyncio.get_running_loop().create_future()
        self._pending_lookups.setdefault(e164, []).append(fut)
        if self._lookup_worker is None or self._lookup_worker.done():
            self._lookup_worker = self._spawn(self._lookup_batches(), "customer lookups")
        return fut

    async def _lookup_batches(self) -> None:
        await asyncio.sleep(0)  # let the rest of this AMI read queue its lookups too
        while self._pending_lookups:
            batch = dict(list(self._pending_lookups.items())[:500])
            for n in batch:
                del self._pending_lookups[n]
            try:
                found = await self.store.lookup_contexts(list(batch))
            except Exception as exc:
                log.exception("CTI: customer lookup of %d numbers failed", len(batch))
                for futs in batch.values():
                    for f in futs:
                        if not f.done():
                            f.set_exception(exc)
                continue
            for n, futs in batch.items():
                for f in futs:
                    if not f.done():
                        f.set_result(found[n])

    def _update_pops(self, lid: str) -> None:
        info = self.calls.get(lid)
        if info is None:
            return
        for a in self.agents_of(lid):
            self._push(a, info, self._status(a, lid))

    def agents_of(self, lid: str) -> list[Agent]:
        """The agents this call is offered or connected to, or in whose wrap-up it is (every
        agent it ever reached is in its ``offered_at``: no scan of all agents)."""
        info = self.calls.get(lid)
        if info is None:
            return self.registry.with_call(lid)
        by_name = self.registry.by_name
        return [a for n in info.offered_at if (a := by_name.get(n)) is not None and a.involved(lid)]

    @staticmethod
    def _status(a: Agent, lid: str) -> str:
        if lid in a.connected:
            return "connected"
        if lid in a.offered:
            return "ringing"
        return "wrap_up"

    def _push(self, a: Agent, info: CallInfo, status: str) -> None:
        text = json.dumps(pop_payload(info, a.username, status, self.window))
        self.hub.to_user(a.username, text)
        cid = info.customer_id
        if cid is not None:
            self._audit_once(info, a.username, "agent", "pop", cid)
        for w in self.hub.watchers_of(a.username, a.team):
            w.send(text)
            if cid is not None:
                p = w.principal
                self._audit_once(info, p.username, p.role, "watch", cid)

    def _pop_end(self, a: Agent, lid: str, reason: str) -> None:
        text = json.dumps({"type": "pop_end", "linkedid": lid, "agent": a.username,
                           "reason": reason})
        self.hub.to_user(a.username, text)
        for w in self.hub.watchers_of(a.username, a.team):
            w.send(text)

    def _audit_once(self, info: CallInfo, username: str, role: str, via: str, cid: int) -> None:
        key = (username, via)
        if key not in info.audited:
            info.audited.add(key)
            self.audit(username, role, cid, info.linkedid, via)

    def audit(self, username: str, role: str, customer_id: int, reason: str, via: str) -> None:
        self._audit.put_nowait({"at": datetime.now(UTC), "username": username, "role": role,
                                "customer_id": customer_id, "reason": reason, "via": via})

    async def _audit_writer(self) -> None:
        while True:
            first = await self._audit.get()
            batch = [first]
            while not self._audit.empty() and len(batch) < 500:
                batch.append(self._audit.get_nowait())
            try:
                await self.store.record_views(batch)
            except Exception:
                log.exception("CTI: could not write %d audit rows; retrying", len(batch))
                for row in batch:
                    self._audit.put_nowait(row)
                await asyncio.sleep(1)

    async def _flush_audit(self) -> None:
        batch = []
        while not self._audit.empty():
            batch.append(self._audit.get_nowait())
        if batch:
            try:
                await self.store.record_views(batch)
            except Exception:
                log.exception("CTI: %d audit rows lost at shutdown", len(batch))

    def _maybe_forget(self, lid: str) -> None:
        info = self.calls.get(lid)
        if info is not None and info.ended and info.saved and not self.agents_of(lid):
            del self.calls[lid]

    async def _sweeper(self) -> None:
        """Every minute: re-read the roster (users added or disabled from the CLI) and forget
        calls nobody will wrap up any more."""
        while True:
            await asyncio.sleep(60)
            try:
                await self.load_agents()
            except Exception:
                log.exception("CTI: could not reload the agents")
            cutoff = datetime.now(UTC) - _STALE
            for lid, info in list(self.calls.items()):
                if info.started_at < cutoff and lid not in self.ctx.tracker.live:
                    del self.calls[lid]

    # -- bus ---------------------------------------------------------------------------------------
    def _on_ivr(self, e: IvrCompleted) -> None:
        info = self._info(e.linkedid)
        info.transcript = e.transcript
        for f, v in (("intent", e.intent), ("intent_confidence", e.confidence),
                     ("language", e.language), ("ivr_via", e.via),
                     ("transcript_id", e.transcript_id), ("queue", e.queue)):
            if v is not None:
                setattr(info, f, v)
        self._ensure_lookup(info)
        self._update_pops(e.linkedid)

    async def _on_call_saved(self, e: CallSaved) -> None:
        call = e.call
        info = self.calls.get(call.linkedid)
        if not (call.queue or call.intent or (info and info.offered_at)):
            if info is not None:
                info.saved = info.ended = True
                self._maybe_forget(call.linkedid)
            return  # not a contact-centre call (a line check, an agent's own call)
        if info is None:
            info = new_info(call.linkedid, call.caller_number, call.caller_name, call.started_at,
                            self.settings.caller_aliases)
            self.calls[call.linkedid] = info
            self._ensure_lookup(info)
        if info.lookup is not None:
            await asyncio.shield(info.lookup)
        info.refresh(call)
        info.ended = True
        try:
            await self.store.record_interaction(
                call.linkedid, at=call.started_at, customer_id=info.customer_id,
                caller_number=self._stored_number(info), intent=info.intent,
                queue=info.queue, agent=call.agent)
        finally:
            info.saved = True
            self._maybe_forget(call.linkedid)

    @staticmethod
    def _stored_number(info: CallInfo) -> str | None:
        n = info.number
        return n.e164 if n.status == "ok" else (None if n.status == "withheld" else n.raw or None)

    # -- desktop actions (called by the API) -------------------------------------------------------
    async def _action(self, name: str, ok_errors: tuple[str, ...] = (), **fields) -> None:
        try:
            await self.ctx.ami.action(name, **fields)
        except AMIActionError as exc:
            msg = exc.response.message or ""
            if not any(s.lower() in msg.lower() for s in ok_errors):
                raise CTIError(502, f"Asterisk refused {name}: {msg}") from None
        except AMIError as exc:
            raise CTIError(503, f"the PBX link is down: {exc}") from None

    async def _pause(self, a: Agent, paused: bool, reason: str | None = None) -> None:
        fields = {"Interface": a.interface, "Paused": "true" if paused else "false"}
        if paused and reason:
            fields["Reason"] = reason
        await self._action("QueuePause", ("not found",), **fields)

    async def login(self, a: Agent, queues: list[str] | None) -> None:
        wanted = list(a.allowed) if not queues else queues
        bad = [q for q in wanted if q not in a.allowed]
        if bad:
            raise CTIError(403, f"not allowed to serve queue(s) {', '.join(bad)}")
        if not wanted:
            raise CTIError(409, "no queues assigned to this agent; ask an admin")
        for q in wanted:
            await self._action("QueueAdd", ("already there",), Queue=q, Interface=a.interface,
                               MemberName=a.username, StateInterface=a.interface,
                               Paused="false")

    async def logout(self, a: Agent) -> None:
        for q in sorted(set(a.member) | set(a.allowed)):
            await self._action("QueueRemove", ("not there", "no such queue"), Queue=q,
                               Interface=a.interface)

    async def pause(self, a: Agent, reason: str) -> None:
        if reason not in self.settings.pause_reasons:
            raise CTIError(400, f"unknown pause reason {reason!r}; one of "
                           f"{', '.join(self.settings.pause_reasons)}")
        if not a.member:
            raise CTIError(409, "log in to your queues first")
        await self._pause(a, True, reason)

    async def ready(self, a: Agent) -> None:
        """Ready for calls: ends any after-call work still open (no wrap-up is written)."""
        if a.connected:
            raise CTIError(409, "on a call")
        done = self.registry.finish_wrapup(a)
        for lid in done:
            self._pop_end(a, lid, "ready")
            self._maybe_forget(lid)
        await self._release(a, force=True)

    async def wrap_up(self, a: Agent, lid: str, disposition: str, notes: str,
                      case_subject: str | None) -> dict:
        if lid not in a.wrapup:
            raise CTIError(409, "no wrap-up is pending for this call")
        outcome = self.settings.dispositions.get(disposition)
        if outcome is None:
            raise CTIError(400, f"unknown disposition {disposition!r}; one of "
                           f"{', '.join(self.settings.dispositions)}")
        info = self.calls.get(lid) or new_info(lid, None, None)
        if info.lookup is not None:
            await asyncio.shield(info.lookup)
        now = datetime.now(UTC)
        interaction = await self.store.record_interaction(
            lid, at=info.started_at, customer_id=info.customer_id,
            caller_number=self._stored_number(info), intent=info.intent, queue=info.queue,
            agent=a.username, wrapup=WrapUp(a.username, disposition, outcome, notes, now))
        case = None
        if case_subject and info.customer_id is not None:
            case = await self.store.open_case(info.customer_id, case_subject, a.username, lid)
        if lid not in a.wrapup:  # submitted twice at once: the first one did the rest
            return {"interaction": interaction.public(), "case": case and case.public()}
        self.registry.finish_wrapup(a, lid)
        self.ctx.bus.publish(WrapUpSubmitted(lid, a.username, a.endpoint, disposition, now))
        self._pop_end(a, lid, "wrapped_up")
        self._maybe_forget(lid)
        await self._release(a)
        return {"interaction": interaction.public(), "case": case and case.public()}

    async def _release(self, a: Agent, force: bool = False) -> None:
        """After-call work is over: unpause the member if (only) the wrap-up pause holds them
        (``force``: any pause, the agent pressed ready)."""
        if a.wrapup or a.connected or not a.member or not (force or a.pause_reason == WRAP_UP):
            self._announce(a)
            return
        a.releasing = True
        self._announce(a)  # ready now; the QueueMemberPause event confirms it
        try:
            await self._pause(a, False)
        finally:
            a.releasing = False
            self._announce(a)

    # -- state announcements -------------------------------------------------------------------
    def _announce(self, a: Agent) -> None:
        """Send the agent's state if it changed, with a new ``version``: a REST reply computed
        before the change can reach the page after this frame, and must not overwrite it."""
        st = a.state()
        body = {"type": "state", **a.public()}
        body.pop("version")
        if json.dumps(body) == a.last_frame:
            return
        a.last_frame = json.dumps(body)
        self._state_seq += 1  # one counter for all agents: a version never counts one's activity
        a.version = self._state_seq
        frame = json.dumps({"type": "state", **a.public()})
        if st != a.published:
            a.published = st
            self.ctx.bus.publish(AgentStateChanged(a.username, a.endpoint, st[0], st[1],
                                                   datetime.now(UTC)))
        frame = Later(frame)
        self.hub.to_user(a.username, frame)
        for w in self.hub.watchers_of(a.username, a.team):
            w.send(frame)

    # -- websocket session -----------------------------------------------------------------------
    def ws_open(self, conn: Conn) -> None:
        p = conn.principal
        conn.send(json.dumps({"type": "hello", "username": p.username, "role": p.role,
                              "team": p.team}))
        a = self.registry.by_name.get(p.username)
        if a is not None:
            self._replay(conn, a)

    def _replay(self, conn: Conn, a: Agent) -> None:
        conn.send(json.dumps({"type": "state", **a.public()}))
        for lid in [*a.offered, *a.connected, *a.wrapup]:
            info = self.calls.get(lid)
            if info is not None:
                conn.send(json.dumps(pop_payload(info, a.username, self._status(a, lid),
                                                 self.window)))
                if info.customer_id is not None and conn.principal.username != a.username:
                    p = conn.principal
                    self._audit_once(info, p.username, p.role, "watch", info.customer_id)

    def ws_message(self, conn: Conn, msg: dict) -> None:
        p = conn.principal
        kind = msg.get("type")
        if kind == "ping":
            conn.send('{"type":"pong"}')
        elif kind == "watch":
            target = msg.get("agent")
            if p.role != "supervisor" or p.team is None:
                conn.send('{"type":"error","error":"forbidden: only supervisors watch, and '
                          'only their own team"}')
                return
            if target is None:
                conn.watch_team = True
                agents = [a for a in self.registry.by_name.values() if a.team == p.team]
            else:
                a = self.registry.by_name.get(str(target))
                if a is None or a.team != p.team:
                    conn.send('{"type":"error","error":"forbidden: not an agent of your team"}')
                    return
                conn.watch_agents.add(a.username)
                agents = [a]
            self.hub.watch(conn, p.team)
            for a in agents:
                self._replay(conn, a)
        else:
            conn.send(json.dumps({"type": "error", "error": f"unknown message type {kind!r}"}))

    # -- helpers -----------------------------------------------------------------------------------
    def _spawn(self, coro, what: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"cti: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            with contextlib.suppress(Exception):
                log.error("CTI: %s failed: %s", task.get_name(), task.exception())
