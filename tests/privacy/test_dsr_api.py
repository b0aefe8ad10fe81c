"""The /api/v1/dsr routes on DuckDB and PostgreSQL: a DPO (compliance) token looks up, exports,
restricts, holds, erases and downloads the certificate; other roles are refused."""

from __future__ import annotations

import io
import json
import zipfile

from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from privacy.helpers import plant


def _client(tenant, tmp_path, role="compliance"):
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    with tenant.engine.begin() as conn:
        tok = accounts.create_token(conn=conn, tenant_id=tenant.id, role=role).token
    return TestClient(app), {"Authorization": f"Bearer {tok}"}


def test_dpo_answers_a_request_through_the_api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    c, h = _client(tenant, tmp_path)
    r = c.post("/api/v1/dsr/lookup", json={"identifier": p.local_phone}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["person_id"] == p.person_id and r.json()["tables"]["events"] == 1
    r = c.post("/api/v1/dsr/export", json={"identifier": p.email, "reason": "Art. 45"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("manifest.json"))
    assert manifest["request_id"] == r.headers["x-dsr-request-id"]
    r = c.post("/api/v1/dsr/hold", json={"identifier": p.email, "reason": "case 7"}, headers=h)
    assert r.status_code == 200 and r.json()["kind"] == "hold"
    r = c.post("/api/v1/dsr/erase", json={"identifier": p.email, "confirm": True}, headers=h)
    assert r.status_code == 409 and "legal hold" in r.json()["errors"][0]["reason"]
    r = c.post("/api/v1/dsr/erase", json={"identifier": p.email, "confirm": False}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "confirm"
    c.post("/api/v1/dsr/hold", json={"identifier": p.email, "release": True}, headers=h)
    r = c.post("/api/v1/dsr/erase", json={"identifier": p.email, "confirm": True}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "done"
    rid = r.json()["id"]
    cert = c.get(f"/api/v1/dsr/requests/{rid}/certificate", headers=h).json()
    assert cert["certificate"]["request_id"] == rid and len(cert["sha256"]) == 64
    kinds = [x["kind"] for x in c.get("/api/v1/dsr/requests", headers=h).json()["requests"]]
    assert kinds[:5] == ["erase", "release", "erase", "hold", "export"]
    r = c.post("/api/v1/dsr/lookup", json={"identifier": p.email}, headers=h)
    assert r.status_code == 404 and "no person found" in r.text


def test_other_roles_may_not(tenant, tmp_path):
    c, h = _client(tenant, tmp_path, role="marketer")
    assert c.post("/api/v1/dsr/lookup", json={"identifier": "x"}, headers=h).status_code == 403
