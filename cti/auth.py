"""Users, roles, expiring bearer tokens and the ``require_roles`` guard for every HTTP handler.

Why here and not in each part: the agent desktop, the supervisor's coaching view and the quality
dashboards all answer to the same people with the same four roles, so one login and one guard
keep the rules in one place. Other components only use::

    from cti.auth import Principal, require_roles

    @require_roles("supervisor", "manager", "admin")
    async def overview(request):
        me: Principal = request["principal"]

Roles: ``agent`` (answers calls; bound to one phone, serves some queues), ``supervisor`` (coaches
the agents of *their* team), ``manager`` and ``admin`` (see everything; admins also manage
users). Each user has at most one team.

Tokens: 256 random bits, handed out once by ``POST /api/v1/auth/login`` and stored only as their
SHA-256, with an expiry (``auth.token_ttl_s``); ``logout`` revokes one, disabling a user or
changing their password revokes all of theirs. A checked token is trusted for
``auth.principal_cache_s`` without the database (so a revocation made by another process, e.g.
``centralino users disable``, takes effect within that time; a logout here takes effect at once).

Passwords are argon2id hashes (argon2-cffi), computed in a worker thread so a login never stalls
the event loop. Failed logins are throttled per username and per client address
(``auth.login_max_failures*`` within ``auth.login_window_s``): past the limit the answer is 429
whether or not the user exists, and unknown users and wrong passwords get the same 401 message
after the same work (a dummy hash is verified for unknown users).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.orm import TokenRow, UserQueueRow, UserRow
from cti.site import SiteNames
from gateway.settings import AuthSettings

ROLES = ("agent", "supervisor", "manager", "admin")
BAD_CREDENTIALS = "wrong username or password"

_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is calling an API: what handlers read from ``request["principal"]``."""

    user_id: int
    username: str
    role: str
    team: str | None
    endpoint: str | None


@dataclass(frozen=True)
class UserInfo:
    """A user as the CLI and admin views list it (never the hash)."""

    user_id: int
    username: str
    role: str
    team: str | None
    endpoint: str | None
    queues: tuple[str, ...]
    disabled: bool


class UserError(ValueError):
    """Bad input for a user operation, worded for the person who typed it."""


class LoginFailed(Exception):
    """Wrong credentials (one message for unknown user and wrong password)."""


class LoginThrottled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


def aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_username(name: str) -> str:
    n = name.strip().lower()
    if not _USERNAME.match(n):
        raise UserError(f"invalid username {name!r}: 2-64 characters, a letter first, then "
                        "letters, digits, '.', '_' or '-'")
    return n


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password too long: at most {MAX_PASSWORD} characters")
    return password


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(hash_: str, password: str) -> bool:
    try:
        return _hasher.verify(hash_, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """Verified for unknown users so that they cost the same as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


# -- user administration (CLI, admin API) -----------------------------------------------------
async def add_user(sessions: async_sessionmaker[AsyncSession], username: str, role: str,
                   password: str, *, team: str | None = None, endpoint: str | None = None,
                   queues: Iterable[str] = (), site: SiteNames | None = None) -> UserInfo:
    """Create a user. Agents need a phone; a phone belongs to one active user at a time."""
    name = normalise_username(username)
    if role not in ROLES:
        raise UserError(f"invalid role {role!r}: one of {', '.join(ROLES)}")
    check_password(password)
    if team is not None:
        team = team.strip()
        if not _TEAM.match(team):
            raise UserError(f"invalid team {team!r}: 1-64 letters, digits, spaces, '.', '_', '-'")
    qs = tuple(dict.fromkeys(q.strip() for q in queues if q.strip()))
    for q in qs:
        if not _QUEUE.match(q):
            raise UserError(f"invalid queue name {q!r}")
    if site is not None:
        unknown = [q for q in qs if q not in site.queues]
        if unknown:
            raise UserError(f"unknown queue(s) {', '.join(unknown)}; this site has "
                            f"{', '.join(site.queues) or 'no queues'}")
    if endpoint is not None:
        endpoint = endpoint.strip()
        problem = site.check_agent_phone(endpoint) if site is not None else None
        if problem:
            raise UserError(problem)
    if role == "agent" and not endpoint:
        raise UserError("an agent needs a phone: --phone ENDPOINT (the PJSIP endpoint they answer on)")
    if qs and role != "agent":
        raise UserError("only agents serve queues (--queues is for --role agent)")
    pw_hash = await hash_password(password)
    async with sessions.begin() as s:
        if await s.scalar(select(UserRow.id).where(UserRow.username == name)) is not None:
            raise UserError(f"user {name!r} already exists")
        if endpoint:
            holder = await s.scalar(select(UserRow.username).where(
                UserRow.endpoint == endpoint, UserRow.disabled.is_(False)))
            if holder is not None:
                raise UserError(f"phone {endpoint!r} already belongs to user {holder!r}")
        now = datetime.now(UTC)
        row = UserRow(username=name, password_hash=pw_hash, role=role, team=team,
                      endpoint=endpoint or None, disabled=False, created_at=now,
                      password_changed_at=now)
        s.add(row)
        try:
            await s.flush()
        except IntegrityError:  # a concurrent add won the race
            raise UserError(f"user {name!r} or phone {endpoint!r} is already taken") from None
        s.add_all(UserQueueRow(user_id=row.id, queue=q) for q in qs)
    return UserInfo(row.id, name, role, team, endpoint or None, qs, False)


async def list_users(sessions: async_sessionmaker[AsyncSession]) -> list[UserInfo]:
    async with sessions() as s:
        users = (await s.scalars(select(UserRow).order_by(UserRow.username))).all()
        queues: dict[int, list[str]] = {}
        for uq in (await s.scalars(select(UserQueueRow).order_by(UserQueueRow.queue))).all():
            queues.setdefault(uq.user_id, []).append(uq.queue)
    return [UserInfo(u.id, u.username, u.role, u.team, u.endpoint, tuple(queues.get(u.id, ())),
                     u.disabled) for u in users]


async def get_user(sessions: async_sessionmaker[AsyncSession], username: str) -> UserInfo | None:
    name = username.strip().lower()
    return next((u for u in await list_users(sessions) if u.username == name), None)


async def set_password(sessions: async_sessionmaker[AsyncSession], username: str,
                       password: str) -> None:
    """New password; every token of the user is revoked (sessions elsewhere end)."""
    check_password(password)
    pw_hash = await hash_password(password)
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        uid = await s.scalar(select(UserRow.id).where(UserRow.username == username.strip().lower()))
        if uid is None:
            raise UserError(f"no user {username!r}")
        await s.execute(update(UserRow).where(UserRow.id == uid).values(
            password_hash=pw_hash, password_changed_at=now))
        await _revoke_all(s, uid, now)


async def disable_user(sessions: async_sessionmaker[AsyncSession], username: str) -> None:
    """The user can no longer log in; their tokens are revoked; their phone is free again."""
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        uid = await s.scalar(select(UserRow.id).where(UserRow.username == username.strip().lower()))
        if uid is None:
            raise UserError(f"no user {username!r}")
        await s.execute(update(UserRow).where(UserRow.id == uid).values(disabled=True))
        await _revoke_all(s, uid, now)


async def _revoke_all(s: AsyncSession, uid: int, now: datetime) -> None:
    await s.execute(update(TokenRow).where(TokenRow.user_id == uid, TokenRow.revoked_at.is_(None))
                    .values(revoked_at=now))


async def user_queues(sessions: async_sessionmaker[AsyncSession], user_id: int) -> tuple[str, ...]:
    async with sessions() as s:
        return tuple((await s.scalars(select(UserQueueRow.queue).where(
            UserQueueRow.user_id == user_id).order_by(UserQueueRow.queue))).all())


# -- login throttling --------------------------------------------------------------------------
class Throttle:
    """Sliding-window failure counts per key; in memory (one gateway process answers logins)."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window_s
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self._clock() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def blocked_for(self, key: str, limit: int) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        q = self._recent(key)
        if len(q) < limit:
            return 0.0
        return max(0.0, q[-limit] + self.window - self._clock())

    def fail(self, key: str) -> None:
        self._fails.setdefault(key, deque()).append(self._clock())
        if len(self._fails) > 100_000:  # bound memory under a spray of usernames
            for k in list(self._fails)[:50_000]:
                self._recent(k)

    def clear(self, key: str) -> None:
        self._fails.pop(key, None)


# -- tokens ------------------------------------------------------------------------------------
class Authenticator:
    """Logins, token checks and revocation for one gateway (kept in the app as ``AUTH_KEY``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: AuthSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self.settings = settings
        self._clock = clock
        self.throttle = Throttle(settings.login_window_s, clock)
        self._cache: dict[str, tuple[Principal, datetime, float]] = {}
        self._on_revoke: list[Callable[[str], None]] = []

    def on_revoke(self, callback: Callable[[str], None]) -> None:
        """``callback(token_hash)`` after a logout here (open websockets close at once)."""
        self._on_revoke.append(callback)

    async def login(self, username: str, password: str, remote: str | None = None) -> str:
        s = self.settings
        ukey, ikey = f"u:{username.strip().lower()}", f"ip:{remote or '?'}"
        wait = max(self.throttle.blocked_for(ukey, s.login_max_failures),
                   self.throttle.blocked_for(ikey, s.login_max_failures_per_ip))
        if wait > 0:
            raise LoginThrottled(wait)
        async with self._sessions() as db:
            row = await db.scalar(select(UserRow).where(
                UserRow.username == username.strip().lower()))
        ok = await asyncio.to_thread(_verify, row.password_hash if row else _dummy_hash(),
                                     password)
        if not ok or row is None or row.disabled:
            self.throttle.fail(ukey)
            self.throttle.fail(ikey)
            raise LoginFailed(BAD_CREDENTIALS)
        self.throttle.clear(ukey)
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self._sessions.begin() as db:
            await db.execute(delete(TokenRow).where(TokenRow.user_id == row.id,
                                                    TokenRow.expires_at < now))
            db.add(TokenRow(token_hash=token_hash(token), user_id=row.id, created_at=now,
                            expires_at=now + timedelta(seconds=s.token_ttl_s)))
        return token

    async def principal(self, token: str | None) -> Principal | None:
        """The token's user, or None if it is unknown, expired, revoked or its user disabled."""
        if not token or len(token) > 512:
            return None
        h = token_hash(token)
        now = datetime.now(UTC)
        hit = self._cache.get(h)
        if hit is not None:
            p, expires, until = hit
            if self._clock() < until and now < expires:
                return p
            del self._cache[h]
        async with self._sessions() as db:
            found = (await db.execute(
                select(TokenRow, UserRow).join(UserRow, UserRow.id == TokenRow.user_id)
                .where(TokenRow.token_hash == h))).first()
        if found is None:
            return None
        tok, user = found
        expires = aware(tok.expires_at)
        if tok.revoked_at is not None or user.disabled or now >= expires:
            return None
        p = Principal(user.id, user.username, user.role, user.team, user.endpoint)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[h] = (p, expires, self._clock() + self.settings.principal_cache_s)
        return p

    async def logout(self, token: str) -> None:
        h = token_hash(token)
        self._cache.pop(h, None)
        async with self._sessions.begin() as db:
            await db.execute(update(TokenRow).where(TokenRow.token_hash == h,
                                                    TokenRow.revoked_at.is_(None))
                             .values(revoked_at=datetime.now(UTC)))
        for cb in self._on_revoke:
            cb(h)


AUTH_KEY = web.AppKey("centralino.auth", Authenticator)


def bearer_token(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


Handler = Callable[..., Awaitable[web.StreamResponse]]


def require_roles(*roles: str) -> Callable[[Handler], Handler]:
    """Guard an aiohttp handler (function or method; the request is the last argument).

    401 with ``{"error": ...}`` when the bearer token is missing, unknown, expired or revoked;
    403 when the user's role is not in ``roles``. ``require_roles()`` admits any logged-in user.
    On success ``request["principal"]`` is the :class:`Principal`. Needs the CTI component
    loaded (it puts the :class:`Authenticator` in the app).
    """
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role(s) {bad}; roles are {ROLES}")
    allowed = frozenset(roles or ROLES)

    def deco(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(*args: object) -> web.StreamResponse:
            request = args[-1]
            assert isinstance(request, web.BaseRequest)
            auth = request.config_dict.get(AUTH_KEY)
            if auth is None:
                return json_error(503, "authentication is not available (CTI component not loaded)")
            p = await auth.principal(bearer_token(request))
            if p is None:
                return json_error(401, "missing, invalid or expired token",
                                  **{"WWW-Authenticate": "Bearer"})
            if p.role not in allowed:
                return json_error(403, f"forbidden for role {p.role!r}")
            with warnings.catch_warnings():  # the documented key is the string "principal"
                warnings.simplefilter("ignore", web.NotAppKeyWarning)
                request["principal"] = p
            return await handler(*args)

        guarded.allowed_roles = allowed  # type: ignore[attr-defined]
        return guarded

    return deco


# -- HTTP routes -------------------------------------------------------------------------------
async def _login(request: web.Request) -> web.Response:
    auth = request.config_dict[AUTH_KEY]
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "body must be JSON: {\"username\": ..., \"password\": ...}")
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        return json_error(400, "body must be JSON: {\"username\": ..., \"password\": ...}")
    try:
        token = await auth.login(body["username"], body["password"], request.remote)
    except LoginThrottled as exc:
        return json_error(429, str(exc), **{"Retry-After": str(int(exc.retry_after) + 1)})
    except LoginFailed:
        return json_error(401, BAD_CREDENTIALS)
    return web.json_response({"token": token, "expires_in": auth.settings.token_ttl_s})


@require_roles()
async def _logout(request: web.Request) -> web.Response:
    await request.config_dict[AUTH_KEY].logout(bearer_token(request) or "")
    return web.json_response({"ok": True})


@require_roles()
async def _me(request: web.Request) -> web.Response:
    p: Principal = request["principal"]
    return web.json_response({"user_id": p.user_id, "username": p.username, "role": p.role,
                              "team": p.team, "endpoint": p.endpoint})


def add_auth_routes(app: web.Application, auth: Authenticator) -> None:
    app[AUTH_KEY] = auth
    app.router.add_post("/api/v1/auth/login", _login)
    app.router.add_post("/api/v1/auth/logout", _logout)
    app.router.add_get("/api/v1/me", _me)
