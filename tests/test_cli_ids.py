"""Ids on the command line: lists print them in full (--wide, --json), every command that takes one
accepts a unique prefix (an ambiguous one is an error listing the candidates), `persons show` lists
the source-record ids that `identity unmerge` takes, and a rejected review decision can be revoked
(CLI, API, console), audited. On DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.cli._ids import AmbiguousId, resolve_id
from medscrm.common import NotFound, utcnow
from medscrm.db.schema import (
    audit_log,
    identity_constraints,
    identity_review,
    person_records,
    persons,
    quarantine,
    source_records,
)
from web.conftest import csrf_of

#: a per-run infix: the shared PostgreSQL database holds every test's rows
T = ""


@pytest.fixture(autouse=True)
def _infix():
    global T
    T = uuid.uuid4().hex[:6]


@pytest.fixture
def cli(tenant, monkeypatch):
    from medscrm.cli import app
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_DATABASE_URL", tenant.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MEDSCRM_TENANT", tenant.slug)
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal: the one that cut ids
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        r = runner.invoke(app, list(args))
        assert r.exit_code == code, r.output
        return r.output

    yield run
    get_settings.cache_clear()


def _quarantine(conn, tenant_id: str, qid: str) -> None:
    conn.execute(
        quarantine.insert().values(
            id=qid,
            tenant_id=tenant_id,
            kind="import_row",
            file_name="crm.csv",
            row_number=3,
            field="手机",
            code="phone",
            reason="not a mobile number",
            issues=[{"field": "手机", "code": "phone", "reason": "not a mobile number", "value": "123"}],
            payload={"手机": "123"},
            payload_hash=qid,
            status="open",
            created_at=utcnow(),
        )
    )


def _world(engine, tenant_id: str) -> dict:
    now = utcnow()
    with engine.begin() as conn:
        src = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name="crm")
        for qid in (f"q_{T}c768e08b11aa", f"q_{T}c768e08b22bb", f"q_{T}d0000000cafe"):
            _quarantine(conn, tenant_id, qid)
        conn.execute(
            persons.insert().values(
                id=f"p_{T}7f3a9e51c2d4",
                tenant_id=tenant_id,
                person_type="hcp",
                attributes={"name": "王伟"},
                lineage={},
                created_at=now,
                updated_at=now,
            )
        )
        recs = [f"sr_{T}aa11bb22cc33dd44", f"sr_{T}aa11bb22cc33ee55"]
        for i, sr in enumerate(recs):
            conn.execute(
                source_records.insert().values(
                    id=sr,
                    tenant_id=tenant_id,
                    source_id=src["id"],
                    record_key=f"k{i}",
                    row_hash=sr,
                    name="王伟",
                    raw={},
                    received_at=now,
                )
            )
            conn.execute(
                person_records.insert().values(
                    id=f"pr_{T}{i}_{sr[-6:]}",
                    tenant_id=tenant_id,
                    person_id=f"p_{T}7f3a9e51c2d4",
                    source_record_id=sr,
                    confidence=1.0,
                    rule="deterministic:phone",
                    assigned_at=now,
                )
            )
        conn.execute(
            identity_review.insert().values(
                id=f"ir_{T}5e5e5e5e5e5e",
                tenant_id=tenant_id,
                record_a=recs[0],
                record_b=recs[1],
                probability=0.7,
                status="rejected",
                created_at=now,
                decided_at=now,
                decided_by="cli",
            )
        )
        conn.execute(
            identity_constraints.insert().values(
                id=f"ic_{T}1",
                tenant_id=tenant_id,
                kind="cannot_link",
                record_a=recs[0],
                record_b=recs[1],
                created_by="cli",
                created_at=now,
            )
        )
    return {"records": recs}


def test_resolver_exact_prefix_ambiguous_and_tenant_scoped(tenant):
    _world(tenant.engine, tenant.id)
    with tenant.engine.connect() as conn:
        assert resolve_id(conn, tenant.id, "quarantine entry", f"q_{T}d0000000cafe") == f"q_{T}d0000000cafe"
        assert resolve_id(conn, tenant.id, "quarantine entry", f"q_{T}d0") == f"q_{T}d0000000cafe"
        assert resolve_id(conn, tenant.id, "quarantine entry", f"q_{T}c768e08b1…") == f"q_{T}c768e08b11aa"
        with pytest.raises(AmbiguousId) as e:
            resolve_id(conn, tenant.id, "quarantine entry", f"q_{T}c768e08b…")
        assert e.value.candidates == [f"q_{T}c768e08b11aa", f"q_{T}c768e08b22bb"]
        assert f"q_{T}c768e08b11aa" in str(e.value) and f"q_{T}c768e08b22bb" in str(e.value)
        with pytest.raises(NotFound):
            resolve_id(conn, tenant.id, "quarantine entry", f"q_{T}zz")
        # "_" and "%" are literal characters, not LIKE wildcards
        with pytest.raises(NotFound):
            resolve_id(conn, tenant.id, "quarantine entry", "q%")
        with pytest.raises(NotFound):
            resolve_id(conn, "tn_other", "person", f"p_{T}7f")


def test_cli_lists_full_ids_and_takes_prefixes(tenant, cli):
    _world(tenant.engine, tenant.id)
    out = cli("quarantine", "list")
    assert f"q_{T}c768e08b11aa" in out and f"q_{T}d0000000cafe" in out  # never cut, even 60 columns wide
    wide = cli("quarantine", "list", "--wide")
    assert "not a mobile number" in wide and f"q_{T}c768e08b22bb" in wide
    rows = json.loads(cli("quarantine", "list", "--json"))
    assert sorted(r["id"] for r in rows) == [f"q_{T}c768e08b11aa", f"q_{T}c768e08b22bb", f"q_{T}d0000000cafe"]

    shown = json.loads(cli("quarantine", "show", f"q_{T}d0000000c…"))
    assert shown["id"] == f"q_{T}d0000000cafe"
    amb = cli("quarantine", "show", f"q_{T}c768e08b", code=2)
    assert "ambiguous" in amb and f"q_{T}c768e08b11aa" in amb and f"q_{T}c768e08b22bb" in amb
    cli("quarantine", "discard", f"q_{T}d0", "--reason", "test row")
    with tenant.engine.connect() as conn:
        assert conn.execute(
            sa.select(quarantine.c.status).where(quarantine.c.id == f"q_{T}d0000000cafe")
        ).scalar() == ("discarded")

    # persons show: by prefix, with the source-record ids that unmerge needs
    show = cli("persons", "show", f"p_{T}7f3a")
    assert f"sr_{T}aa11bb22cc33dd44" in show and f"sr_{T}aa11bb22cc33ee55" in show
    data = json.loads(cli("persons", "show", f"p_{T}7f3a", "--json"))
    assert sorted(r["id"] for r in data["source_records"]) == [
        f"sr_{T}aa11bb22cc33dd44",
        f"sr_{T}aa11bb22cc33ee55",
    ]
    # unmerge takes record prefixes too; an ambiguous one lists both
    amb = cli("identity", "unmerge", f"p_{T}7f3a", "--record", f"sr_{T}aa11bb22cc33", code=2)
    assert f"sr_{T}aa11bb22cc33dd44" in amb and f"sr_{T}aa11bb22cc33ee55" in amb


def test_a_rejection_can_be_revoked_from_the_cli(tenant, cli):
    _world(tenant.engine, tenant.id)
    out = cli("identity", "review", "revoke", f"ir_{T}5e5e", "--reason", "same doctor after all")
    assert f"ir_{T}5e5e5e5e5e5e" in out and "revoked" in out
    with tenant.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(identity_review.c.status).where(identity_review.c.id == f"ir_{T}5e5e5e5e5e5e")
            ).scalar()
            == "open"
        )
        assert (
            conn.execute(
                sa.select(identity_constraints.c.revoked_at).where(identity_constraints.c.id == f"ic_{T}1")
            ).scalar()
            is not None
        )
        audit = conn.execute(
            sa.select(audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action == "identity.review.revoke"
            )
        ).scalar()
        assert audit["reason"] == "same doctor after all" and audit["constraints_revoked"] == 1
    again = cli("identity", "review", "revoke", f"ir_{T}5e5e", code=2)
    assert "only a rejection can be revoked" in again


def test_a_rejection_can_be_revoked_through_the_api_and_the_console(tenant):
    _world(tenant.engine, tenant.id)
    with tenant.engine.begin() as conn:
        token = accounts.create_token(conn=conn, tenant_id=tenant.id, role="analyst").token
        admin = accounts.create_token(conn=conn, tenant_id=tenant.id, role="admin").token
        accounts.create_user(
            conn=conn, tenant_id=tenant.id, username="boss", role="admin", password="pw-12345678"
        )
    with TestClient(create_app(tenant.engine)) as c:
        url = f"/api/v1/identity/reviews/ir_{T}5e5e5e5e5e5e/revoke"
        assert c.post(url, headers={"Authorization": f"Bearer {token}"}, json={}).status_code == 403
        r = c.post(url, headers={"Authorization": f"Bearer {admin}"}, json={"reason": "api"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "open"
        assert c.post(url, headers={"Authorization": f"Bearer {admin}"}, json={}).status_code == 409
        assert (
            c.post(
                url.replace("5e5e5e5e5e5e", "nope"), headers={"Authorization": f"Bearer {admin}"}
            ).status_code
            == 404
        )

        # reject again through the console's decide route, then revoke with the console's button
        csrf = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"csrf_token": csrf, "tenant": tenant.slug, "username": "boss", "password": "pw-12345678"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        page = c.get("/identity").text
        csrf = csrf_of(page)
        r = c.post(f"/identity/ir_{T}5e5e5e5e5e5e/decide", data={"csrf_token": csrf, "decision": "reject"})
        assert r.status_code in (200, 303)
        page = c.get("/identity").text
        assert f'action="/identity/ir_{T}5e5e5e5e5e5e/revoke"' in page
        r = c.post(f"/identity/ir_{T}5e5e5e5e5e5e/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
    with tenant.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(identity_review.c.status).where(identity_review.c.id == f"ir_{T}5e5e5e5e5e5e")
            ).scalar()
            == "open"
        )
        actors = (
            conn.execute(
                sa.select(audit_log.c.actor).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.action == "identity.review.revoke"
                )
            )
            .scalars()
            .all()
        )
        assert len(actors) == 2
