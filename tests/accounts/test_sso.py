"""Single sign-on (OpenID Connect) through a real provider in a thread (tests/sso_support.TinyIdP):
the console's code flow with PKCE, state and nonce, role mapping, just-in-time users, and every bad
token refused with a clear message and an audit row. Real crypto: the provider signs with an RSA key
published in its JWKS; Authlib/joserfc verify it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.accounts import sso
from medscrm.app import create_app
from medscrm.common import InvalidInput
from medscrm.db.schema import audit_log, sso_configs, sso_identities
from sso_support import TinyIdP

ROLE_MAP = {"pharma-marketing": "marketer", "pharma-admins": "admin", "bi": "analyst", "field": "rep"}


@pytest.fixture
def idp() -> Iterator[TinyIdP]:
    with TinyIdP().serve() as p:
        p.claims = {"preferred_username": "mei.li", "name": "Li Mei", "groups": ["pharma-marketing"]}
        yield p


@pytest.fixture
def client(tenant, tmp_path, idp) -> Iterator[TestClient]:
    with tenant.engine.begin() as conn:
        sso.configure(
            conn,
            tenant.id,
            actor="test",
            issuer=idp.url,
            client_id=idp.client_id,
            client_secret=idp.client_secret,
            display_name="Pharma AD",
            role_map=ROLE_MAP,
        )
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as tc:
        yield tc


def _sign_in(tc: TestClient, idp: TinyIdP, slug: str, tamper_state: bool = False) -> httpx.Response:
    """Start at the console, pass the provider, come back to the callback."""
    r = tc.get(f"/sso/start?tenant={slug}&next=/segments", follow_redirects=False)
    assert r.status_code == 303, r.text
    loc = r.headers["location"]
    assert loc.startswith(idp.url + "/authorize?")
    q = parse_qs(urlparse(loc).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"][0] and q["state"][0]
    assert q["client_id"] == [idp.client_id] and "openid" in q["scope"][0].split()
    back = httpx.get(loc, follow_redirects=False)
    assert back.status_code == 302
    cb = urlparse(back.headers["location"])
    assert cb.path == "/sso/callback"
    query = cb.query
    if tamper_state:
        query = re.sub(r"state=[^&]+", "state=forged", query)
    return tc.get(cb.path + "?" + query, follow_redirects=False)


def _refusals(engine: sa.Engine, tenant_id: str) -> list[dict]:
    with engine.connect() as conn:
        q = (
            sa.select(audit_log)
            .where(audit_log.c.tenant_id == tenant_id, audit_log.c.action == "console.sso_refused")
            .order_by(audit_log.c.occurred_at)
        )
        return [dict(r) for r in conn.execute(q).mappings()]


def _user(engine: sa.Engine, tenant_id: str, username: str) -> dict | None:
    with engine.connect() as conn:
        return accounts.get_user(conn=conn, tenant_id=tenant_id, username=username)


def test_sign_in_creates_the_user_with_the_mapped_role_and_starts_a_session(client, idp, tenant):
    r = _sign_in(client, idp, tenant.slug)
    assert r.status_code == 303 and r.headers["location"] == "/segments"
    # the PKCE verifier went to the token endpoint, with the code
    assert (
        idp.token_requests[-1]["code_verifier"]
        and idp.token_requests[-1]["grant_type"] == "authorization_code"
    )
    user = _user(tenant.engine, tenant.id, "mei.li")
    assert (
        user
        and user["role"] == "marketer"
        and user["display_name"] == "Li Mei"
        and user["password_hash"] is None
    )
    page = client.get("/")
    assert page.status_code == 200 and "Li Mei" in page.text
    assert 'href="/segments"' in page.text and 'href="/audit"' not in page.text  # a marketer's pages
    with tenant.engine.connect() as conn:
        link = (
            conn.execute(sa.select(sso_identities).where(sso_identities.c.tenant_id == tenant.id))
            .mappings()
            .one()
        )
        login = (
            conn.execute(
                sa.select(audit_log).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.action == "console.login"
                )
            )
            .mappings()
            .one()
        )
    assert link["subject"] == "subject-1" and link["issuer"] == idp.url and link["user_id"] == user["id"]
    assert login["detail"]["method"] == "sso" and login["detail"]["role"] == "marketer"
    assert login["actor"] == "sso:mei.li"

    # the role is re-evaluated at each sign-in: the most privileged mapped group wins
    client.cookies.clear()
    idp.claims["groups"] = ["bi", "pharma-admins", "unmapped"]
    assert _sign_in(client, idp, tenant.slug).status_code == 303
    assert _user(tenant.engine, tenant.id, "mei.li")["role"] == "admin"  # type: ignore[index]
    assert 'href="/audit"' in client.get("/").text
    with tenant.engine.connect() as conn:
        change = (
            conn.execute(
                sa.select(audit_log).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.action == "user.sso_update"
                )
            )
            .mappings()
            .one()
        )
    assert change["detail"]["to"] == {"role": "admin"} and change["detail"]["from"] == {"role": "marketer"}


@pytest.mark.parametrize(
    ("mode", "reason", "message"),
    [
        ("wrong_audience", "wrong_audience", "issued to another application"),
        ("expired", "expired", "the token has expired"),
        ("bad_signature", "bad_signature", "signature does not verify"),
        ("unknown_key", "bad_signature", "signature does not verify"),
        ("wrong_nonce", "wrong_nonce", "nonce mismatch"),
        ("wrong_issuer", "unknown_issuer", "does not trust"),
    ],
)
def test_bad_id_tokens_are_refused_with_a_reason_and_an_audit_row(client, idp, tenant, mode, reason, message):
    client.cookies.set("medscrm_lang", "en")
    idp.mode = mode
    r = _sign_in(client, idp, tenant.slug)
    assert r.status_code == 401
    assert message in r.text
    assert client.get("/", follow_redirects=False).status_code == 303  # still signed out
    assert _user(tenant.engine, tenant.id, "mei.li") is None
    (row,) = _refusals(tenant.engine, tenant.id)
    assert row["detail"]["reason"] == reason and row["detail"]["client"]
    assert row["tenant_id"] == tenant.id and row["actor"] == "anonymous"


def test_a_forged_state_or_a_callback_without_a_sign_in_is_refused(client, idp, tenant):
    client.cookies.set("medscrm_lang", "en")
    r = _sign_in(client, idp, tenant.slug, tamper_state=True)
    assert r.status_code == 401 and "state mismatch" in r.text
    (row,) = _refusals(tenant.engine, tenant.id)
    assert row["detail"]["reason"] == "wrong_state" and row["detail"]["got"] == "forged"
    assert not idp.token_requests  # the code was never exchanged
    client.cookies.delete("medscrm_sso")
    r = client.get("/sso/callback?code=x&state=y")
    assert r.status_code == 400 and "state mismatch" in r.text


def test_a_provider_that_names_another_issuer_is_refused(client, idp, tenant):
    client.cookies.set("medscrm_lang", "en")
    idp.advertised_issuer = "https://login.impostor.example"
    sso._metadata_cache.clear()
    r = client.get(f"/sso/start?tenant={tenant.slug}", follow_redirects=False)
    assert r.status_code == 401 and "does not trust" in r.text
    (row,) = _refusals(tenant.engine, tenant.id)
    assert (
        row["detail"]["reason"] == "unknown_issuer"
        and row["detail"]["got"] == "https://login.impostor.example"
    )


def test_a_user_without_a_mapped_group_is_refused(client, idp, tenant):
    client.cookies.set("medscrm_lang", "zh")
    idp.claims["groups"] = ["finance", "everyone"]
    r = _sign_in(client, idp, tenant.slug)
    assert r.status_code == 403 and "没有对应的 medscrm 角色" in r.text
    assert _user(tenant.engine, tenant.id, "mei.li") is None
    (row,) = _refusals(tenant.engine, tenant.id)
    assert row["detail"]["reason"] == "no_mapped_group" and row["actor"] == "sso:mei.li"
    assert row["detail"]["groups"] == ["finance", "everyone"]


def test_jit_off_and_local_accounts(client, idp, tenant):
    client.cookies.set("medscrm_lang", "en")
    with tenant.engine.begin() as conn:
        sso.configure(conn, tenant.id, actor="test", jit=False)
    r = _sign_in(client, idp, tenant.slug)
    assert r.status_code == 403 and "no console account" in r.text
    # an account created for SSO (no password) is linked when JIT is off
    with tenant.engine.begin() as conn:
        accounts.create_user(conn=conn, tenant_id=tenant.id, username="mei.li", role="analyst")
    assert _sign_in(client, idp, tenant.slug).status_code == 303
    assert _user(tenant.engine, tenant.id, "mei.li")["role"] == "marketer"  # type: ignore[index]
    # a local account with a password is never taken over
    with tenant.engine.begin() as conn:
        accounts.create_user(
            conn=conn, tenant_id=tenant.id, username="boss", role="admin", password="pw-12345678"
        )
    client.cookies.clear()
    client.cookies.set("medscrm_lang", "en")
    idp.claims.update(preferred_username="boss")
    idp.claims.pop("name")
    idp.claims["sub"] = "subject-2"  # another person at the provider
    r = _sign_in(client, idp, tenant.slug)
    assert r.status_code == 403 and "does not take it over" in r.text
    assert [x["detail"]["reason"] for x in _refusals(tenant.engine, tenant.id)] == [
        "no_account",
        "local_account",
    ]
    assert _user(tenant.engine, tenant.id, "boss")["role"] == "admin"  # type: ignore[index]


def _password_login(tc: TestClient, slug: str, username: str, password: str) -> httpx.Response:
    page = tc.get(f"/login?tenant={slug}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return tc.post(
        "/login",
        data={"csrf_token": csrf, "tenant": slug, "username": username, "password": password},
        follow_redirects=False,
    )


def test_local_passwords_can_be_switched_off_except_for_admins(client, idp, tenant):
    client.cookies.set("medscrm_lang", "en")
    with tenant.engine.begin() as conn:
        accounts.create_user(
            conn=conn, tenant_id=tenant.id, username="m1", role="marketer", password="pw-m1-123456"
        )
        accounts.create_user(
            conn=conn, tenant_id=tenant.id, username="root", role="admin", password="pw-root-12345"
        )
    page = client.get(f"/login?tenant={tenant.slug}")
    assert "Sign in with Pharma AD" in page.text
    assert _password_login(client, tenant.slug, "m1", "pw-m1-123456").status_code == 303  # allowed by default
    client.cookies.clear()
    client.cookies.set("medscrm_lang", "en")
    with tenant.engine.begin() as conn:
        sso.configure(conn, tenant.id, actor="test", local_passwords=False)
    r = _password_login(client, tenant.slug, "m1", "pw-m1-123456")
    assert r.status_code == 403 and "local passwords are off" in r.text
    with tenant.engine.connect() as conn:
        actions = [
            x["detail"].get("reason")
            for x in accounts.list_audit(conn=conn, tenant_id=tenant.id)
            if x["action"] == "console.login_refused"
        ]
    assert actions == ["local_passwords_off"]
    assert _password_login(client, tenant.slug, "root", "pw-root-12345").status_code == 303  # break-glass
    # SSO off: local passwords sign in again, and the button is gone
    with tenant.engine.begin() as conn:
        sso.disable(conn, tenant.id, actor="test")
    client.cookies.clear()
    assert _password_login(client, tenant.slug, "m1", "pw-m1-123456").status_code == 303
    assert "sso-login" not in client.get(f"/login?tenant={tenant.slug}").text


def test_settings_are_validated_and_the_secret_is_sealed_and_never_shown(tenant):
    with tenant.engine.begin() as conn:
        with pytest.raises(InvalidInput, match="issuer"):
            sso.configure(conn, tenant.id, actor="t", client_id="x", role_map={"g": "admin"})
        with pytest.raises(InvalidInput, match="issuer: 'ftp://idp' is not an http"):
            sso.configure(
                conn, tenant.id, actor="t", issuer="ftp://idp", client_id="x", role_map={"g": "admin"}
            )
        with pytest.raises(InvalidInput, match="role_map: 'g' maps to unknown role 'boss'"):
            sso.configure(
                conn,
                tenant.id,
                actor="t",
                issuer="https://idp.example",
                client_id="x",
                role_map={"g": "boss"},
            )
        with pytest.raises(InvalidInput, match="scopes: must include openid"):
            sso.configure(
                conn,
                tenant.id,
                actor="t",
                issuer="https://idp.example",
                client_id="x",
                role_map={"g": "rep"},
                scopes=["email"],
            )
    with tenant.engine.begin() as conn:
        shown = sso.configure(
            conn,
            tenant.id,
            actor="user:admin",
            issuer="https://idp.example/realms/p/",
            client_id="medscrm",
            client_secret="s3cret-value-xyz",
            role_map={"g": "rep"},
        )
    assert shown["issuer"] == "https://idp.example/realms/p" and shown["client_secret_set"] is True
    assert "s3cret-value-xyz" not in repr(shown)
    with tenant.engine.connect() as conn:
        row = (
            conn.execute(sa.select(sso_configs).where(sso_configs.c.tenant_id == tenant.id)).mappings().one()
        )
        assert "s3cret" not in row["client_secret"] and "s3cret" not in repr(row["settings"])
        assert sso.load(conn, tenant.id).client_secret == "s3cret-value-xyz"  # type: ignore[union-attr]
        audit = [
            x for x in accounts.list_audit(conn=conn, tenant_id=tenant.id) if x["action"] == "sso.configure"
        ]
    assert audit[0]["detail"]["client_secret"] == "set" and audit[0]["actor"] == "user:admin"
    assert "s3cret" not in repr(audit)


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "x", "y"]), max_size=7))
def test_the_most_privileged_mapped_role_wins(groups):
    role_map = {"a": "rep", "b": "analyst", "c": "marketer", "d": "compliance", "e": "admin"}
    got = sso.map_role(role_map, groups)
    mapped = [role_map[g] for g in groups if g in role_map]
    if not mapped:
        assert got is None
    else:
        assert got in mapped
        assert all(sso.ROLE_PRECEDENCE.index(got) <= sso.ROLE_PRECEDENCE.index(r) for r in mapped)


_group = st.text(
    alphabet=st.characters(blacklist_characters=",;\n\r=", blacklist_categories=["Cs", "Zs", "Cc"]),
    min_size=1,
    max_size=20,
)


@given(st.dictionaries(_group, st.sampled_from(sso.ROLE_PRECEDENCE), max_size=6))
def test_role_maps_read_back_what_is_written(role_map):
    assert sso.parse_role_map(sso.format_role_map(role_map)) == role_map


def test_a_role_map_entry_without_a_role_is_named():
    with pytest.raises(InvalidInput, match="role_map: 'marketing' is not GROUP=ROLE"):
        sso.parse_role_map("admins=admin, marketing")


def test_a_denial_at_the_provider_is_shown_and_audited(client, idp, tenant):
    client.cookies.set("medscrm_lang", "en")
    r = client.get(f"/sso/start?tenant={tenant.slug}", follow_redirects=False)
    state = parse_qs(urlparse(r.headers["location"]).query)["state"][0]
    r = client.get(f"/sso/callback?error=access_denied&error_description=user+said+no&state={state}")
    assert r.status_code == 401 and "The identity provider refused the sign-in." in r.text
    (row,) = _refusals(tenant.engine, tenant.id)
    assert row["detail"]["reason"] == "provider_error" and row["detail"]["error"] == "access_denied"
    assert not idp.token_requests


def test_sso_start_for_an_unknown_tenant_or_one_without_sso(client, tenant):
    client.cookies.set("medscrm_lang", "en")
    r = client.get("/sso/start?tenant=no-such-tenant", follow_redirects=False)
    assert r.status_code == 404 and "There is no tenant" in r.text
    with tenant.engine.begin() as conn:
        sso.disable(conn, tenant.id, actor="test")
    r = client.get(f"/sso/start?tenant={tenant.slug}", follow_redirects=False)
    assert r.status_code == 401 and "not set up for this tenant" in r.text
