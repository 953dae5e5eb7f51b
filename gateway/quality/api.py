"""HTTP API and pages of the quality component; every rule is enforced here, on the server.

Who sees what (``cti.auth.require_roles``: 401 without a valid token, 403 for a wrong role):

=================================================  =========================================
``GET /api/v1/dashboards/overview|mos|daily``      manager, admin: aggregates only
``GET /api/v1/dashboards/export.csv``              manager, admin: aggregates only
``GET /api/v1/coaching/reviews``                   supervisor (own team only); manager and
                                                   admin name a ``team``
``GET /api/v1/coaching/agents/{username}``         supervisor (agents of their team only);
                                                   manager, admin
``GET /api/v1/quality/calls/{linkedid}``           supervisor (own team's calls), manager, admin
``GET /metrics``                                   Prometheus; aggregates only, no per-agent
                                                   label (optionally a scrape token)
``GET /dashboards/``, ``/dashboards/coaching``     static pages; they hold no data, the API
                                                   calls they make are guarded as above
=================================================  =========================================

Agents get 403 from every one of these: their own numbers are for their supervisor's coaching
conversation, not for a dashboard on their desk. No endpoint sorts agents by a figure.
"""

from __future__ import annotations

import csv
import hmac
import io
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cti.auth import Principal, bearer_token, json_error, require_roles
from gateway.metrics.prom import CONTENT_TYPE
from gateway.quality import reports
from gateway.quality.reports import Period
from gateway.quality.store import aware

if TYPE_CHECKING:
    from gateway.quality.component import QualityComponent

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "Cache-Control": "no-store"}
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
STATIC = {  # file -> content type; nothing else is served
    "dashboards.html": "text/html", "coaching.html": "text/html",
    "common.js": "text/javascript", "dashboards.js": "text/javascript",
    "coaching.js": "text/javascript", "style.css": "text/css",
    "chart.umd.min.js": "text/javascript", "chart.js.LICENSE.md": "text/plain",
}
MANAGERS = ("manager", "admin")


class BadQuery(ValueError):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=API_HEADERS)


def _date(text: str, name: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name} must be an ISO date (2026-11-23) or date-time, got {text!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def period_of(request: web.Request, default_days: int) -> Period:
    """``?days=N`` (1..366, until now) or ``?since=...&until=...`` (ISO dates, UTC)."""
    q = request.query
    now = datetime.now(UTC)
    if "since" in q or "until" in q:
        until = now
        if "until" in q:  # a plain date includes that whole day
            until = _date(q["until"], "until")
            if len(q["until"]) == 10:
                until += timedelta(days=1)
        since = until - timedelta(days=default_days)
        if "since" in q:
            since = _date(q["since"], "since")
        if since >= until:
            raise BadQuery("since must be before until")
        if until - since > timedelta(days=366):
            raise BadQuery("the period may be at most 366 days")
        return Period(since, until)
    try:
        days = int(q.get("days", default_days))
    except ValueError:
        raise BadQuery(f"days must be a whole number, got {q.get('days')!r}") from None
    if not 1 <= days <= 366:
        raise BadQuery(f"days must be 1..366, got {days}")
    return Period(now - timedelta(days=days), now)


def _csv_cell(v: Any) -> Any:
    """Spreadsheets run cells that start with = + - @: such text gets a leading quote."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else v


def add_routes(app: web.Application, comp: QualityComponent) -> None:
    sessions = comp.ctx.sessions
    cfg = comp.cfg

    def period(request: web.Request) -> Period:
        return period_of(request, cfg.dashboard_days)

    def guarded_query(handler):
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadQuery as exc:
                return json_error(400, str(exc))
        run.__name__ = handler.__name__
        return run

    # -- managers: aggregates ---------------------------------------------------------------
    @require_roles(*MANAGERS)
    @guarded_query
    async def overview(request: web.Request) -> web.Response:
        return _json(await reports.overview(sessions, period(request), cfg.review_mos_below))

    @require_roles(*MANAGERS)
    @guarded_query
    async def mos(request: web.Request) -> web.Response:
        p = period(request)
        return _json({"period": p.as_dict(),
                      "buckets": await reports.mos_distribution(sessions, p)})

    @require_roles(*MANAGERS)
    @guarded_query
    async def daily(request: web.Request) -> web.Response:
        p = period(request)
        return _json({"period": p.as_dict(),
                      "rows": await reports.daily(sessions, p, cfg.review_mos_below)})

    @require_roles(*MANAGERS)
    @guarded_query
    async def export_csv(request: web.Request) -> web.Response:
        p = period(request)
        kind = request.query.get("report", "daily")
        if kind == "daily":
            rows = await reports.daily(sessions, p, cfg.review_mos_below)
        elif kind in ("queue", "intent"):
            data = await reports.overview(sessions, p, cfg.review_mos_below)
            rows = data[f"by_{kind}"]
        else:
            return json_error(400, f"report must be daily, queue or intent, got {kind!r}")
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
            w.writeheader()
            for r in rows:
                w.writerow({k: _csv_cell(v) for k, v in r.items()})
        name = f"centralino-{kind}-{p.since.date()}-{p.until.date()}.csv"
        return web.Response(text=buf.getvalue(), content_type="text/csv", charset="utf-8",
                            headers={**API_HEADERS,
                                     "Content-Disposition": f'attachment; filename="{name}"'})

    # -- supervisors: their own team's calls worth a look --------------------------------------
    def team_scope(request: web.Request) -> str | web.Response:
        p: Principal = request["principal"]
        team = request.query.get("team")
        if p.role == "supervisor":
            if not p.team:
                return json_error(403, "you are in no team: nothing to coach")
            if team is not None and team != p.team:
                return json_error(403, "a supervisor sees their own team only")
            return p.team
        if not team:
            return json_error(400, "name the team: ?team=NAME")
        return team

    @require_roles("supervisor", *MANAGERS)
    @guarded_query
    async def team_reviews(request: web.Request) -> web.Response:
        team = team_scope(request)
        if isinstance(team, web.Response):
            return team
        return _json(await reports.team_reviews(sessions, team, period(request)))

    @require_roles("supervisor", *MANAGERS)
    @guarded_query
    async def agent_detail(request: web.Request) -> web.Response:
        p: Principal = request["principal"]
        username = request.match_info["username"].strip().lower()
        team = None
        if p.role == "supervisor":
            known, agent_team = await reports.agent_team(sessions, username)
            if not p.team or not known or agent_team != p.team:
                return json_error(403, "a supervisor sees the agents of their own team only")
            team = p.team
        return _json(await reports.agent_detail(sessions, username, team, period(request),
                                                cfg.review_mos_below))

    @require_roles("supervisor", *MANAGERS)
    async def call_quality(request: web.Request) -> web.Response:
        p: Principal = request["principal"]
        lid = request.match_info["linkedid"]
        row = await comp.store.metrics(lid)
        if row is None:
            return json_error(404, f"no measured call {lid!r}")
        if p.role == "supervisor" and (not p.team or row.team != p.team):
            return json_error(403, "a supervisor sees their own team's calls only")
        legs = await comp.store.legs(lid)
        return _json({"call": _row(row), "legs": [_row(leg) for leg in legs]})

    # -- Prometheus -------------------------------------------------------------------------------
    async def metrics(request: web.Request) -> web.Response:
        token = cfg.metrics_token
        if token is not None:
            given = bearer_token(request) or ""
            if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                return json_error(401, "missing or wrong scrape token",
                                  **{"WWW-Authenticate": "Bearer"})
        state = {}
        for name, check in list(comp.ctx.readiness.items()):
            try:
                res = check()
                state[name] = bool(await res) if hasattr(res, "__await__") else bool(res)
            except Exception:  # noqa: BLE001 - a failing check means the link is down
                state[name] = False
        comp.metrics.links_state = state
        return web.Response(body=comp.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    # -- pages ----------------------------------------------------------------------------------
    def serve(name: str) -> web.Response:
        kind = STATIC.get(name)
        if kind is None:
            raise web.HTTPNotFound()
        body = resources.files("gateway.quality").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=PAGE_HEADERS)

    async def static(request: web.Request) -> web.Response:
        return serve(request.match_info["name"])

    async def dashboards_page(request: web.Request) -> web.Response:
        return serve("dashboards.html")

    async def coaching_page(request: web.Request) -> web.Response:
        return serve("coaching.html")

    async def to_slash(request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboards/")

    r = app.router
    r.add_get("/api/v1/dashboards/overview", overview)
    r.add_get("/api/v1/dashboards/mos", mos)
    r.add_get("/api/v1/dashboards/daily", daily)
    r.add_get("/api/v1/dashboards/export.csv", export_csv)
    r.add_get("/api/v1/coaching/reviews", team_reviews)
    r.add_get("/api/v1/coaching/agents/{username}", agent_detail)
    r.add_get("/api/v1/quality/calls/{linkedid}", call_quality)
    r.add_get("/metrics", metrics)
    r.add_get("/dashboards", to_slash)
    r.add_get("/dashboards/", dashboards_page)
    r.add_get("/dashboards/coaching", coaching_page)
    r.add_get("/dashboards/static/{name}", static)


# Every API route and who may call it: the role tests walk this table, so a new route that is
# not listed here fails them.
ROUTES = {
    "/api/v1/dashboards/overview": MANAGERS,
    "/api/v1/dashboards/mos": MANAGERS,
    "/api/v1/dashboards/daily": MANAGERS,
    "/api/v1/dashboards/export.csv": MANAGERS,
    "/api/v1/coaching/reviews": ("supervisor", *MANAGERS),
    "/api/v1/coaching/agents/{username}": ("supervisor", *MANAGERS),
    "/api/v1/quality/calls/{linkedid}": ("supervisor", *MANAGERS),
}


def _row(row: Any) -> dict[str, Any]:
    out = {}
    for col in row.__table__.columns:
        v = getattr(row, col.name)
        if isinstance(v, datetime):
            v = aware(v).isoformat()
        out[col.name] = v
    return out
