"""Console sign-in under attack, on both engines: after 5 wrong passwords the right one is refused
(429 + Retry-After, in Chinese and English) until the lock expires, locks grow exponentially up to a
cap, one client address guessing at many users is stopped too, the state is in the database (two
apps on their own engines count together), every failure and lockout is audited, and an old scrypt
hash is replaced by Argon2id at the next successful sign-in. The clock is injected, never slept on."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.accounts.throttle import LoginThrottle
from medscrm.app import create_app
from medscrm.db import make_engine
from medscrm.db.schema import audit_log, users
from web.conftest import csrf_of

PASSWORD = "correct horse battery staple"
# far from today: the locks these tests leave in the shared PostgreSQL database are long expired
# for any test that runs on the real clock
T0 = dt.datetime(2001, 1, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _app(engine: sa.Engine, clock: Clock, tmp_path):
    app = create_app(
        engine, spool_dir=tmp_path / f"spool-{uuid.uuid4().hex[:6]}", fsync=False, refresher=False
    )
    app.state.login_throttle = LoginThrottle(clock=clock)
    return app


def _client(app, ip: str | None = None, lang: str | None = None) -> TestClient:
    c = TestClient(app, client=(ip or f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7", 5000))
    if lang:
        c.cookies.set("medscrm_lang", lang)
    return c


def _login(c: TestClient, tenant, username: str, password: str):
    token = csrf_of(c.get("/login").text)
    return c.post(
        "/login",
        data={"csrf_token": token, "tenant": tenant.slug, "username": username, "password": password},
        follow_redirects=False,
    )


def _user(tenant, username: str = "alice") -> dict:
    with tenant.engine.begin() as conn:
        return accounts.create_user(
            conn=conn, tenant_id=tenant.id, username=username, role="marketer", password=PASSWORD
        )


def _actions(tenant, user_id: str | None = None) -> list[str]:
    q = sa.select(audit_log.c.action).where(
        audit_log.c.tenant_id == tenant.id, audit_log.c.action.like("console.%")
    )
    if user_id:
        q = q.where(audit_log.c.object_id == user_id)
    with tenant.engine.connect() as conn:
        return sorted(conn.execute(q).scalars())


def test_after_five_wrong_passwords_the_right_one_waits_for_the_lock(tenant, tmp_path):
    clock = Clock()
    user = _user(tenant)
    c = _client(_app(tenant.engine, clock, tmp_path))
    for _ in range(4):
        assert _login(c, tenant, "alice", "wrong").status_code == 401
    r = _login(c, tenant, "alice", "wrong")  # the fifth: the lock begins
    assert r.status_code == 429 and r.headers["Retry-After"] == "30"
    assert "登录失败次数过多，请在 30 秒后重试" in r.text
    clock.advance(10)
    r = _login(c, tenant, "alice", PASSWORD)  # the right password, refused while locked
    assert r.status_code == 429 and r.headers["Retry-After"] == "20"
    en = _client(c.app, lang="en")  # another address, in English
    r = _login(en, tenant, "alice", PASSWORD)
    assert r.status_code == 429 and "Too many failed sign-ins; try again in 20 seconds" in r.text
    clock.advance(20)
    r = _login(c, tenant, "alice", PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert _actions(tenant, user["id"]) == sorted(
        ["console.login_failed"] * 5
        + ["console.lockout"]
        + ["console.login_throttled"] * 2
        + ["console.login"]
    )
    with tenant.engine.connect() as conn:
        lockout = conn.execute(
            sa.select(audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action == "console.lockout"
            )
        ).scalar_one()
    assert lockout["retry_after"] == 30 and lockout["locked"] == ["user"]
    # the success cleared the count: four more failures lock nothing
    for _ in range(4):
        assert _login(c, tenant, "alice", "wrong").status_code == 401


def test_locks_grow_exponentially_up_to_a_cap(tenant, tmp_path):
    clock = Clock()
    _user(tenant)
    c = _client(_app(tenant.engine, clock, tmp_path))
    for _ in range(4):
        _login(c, tenant, "alice", "wrong")
    waits = []
    for _ in range(7):
        r = _login(c, tenant, "alice", "wrong")
        assert r.status_code == 429
        waits.append(int(r.headers["Retry-After"]))
        clock.advance(waits[-1])
    assert waits == [30, 60, 120, 240, 480, 900, 900]
    # an unknown user is throttled exactly like a known one (no way to tell them apart)
    for _ in range(4):
        assert _login(c, tenant, "nobody", "wrong").status_code == 401
    assert _login(c, tenant, "nobody", "wrong").status_code == 429


def test_one_address_guessing_at_many_users_is_stopped(tenant, tmp_path):
    clock = Clock()
    _user(tenant, "bob")
    app = _app(tenant.engine, clock, tmp_path)
    ip = f"192.0.2.{secrets.randbelow(250)}"
    c = _client(app, ip=ip)
    for i in range(19):
        assert _login(c, tenant, f"user{i}", "wrong").status_code == 401
    r = _login(c, tenant, "user19", "wrong")
    assert r.status_code == 429
    r = _login(c, tenant, "bob", PASSWORD)  # bob's own count is clean, the address is locked
    assert r.status_code == 429
    assert _login(_client(app), tenant, "bob", PASSWORD).status_code == 303  # elsewhere: fine


def test_the_count_is_shared_by_processes_through_the_database(tenant, tmp_path):
    """Two apps, each with its own engine and throttle object (as two `serve --workers` processes)."""
    clock = Clock()
    _user(tenant)
    other_engine = make_engine(tenant.engine.url.render_as_string(hide_password=False))
    try:
        if tenant.engine.dialect.name == "duckdb":  # one process per DuckDB file: same engine there
            other_engine.dispose()
            other_engine = tenant.engine
        a = _client(_app(tenant.engine, clock, tmp_path))
        b = _client(_app(other_engine, clock, tmp_path))
        for i in range(4):
            assert _login(a if i % 2 else b, tenant, "alice", "wrong").status_code == 401
        assert _login(a, tenant, "alice", "wrong").status_code == 429
        assert _login(b, tenant, "alice", PASSWORD).status_code == 429
    finally:
        if other_engine is not tenant.engine:
            other_engine.dispose()


def _scrypt_hash(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def test_an_old_scrypt_hash_is_upgraded_to_argon2id_at_sign_in(tenant, tmp_path):
    user = _user(tenant, "carol")
    old = _scrypt_hash(PASSWORD)
    with tenant.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user["id"]).values(password_hash=old))
    c = _client(_app(tenant.engine, Clock(), tmp_path))
    assert _login(c, tenant, "carol", "wrong").status_code == 401

    def stored() -> str:
        with tenant.engine.connect() as conn:
            return conn.execute(sa.select(users.c.password_hash).where(users.c.id == user["id"])).scalar_one()

    assert stored() == old  # a failure changes nothing
    assert _login(c, tenant, "carol", PASSWORD).status_code == 303
    new = stored()
    assert new.startswith("$argon2id$") and accounts.verify_password(PASSWORD, new)
    assert not accounts.password_needs_rehash(new)
    with tenant.engine.connect() as conn:
        detail = conn.execute(
            sa.select(audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action == "user.password_rehash"
            )
        ).scalar_one()
    assert detail["scheme"] == "argon2id"
    assert _login(_client(c.app), tenant, "carol", PASSWORD).status_code == 303  # the new hash works


def test_new_passwords_are_argon2id_with_their_parameters_stored(tenant):
    user = _user(tenant, "dave")
    assert user["password_hash"].startswith("$argon2id$v=19$m=")
    assert accounts.verify_password(PASSWORD, user["password_hash"])
    assert not accounts.verify_password("wrong", user["password_hash"])
    for broken in ("", None, "scrypt$x", "scrypt$@@$@@", "$argon2id$garbage", "plain"):
        assert not accounts.verify_password(PASSWORD, broken)
