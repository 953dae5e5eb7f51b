"""The CTI's HTTP and websocket API, under ``/api/v1/``. Every call but login takes
``Authorization: Bearer TOKEN``; errors are JSON ``{"error": "..."}`` (401 no/invalid/expired
token, 403 role or scope, 400 bad input, 409 not now, 502/503 PBX refused/unreachable).

Auth (any role)::

    POST /api/v1/auth/login     {"username", "password"} -> {"token", "expires_in"}
                                401 wrong credentials (one message), 429 throttled (Retry-After)
    POST /api/v1/auth/logout    revokes this token (its websockets close)
    GET  /api/v1/me             {"user_id", "username", "role", "team", "endpoint"}

Agent desktop (role ``agent``; acts on the caller's own phone only)::

    GET  /api/v1/agent/config   {"pause_reasons", "dispositions", "queues"}
    GET  /api/v1/agent/state    {"state", "reason", "queues", "wrapup", "calls", ...}
    POST /api/v1/agent/login    {"queues": [...]} (optional; default: all the agent may serve)
                                -> AMI QueueAdd Interface=PJSIP/<phone> MemberName=<username>
    POST /api/v1/agent/logout   -> AMI QueueRemove from every queue
    POST /api/v1/agent/pause    {"reason"} (one of cti.pause_reasons) -> AMI QueuePause Reason
    POST /api/v1/agent/ready    unpause; ends any open after-call work without a wrap-up
    POST /api/v1/agent/wrapup   {"linkedid", "disposition", "notes", "case"?: subject}
                                writes the interaction, publishes WrapUpSubmitted, unpauses

Customer history (audited in ``history_views``: who, when, why)::

    GET  /api/v1/customers/{id}/history?linkedid=L
            agents: only for a call offered/connected to them or in their wrap-up, whose
            caller is that customer; supervisors: such a call of an agent of their team;
            managers/admins: any customer (reason L, or ``search`` without linkedid)
            -> {"customer", "interactions", "cases"}
    GET  /api/v1/customers?q=TEXT        managers/admins: find by number or name
    POST /api/v1/cases/{id}/close        whoever may see that customer's history now
    GET  /api/v1/team/agents             supervisors: their team's agent states;
                                         managers/admins: everyone's (states, never KPIs)
    GET  /api/v1/audit/history-views?customer_id=&username=   managers/admins

Websocket ``GET /api/v1/ws`` (the token is never in the URL)::

    -> {"type": "auth", "token": T}      first message, within auth.ws_auth_timeout_s
    <- {"type": "hello", "username", "role", "team"}
    <- {"type": "state", "agent", "state", "reason", "queues", "wrapup", ..., "version"}
                                         (version rises with each change; REST replies carry it
                                         too, so a client keeps the newest)
    <- {"type": "pop", ...}  (see cti.pop)     <- {"type": "pop_end", "linkedid", "agent", "reason"}
    -> {"type": "watch"} / {"type": "watch", "agent": NAME}   supervisors, own team only
    -> {"type": "ping"}  <- {"type": "pong"}
    close 4401: not authenticated / token revoked or expired; 4008: too far behind
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from cti.auth import Principal, json_error, require_roles

if TYPE_CHECKING:
    from cti.component import CTIComponent

MAX_NOTES = 4000
MAX_SUBJECT = 200


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _Bad(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _Bad(400, "body must be a JSON object")
    return body


class _Bad(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _errors(handler):
    """CTIError/_Bad -> JSON error responses (inside the role guard)."""
    import functools

    from cti.component import CTIError

    @functools.wraps(handler)
    async def wrapped(self, request):
        try:
            return await handler(self, request)
        except (CTIError, _Bad) as exc:
            return json_error(exc.status, str(exc))

    return wrapped


class CTIApi:
    def __init__(self, cti: CTIComponent) -> None:
        self.cti = cti

    # -- agent desktop -----------------------------------------------------------------------
    async def _me(self, request: web.Request):
        return await self.cti.agent_for(request["principal"].username)

    @require_roles("agent")
    @_errors
    async def config(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        s = self.cti.settings
        return web.json_response({"pause_reasons": list(s.pause_reasons),
                                  "dispositions": list(s.dispositions),
                                  "queues": list(a.allowed)})

    @require_roles("agent")
    @_errors
    async def state(self, request: web.Request) -> web.Response:
        return web.json_response((await self._me(request)).public())

    @require_roles("agent")
    @_errors
    async def login(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        queues = (await _body(request)).get("queues")
        if queues is not None and not (isinstance(queues, list)
                                       and all(isinstance(q, str) for q in queues)):
            raise _Bad(400, "queues must be a list of queue names")
        await self.cti.login(a, queues)
        return web.json_response(a.public())

    @require_roles("agent")
    @_errors
    async def logout(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        await self.cti.logout(a)
        return web.json_response(a.public())

    @require_roles("agent")
    @_errors
    async def pause(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        reason = (await _body(request)).get("reason")
        if not isinstance(reason, str):
            raise _Bad(400, "reason is required")
        await self.cti.pause(a, reason)
        return web.json_response(a.public())

    @require_roles("agent")
    @_errors
    async def ready(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        await self.cti.ready(a)
        return web.json_response(a.public())

    @require_roles("agent")
    @_errors
    async def wrapup(self, request: web.Request) -> web.Response:
        a = await self._me(request)
        body = await _body(request)
        lid, disp = body.get("linkedid"), body.get("disposition")
        notes, case = body.get("notes", ""), body.get("case")
        if not isinstance(lid, str) or not isinstance(disp, str):
            raise _Bad(400, "linkedid and disposition are required")
        if not isinstance(notes, str) or len(notes) > MAX_NOTES:
            raise _Bad(400, f"notes must be text of at most {MAX_NOTES} characters")
        if case is not None and (not isinstance(case, str) or len(case) > MAX_SUBJECT):
            raise _Bad(400, f"case must be a subject of at most {MAX_SUBJECT} characters")
        out = await self.cti.wrap_up(a, lid, disp, notes.strip(), (case or "").strip() or None)
        return web.json_response(out)

    # -- history -------------------------------------------------------------------------------
    def may_see(self, p: Principal, customer_id: int, linkedid: str | None) -> bool:
        """Agents: their own current call's customer; supervisors: their team's calls."""
        if p.role in ("manager", "admin"):
            return True
        if not linkedid:
            return False
        info = self.cti.calls.get(linkedid)
        if info is None or info.customer_id != customer_id:
            return False
        agents = self.cti.agents_of(linkedid)
        if p.role == "agent":
            return any(a.username == p.username for a in agents)
        return p.team is not None and any(a.team == p.team for a in agents)

    @require_roles()
    @_errors
    async def history(self, request: web.Request) -> web.Response:
        p: Principal = request["principal"]
        try:
            cid = int(request.match_info["id"])
        except ValueError:
            raise _Bad(400, "customer id must be a number") from None
        lid = request.query.get("linkedid") or None
        if not self.may_see(p, cid, lid):
            raise _Bad(403, "forbidden: only for a call offered to you (or your team)")
        customer = await self.cti.store.get(cid)
        if customer is None:
            raise _Bad(404, "no such customer")
        interactions, cases = await self.cti.store.history(cid)
        self.cti.audit(p.username, p.role, cid, lid or "search", "api")
        return web.json_response({"customer": customer.public(),
                                  "interactions": [i.public() for i in interactions],
                                  "cases": [c.public() for c in cases]})

    @require_roles("manager", "admin")
    @_errors
    async def search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        if len(q) < 2:
            raise _Bad(400, "q: at least 2 characters (a number or part of a name)")
        found = await self.cti.store.search(q)
        return web.json_response({"customers": [c.public() for c in found]})

    @require_roles()
    @_errors
    async def close_case(self, request: web.Request) -> web.Response:
        p: Principal = request["principal"]
        try:
            case_id = int(request.match_info["id"])
        except ValueError:
            raise _Bad(400, "case id must be a number") from None
        case = await self.cti.store.case(case_id)
        lid = request.query.get("linkedid") or None
        if case is None and p.role in ("manager", "admin"):
            raise _Bad(404, "no such case")
        if case is None or not self.may_see(p, case.customer_id, lid):  # same answer: no probing
            raise _Bad(403, "forbidden: only for a call offered to you (or your team)")
        closed = await self.cti.store.close_case(case_id)
        return web.json_response(closed.public())

    @require_roles("supervisor", "manager", "admin")
    @_errors
    async def team(self, request: web.Request) -> web.Response:
        p: Principal = request["principal"]
        await self.cti.load_agents()
        agents = [a for a in self.cti.registry.by_name.values()
                  if p.role != "supervisor" or (p.team is not None and a.team == p.team)]
        return web.json_response({"agents": [a.public() for a in
                                             sorted(agents, key=lambda a: a.username)]})

    @require_roles("manager", "admin")
    @_errors
    async def audit_views(self, request: web.Request) -> web.Response:
        cid = request.query.get("customer_id")
        if cid is not None and not cid.isdigit():
            raise _Bad(400, "customer_id must be a number")
        views = await self.cti.store.views(int(cid) if cid else None,
                                           request.query.get("username") or None)
        return web.json_response({"views": views})

    # -- websocket -------------------------------------------------------------------------------
    async def ws(self, request: web.Request) -> web.StreamResponse:
        return await self.cti.hub.serve(request, self.cti.ws_open, self.cti.ws_message)


def add_api_routes(app: web.Application, cti: CTIComponent) -> CTIApi:
    api = CTIApi(cti)
    r = app.router
    r.add_get("/api/v1/agent/config", api.config)
    r.add_get("/api/v1/agent/state", api.state)
    r.add_post("/api/v1/agent/login", api.login)
    r.add_post("/api/v1/agent/logout", api.logout)
    r.add_post("/api/v1/agent/pause", api.pause)
    r.add_post("/api/v1/agent/ready", api.ready)
    r.add_post("/api/v1/agent/wrapup", api.wrapup)
    r.add_get("/api/v1/customers", api.search)
    r.add_get("/api/v1/customers/{id}/history", api.history)
    r.add_post("/api/v1/cases/{id}/close", api.close_case)
    r.add_get("/api/v1/team/agents", api.team)
    r.add_get("/api/v1/audit/history-views", api.audit_views)
    r.add_get("/api/v1/ws", api.ws)
    return api
