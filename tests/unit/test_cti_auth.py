"""Users, logins and the role guard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy import select, update

from cti.auth import (
    BAD_CREDENTIALS,
    ROLES,
    Authenticator,
    LoginFailed,
    LoginThrottled,
    Principal,
    UserError,
    add_auth_routes,
    add_user,
    disable_user,
    list_users,
    require_roles,
    set_password,
    token_hash,
)
from cti.orm import TokenRow
from cti.site import SiteNames
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.settings import AuthSettings

SITE = SiteNames(frozenset({"agent1", "agent2"}), frozenset({"caller1"}),
                 ("billing", "general"))
PW = "correct horse battery"


@pytest.fixture
async def sessions(db_url):
    await upgrade(db_url)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_a_user_logs_in_gets_a_principal_and_logs_out(sessions):
    await add_user(sessions, "Alice", "agent", PW, team="red", endpoint="agent1",
                   queues=["billing"], site=SITE)
    auth = Authenticator(sessions, AuthSettings())
    token = await auth.login("alice", PW, "10.0.0.1")
    p = await auth.principal(token)
    assert p == Principal(p.user_id, "alice", "agent", "red", "agent1")
    async with sessions() as s:
        stored = (await s.scalars(select(TokenRow.token_hash))).all()
    assert stored == [token_hash(token)] and token not in stored  # only the hash is kept
    revoked = []
    auth.on_revoke(revoked.append)
    await auth.logout(token)
    assert await auth.principal(token) is None
    assert revoked == [token_hash(token)]


async def test_unknown_user_and_wrong_password_get_the_same_answer(sessions):
    await add_user(sessions, "bob", "manager", PW)
    auth = Authenticator(sessions, AuthSettings())
    with pytest.raises(LoginFailed) as wrong:
        await auth.login("bob", "not the password", "h")
    with pytest.raises(LoginFailed) as unknown:
        await auth.login("nobody", PW, "h")
    assert str(wrong.value) == str(unknown.value) == BAD_CREDENTIALS


async def test_expired_and_garbage_tokens_are_refused(sessions):
    await add_user(sessions, "carol", "supervisor", PW, team="red")
    clock = Clock()
    auth = Authenticator(sessions, AuthSettings(principal_cache_s=0), clock)
    token = await auth.login("carol", PW)
    assert await auth.principal(token) is not None
    async with sessions.begin() as s:
        await s.execute(update(TokenRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await auth.principal(token) is None
    for junk in (None, "", "x" * 5000, token + "x"):
        assert await auth.principal(junk) is None


async def test_disabling_or_changing_the_password_ends_sessions(sessions):
    await add_user(sessions, "dave", "agent", PW, endpoint="agent2", site=SITE)
    auth = Authenticator(sessions, AuthSettings(principal_cache_s=0))
    t1 = await auth.login("dave", PW)
    await set_password(sessions, "dave", "another password")
    assert await auth.principal(t1) is None
    with pytest.raises(LoginFailed):
        await auth.login("dave", PW)
    t2 = await auth.login("dave", "another password")
    await disable_user(sessions, "dave")
    assert await auth.principal(t2) is None
    with pytest.raises(LoginFailed, match=BAD_CREDENTIALS):
        await auth.login("dave", "another password")
    # the phone is free again for someone else
    await add_user(sessions, "erin", "agent", PW, endpoint="agent2", site=SITE)


async def test_failed_logins_are_throttled_per_user_then_released(sessions):
    await add_user(sessions, "frank", "admin", PW)
    clock = Clock()
    auth = Authenticator(sessions, AuthSettings(login_max_failures=3, login_window_s=60), clock)
    for _ in range(3):
        with pytest.raises(LoginFailed):
            await auth.login("frank", "guess", "h1")
    with pytest.raises(LoginThrottled) as exc:  # even the right password waits
        await auth.login("frank", PW, "h2")
    assert 0 < exc.value.retry_after <= 60
    for _ in range(3):  # a user that does not exist is throttled the same way
        with pytest.raises(LoginFailed):
            await auth.login("ghost", "guess", "h3")
    with pytest.raises(LoginThrottled):
        await auth.login("ghost", "guess", "h3")
    clock.t += 61
    assert await auth.login("frank", PW, "h2")


async def test_failed_logins_are_throttled_per_address(sessions):
    auth = Authenticator(sessions, AuthSettings(login_max_failures_per_ip=4), Clock())
    for i in range(4):
        with pytest.raises(LoginFailed):
            await auth.login(f"user{i}", "guess", "203.0.113.9")
    with pytest.raises(LoginThrottled):
        await auth.login("someone", "guess", "203.0.113.9")


@pytest.mark.parametrize("kwargs, message", [
    ({"role": "agent"}, "an agent needs a phone"),
    ({"role": "agent", "endpoint": "agent9"}, "unknown phone 'agent9'"),
    ({"role": "agent", "endpoint": "caller1"}, "is a caller phone"),
    ({"role": "agent", "endpoint": "agent1", "queues": ["sales"]}, "unknown queue(s) sales"),
    ({"role": "supervisor", "queues": ["billing"]}, "only agents serve queues"),
    ({"role": "boss"}, "invalid role 'boss'"),
    ({"role": "admin", "password": "short"}, "password too short"),
    ({"role": "admin", "team": "bad\nteam"}, "invalid team"),
    ({"role": "admin", "username": "9lives"}, "invalid username"),
    ({"role": "admin", "username": "a b"}, "invalid username"),
])
async def test_bad_user_input_is_refused_with_a_reason(sqlite_url, kwargs, message):
    await upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    kw = {"username": "zoe", "password": PW, **kwargs}
    with pytest.raises(UserError) as exc:
        await add_user(sessions, kw.pop("username"), kw.pop("role"), kw.pop("password"),
                       site=SITE, **kw)
    assert message in str(exc.value)
    assert await list_users(sessions) == []
    await engine.dispose()


async def test_one_name_and_one_phone_per_active_user(sessions):
    await add_user(sessions, "gina", "agent", PW, endpoint="agent1", site=SITE)
    with pytest.raises(UserError, match="already exists"):
        await add_user(sessions, "GINA", "admin", PW)
    with pytest.raises(UserError, match="phone 'agent1' already belongs to user 'gina'"):
        await add_user(sessions, "hank", "agent", PW, endpoint="agent1", site=SITE)


# -- the guard over HTTP, every role against every rule ------------------------------------
RULES = {
    "/any": (),
    "/agent": ("agent",),
    "/coach": ("supervisor", "manager", "admin"),
    "/admin": ("admin",),
}


@pytest.fixture
async def client(sessions):
    auth = Authenticator(sessions, AuthSettings())
    app = web.Application()
    add_auth_routes(app, auth)

    def make(roles):
        @require_roles(*roles)
        async def handler(request):
            p = request["principal"]
            return web.json_response({"user": p.username, "role": p.role})
        return handler

    for path, roles in RULES.items():
        app.router.add_get(path, make(roles))
    for role in ROLES:
        await add_user(sessions, f"{role}1", role, PW,
                       **({"endpoint": "agent1"} if role == "agent" else {}), site=SITE)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _token(client, user):
    r = await client.post("/api/v1/auth/login", json={"username": user, "password": PW})
    assert r.status == 200
    return (await r.json())["token"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_meets_every_rule(client, role):
    token = await _token(client, f"{role}1")
    for path, roles in RULES.items():
        r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        if not roles or role in roles:
            assert r.status == 200, path
            assert await r.json() == {"user": f"{role}1", "role": role}
        else:
            assert r.status == 403, path
            assert "error" in await r.json()


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer nope", "Basic abc", "bearer  "])
async def test_requests_without_a_valid_token_get_401_json(client, header):
    for path in RULES:
        r = await client.get(path, headers={"Authorization": header} if header is not None else {})
        assert r.status == 401
        assert (await r.json())["error"]
        assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_login_over_http(client):
    r = await client.post("/api/v1/auth/login", json={"username": "admin1", "password": "x" * 9})
    assert r.status == 401 and (await r.json()) == {"error": BAD_CREDENTIALS}
    r = await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 9})
    assert r.status == 401 and (await r.json()) == {"error": BAD_CREDENTIALS}
    r = await client.post("/api/v1/auth/login", data="not json")
    assert r.status == 400
    token = await _token(client, "agent1")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["endpoint"] == "agent1"
    r = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401


async def test_http_login_throttling_says_when_to_retry(client):
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"username": "admin1", "password": "no"})
        assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"username": "admin1", "password": PW})
    assert r.status == 429
    assert int(r.headers["Retry-After"]) > 0


def test_unknown_roles_in_the_guard_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown role"):
        require_roles("agnet")


# -- the CLI ---------------------------------------------------------------------------------
def _cli(url, *args, stdin=None):
    from gateway.cli import main

    return CliRunner().invoke(main, list(args), input=stdin,
                              env={"CENTRALINO_DATABASE__URL": url}, catch_exceptions=False)


def test_users_cli_adds_lists_changes_and_disables(sqlite_url):
    r = _cli(sqlite_url, "users", "add", "ivy", "--role", "agent", "--password-stdin",
             "--team", "red", "--phone", "agent3", "--queues", "billing,lost_card", stdin=PW + "\n")
    assert r.exit_code == 0, r.output
    assert "added ivy (agent, team red, phone agent3, queues billing,lost_card)" in r.output
    r = _cli(sqlite_url, "users", "add", "jack", "--role", "agent", "--password-stdin",
             "--phone", "agent77", stdin=PW + "\n")
    assert r.exit_code == 1 and "unknown phone 'agent77'" in r.output
    r = _cli(sqlite_url, "users", "add", "jack", "--role", "manager", stdin=PW + "\n")
    assert r.exit_code == 1 and "--password-stdin" in r.output
    r = _cli(sqlite_url, "users", "list")
    lines = r.output.splitlines()
    assert len(lines) == 2 and lines[1].split() == ["ivy", "agent", "red", "agent3",
                                                    "billing,lost_card", "active"]
    assert PW not in r.output
    r = _cli(sqlite_url, "users", "passwd", "ivy", "--password-stdin", stdin="brand new pass\n")
    assert r.exit_code == 0, r.output
    r = _cli(sqlite_url, "users", "disable", "ivy")
    assert r.exit_code == 0
    assert _cli(sqlite_url, "users", "list").output.splitlines()[1].split()[-1] == "disabled"
    r = _cli(sqlite_url, "users", "disable", "nobody")
    assert r.exit_code == 1 and "no user 'nobody'" in r.output
