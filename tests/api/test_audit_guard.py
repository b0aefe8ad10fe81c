"""Audit completeness: every route of the API and the console is classified (a write, a read of
personal data, or a plain read with why), the guard catches a write or a read that leaves no
complete audit row, and every action the code audits names a purpose.

The suite itself is the walk that proves the routes it exercises: ``tests/conftest.py`` runs every
test under ``MEDSCRM_AUDIT_STRICT=1`` and fails a test whose requests left a gap."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.accounts.purposes import PURPOSE_BY_PREFIX, PURPOSES, purpose_of
from medscrm.api import audit_guard
from medscrm.api.audit_guard import GAPS, PERSONAL_READS, PLAIN_READS, UNAUDITED_WRITES, gap_of, must_audit
from medscrm.app import create_app
from medscrm.db.schema import audit_log

SRC = Path(__file__).resolve().parents[2] / "src" / "medscrm"


def _routes(app):
    stack = list(app.routes)
    while stack:
        r = stack.pop(0)
        contexts = getattr(r, "effective_route_contexts", None)
        if contexts is not None:
            stack[:0] = list(contexts())
            continue
        for m in sorted(getattr(r, "methods", None) or ()):
            if m != "HEAD":
                yield m, r.path


@pytest.fixture
def app(tenant, tmp_path):
    return create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)


def test_every_route_is_classified(app):
    routes = set(_routes(app))
    gets = {r for r in routes if r[0] == "GET"}
    unclassified = sorted(gets - PERSONAL_READS - set(PLAIN_READS))
    assert unclassified == [], "GET routes in neither PERSONAL_READS nor PLAIN_READS (say why)"
    declared = PERSONAL_READS | set(PLAIN_READS) | set(UNAUDITED_WRITES)
    assert sorted(declared - routes) == [], "audit_guard names routes that are gone"
    assert not PERSONAL_READS & set(PLAIN_READS)
    assert all(why.strip() for why in [*PLAIN_READS.values(), *UNAUDITED_WRITES.values()])
    writes = {r for r in routes if r[0] in audit_guard.MUTATING}
    assert writes and all(must_audit(*r) for r in writes - set(UNAUDITED_WRITES))


def test_the_guard_catches_a_write_without_an_audit_row(app, tenant):
    """Two probe routes on the real app: one audits, one does not; only the second is a gap."""
    from fastapi import APIRouter

    probe = APIRouter()

    @probe.post("/api/v1/_probe/silent")
    def silent() -> dict:
        return {"ok": True}

    @probe.post("/api/v1/_probe/audited")
    def audited() -> dict:
        with tenant.engine.begin() as conn:
            accounts.audit(conn=conn, tenant_id=tenant.id, actor="probe", action="webhook.update")
        return {"ok": True}

    @probe.post("/api/v1/_probe/unspecified")
    def unspecified() -> dict:
        with tenant.engine.begin() as conn:
            accounts.audit(conn=conn, tenant_id=tenant.id, actor="probe", action="mystery.thing")
        return {"ok": True}

    app.include_router(probe)
    c = TestClient(app)
    GAPS.clear()
    for path in ("silent", "audited", "unspecified"):
        assert c.post(f"/api/v1/_probe/{path}").status_code == 200
    gaps = list(GAPS)
    GAPS.clear()
    assert [(g[1], g[3]) for g in gaps] == [
        ("/api/v1/_probe/silent", "no audit row"),
        (
            "/api/v1/_probe/unspecified",
            "audit rows lack the tenant, actor, action, purpose or object: mystery.thing",
        ),
    ]
    with tenant.engine.connect() as conn:
        purpose = conn.execute(
            sa.select(audit_log.c.purpose).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action == "webhook.update"
            )
        ).scalar()
    assert purpose == "integration"


def test_a_personal_read_needs_the_object_it_read():
    route = next(iter(PERSONAL_READS))
    row = {"tenant_id": "t", "actor": "a", "action": "profile.read", "purpose": "service"}
    assert gap_of(*route, [row]) is not None
    assert gap_of(*route, [{**row, "object_type": "person"}]) is None
    assert gap_of("POST", "/api/v1/segments", [row]) is None  # a write needs no object type


def _audited_actions() -> set[str]:
    """Every action the source code audits: string constants given as ``action=`` (calls or dict
    entries), and the constant prefix of f-strings."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            values = []
            if isinstance(node, ast.keyword) and node.arg == "action":
                values.append(node.value)
            if isinstance(node, ast.Dict):
                values += [
                    v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if getattr(k, "value", None) == "action"
                ]
            for v in values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    found.add(v.value)
                elif isinstance(v, ast.JoinedStr) and v.values and isinstance(v.values[0], ast.Constant):
                    found.add(str(v.values[0].value))
    return found


def test_every_audited_action_names_a_purpose():
    actions = _audited_actions()
    # what the scan must find, or it scans nothing
    assert {"profile.read", "dsr.", "consent.", "webhook.create", "segment.export"} <= actions
    # keyword arguments named action that are not audit actions (argparse-style flags, verbs)
    not_audit = {"store_true", "append", "ignore", "approve", "reject", "submit", "withdraw"}
    missing = sorted(a for a in actions - not_audit if purpose_of(a) == "unspecified")
    assert missing == [], f"add a prefix to accounts.purposes.PURPOSE_BY_PREFIX for: {missing}"
    assert set(PURPOSE_BY_PREFIX.values()) <= set(PURPOSES)


def test_a_named_purpose_is_kept_and_a_wrong_one_refused(tenant):
    with tenant.engine.begin() as conn:
        accounts.audit(
            conn=conn, tenant_id=tenant.id, actor="t", action="profile.read", purpose="data_subject_rights"
        )
        with pytest.raises(ValueError, match="unknown purpose 'fun'"):
            accounts.audit(conn=conn, tenant_id=tenant.id, actor="t", action="profile.read", purpose="fun")
    with tenant.engine.connect() as conn:
        got = (
            conn.execute(
                sa.select(audit_log.c.purpose).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.action == "profile.read"
                )
            )
            .scalars()
            .all()
        )
    assert got == ["data_subject_rights"]
