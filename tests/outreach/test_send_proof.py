"""Proof of every send: each send row names the consent it relied on, the content approval and the
guardrail checks with the values compared; the compliance report reads them back, audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from medscrm.common import InvalidInput, NotFound, new_id
from medscrm.db.schema import audit_log, journeys, sends
from medscrm.outreach import compliance, consent
from medscrm.outreach.send import SendRequest, dispatch_once, request_send
from medscrm.outreach.settings import set_policy
from outreach.helpers import DAY, NIGHT, approved_item, grant, make_person, setup_email


def _req(tid, pid, cid, key, origin="journey:j1:s1", **kw):
    return SendRequest(
        tenant_id=tid,
        person_id=pid,
        channel="email",
        content_id=cid,
        idempotency_key=key,
        origin=origin,
        **kw,
    )


def _row(conn, send_id):
    return dict(conn.execute(sa.select(sends).where(sends.c.id == send_id)).mappings().one())


def _checks(row):
    return {c["name"]: c for c in row["checks"]}


def _journey(conn, tid, key):
    jid = new_id("jr")
    conn.execute(
        journeys.insert().values(
            id=jid,
            tenant_id=tid,
            key=key,
            name=key,
            status="running",
            created_by="t",
            created_at=DAY,
            updated_at=DAY,
        )
    )
    return jid


def test_an_allowed_send_carries_consent_version_approval_and_passing_checks(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid, channel="email")
        consent.set_consent(
            conn,
            tenant_id=tid,
            person_id=pid,
            channel="email",
            purpose="marketing",
            status="granted",
            source="wechat_form",
            evidence={"form": "t2"},
            actor="test",
        )
        out = request_send(conn, _req(tid, pid, item["id"], "ok"), now=DAY)
        row = _row(conn, out.send_id)
        history = consent.consent_log(conn, tenant_id=tid, person_id=pid)
    assert out.status == "queued"
    assert row["consent_version"] == 2  # the second change of the email/marketing consent
    assert row["consent_history_id"] == history[0]["id"]  # the newest change
    assert len(row["consent_hash"]) == 64
    assert row["approval_code"] == "MLR-2026-001"
    assert row["approval_expires_at"] is not None
    checks = _checks(row)
    for name in ("consent", "content_approval", "audience", "frequency_cap", "quiet_hours"):
        assert checks[name]["result"] == "pass", name
        assert checks[name]["stage"] == "request"
    assert checks["consent"]["values"] == {
        "channel": "email",
        "purpose": "marketing",
        "status": "granted",
        "version": 2,
    }
    assert checks["content_approval"]["values"]["approval_code"] == "MLR-2026-001"
    assert checks["audience"]["values"] == {
        "content_audience": "hcp_only",
        "prescription": False,
        "recipient": "verified_hcp",
    }
    assert checks["quiet_hours"]["values"]["start"] and checks["quiet_hours"]["values"]["until"] is None


def test_the_hash_changes_with_what_the_person_agreed_to(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        a = make_person(conn, tid)
        grant(conn, tid, a)
        first = consent.consent_proof(conn, tenant_id=tid, person_id=a, channel="email", purpose="marketing")
        consent.set_consent(
            conn,
            tenant_id=tid,
            person_id=a,
            channel="any",
            purpose="marketing",
            status="withdrawn",
            source="sms_reply",
            evidence={"reply": "TD"},
            actor="test",
        )
        second = consent.consent_proof(conn, tenant_id=tid, person_id=a, channel="email", purpose="marketing")
        none = consent.consent_proof(conn, tenant_id=tid, person_id=a, channel="sms", purpose="survey")
    assert first["channel"] == "any" and first["version"] == 1  # decided by the "any" row
    assert second["version"] == 2 and second["status"] == "withdrawn"
    assert first["hash"] != second["hash"]
    assert none is None


def test_blocked_sends_carry_the_failing_check(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        set_policy(
            conn, tenant_id=tid, changes={"frequency_caps": {"email": [{"max": 1, "hours": 24}]}}, actor="a"
        )
        item = approved_item(conn, tid)
        no_consent = make_person(conn, tid, email="n@h.example", license_no="110101199001011234")
        capped = make_person(conn, tid, email="c@h.example", license_no="110101199001012345")
        grant(conn, tid, capped)
        blocked = request_send(conn, _req(tid, no_consent, item["id"], "nc"), now=DAY)
        first = request_send(conn, _req(tid, capped, item["id"], "c1"), now=DAY)
        over = request_send(conn, _req(tid, capped, item["id"], "c2"), now=DAY + dt.timedelta(hours=1))
        night = request_send(conn, _req(tid, capped, item["id"], "n1"), now=NIGHT + dt.timedelta(days=2))
        rows = {
            k: _row(conn, o.send_id) for k, o in (("nc", blocked), ("c1", first), ("c2", over), ("n1", night))
        }
    assert (blocked.status, blocked.reason) == ("blocked", "no_consent")
    nc = _checks(rows["nc"])
    assert nc["consent"]["result"] == "fail" and nc["consent"]["values"]["status"] is None
    assert rows["nc"]["checks"][-1]["name"] == "consent"  # later checks did not run
    assert rows["nc"]["consent_version"] is None
    assert (over.status, over.reason) == ("blocked", "frequency_cap")
    cap = _checks(rows["c2"])["frequency_cap"]
    assert cap["result"] == "fail"
    assert cap["values"]["caps"] == [{"max": 1, "hours": 24, "count": 1}]
    assert rows["c2"]["approval_code"] == "MLR-2026-001" and rows["c2"]["consent_version"] == 1
    assert _checks(rows["c1"])["frequency_cap"]["values"]["caps"] == [{"max": 1, "hours": 24, "count": 0}]
    assert (night.status, night.reason) == ("queued", "quiet_hours")
    qh = _checks(rows["n1"])["quiet_hours"]
    assert qh["result"] == "deferred"
    assert qh["values"]["until"] == night.not_before.isoformat()


def test_a_send_refused_at_dispatch_keeps_its_request_proof_and_adds_the_refusal(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        out = request_send(conn, _req(tid, pid, item["id"], "d1"), now=DAY)
        consent.set_consent(
            conn,
            tenant_id=tid,
            person_id=pid,
            channel="any",
            purpose="marketing",
            status="withdrawn",
            source="unsubscribe",
            evidence=None,
            actor="test",
        )
    dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY + dt.timedelta(minutes=1))
    with tenant.engine.connect() as conn:
        row = _row(conn, out.send_id)
    assert (row["status"], row["reason"]) == ("blocked", "no_consent")
    stages = [(c["stage"], c["name"], c["result"]) for c in row["checks"]]
    assert ("request", "consent", "pass") in stages
    assert stages[-1] == ("dispatch", "consent", "fail")


def test_the_report_per_journey_and_per_person_is_masked_and_audited(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        jid = _journey(conn, tid, "onboarding")
        other = _journey(conn, tid, "other")
        pid = make_person(
            conn, tid, email="zhang@h.example", license_no="110101199001011234", name="=HYPERLINK(1)"
        )
        nobody = make_person(conn, tid, email="li@h.example", license_no="110101199001012345")
        grant(conn, tid, pid)
        ok = request_send(conn, _req(tid, pid, item["id"], "r1", origin=f"journey:{jid}:s1"), now=DAY)
        no = request_send(conn, _req(tid, nobody, item["id"], "r2", origin=f"journey:{jid}:s2"), now=DAY)
        request_send(conn, _req(tid, pid, item["id"], "r3", origin=f"journey:{other}:s1"), now=DAY)
    with tenant.engine.begin() as conn:
        by_journey = compliance.send_proofs(
            conn, tenant_id=tid, role="analyst", actor="aud", journey="onboarding"
        )
        by_person = compliance.send_proofs(conn, tenant_id=tid, role="compliance", actor="aud", person_id=pid)
        audits = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.object_id, audit_log.c.detail).where(
                audit_log.c.tenant_id == tid, audit_log.c.action == "compliance.sends.read"
            )
        ).all()
    assert {r["send_id"] for r in by_journey} == {ok.send_id, no.send_id}
    mine = next(r for r in by_journey if r["send_id"] == ok.send_id)
    assert mine["consent_version"] == 1 and mine["approval_code"] == "MLR-2026-001"
    assert mine["contact"] != "zhang@h.example" and "***" in mine["contact"]  # analyst: no pii.read
    refused = next(r for r in by_journey if r["send_id"] == no.send_id)
    assert refused["status"] == "blocked" and refused["checks"][-1]["result"] == "fail"
    assert len(by_person) == 2 and {r["person_id"] for r in by_person} == {pid}
    assert by_person[0]["contact"] == "zhang@h.example"  # compliance reads PII
    assert sorted((a, o) for a, o, _ in audits) == [
        ("compliance.sends.read", "onboarding"),
        ("compliance.sends.read", pid),
    ]
    text = compliance.to_csv(by_person)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["person_name"] == "'=HYPERLINK(1)"  # formula-safe
    assert parsed[0]["approval_code"] == "MLR-2026-001"
    assert "frequency_cap" in parsed[0]["checks"]
    with tenant.engine.begin() as conn:
        with pytest.raises(NotFound):
            compliance.send_proofs(conn, tenant_id=tid, role="compliance", actor="a", journey="nope")
        with pytest.raises(InvalidInput) as exc:
            compliance.send_proofs(conn, tenant_id=tid, role="compliance", actor="a")
    assert exc.value.field == "journey"


def test_the_report_over_the_api_json_and_csv_is_for_auditors(tenant, tmp_path):
    from fastapi.testclient import TestClient

    from medscrm.app import create_app
    from outreach.test_api_feedback import _h, _tokens

    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        jid = _journey(conn, tid, "welcome")
        pid = make_person(conn, tid, email="zhang@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        ok = request_send(conn, _req(tid, pid, item["id"], "a1", origin=f"journey:{jid}:s1"), now=DAY)
    tok = _tokens(tenant, owned=[pid])
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as c:
        assert (
            c.get("/api/v1/compliance/sends?journey=welcome", headers=_h(tok["marketer"])).status_code == 403
        )
        r = c.get("/api/v1/compliance/sends?journey=welcome", headers=_h(tok["compliance"]))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 1 and body["sends"][0]["send_id"] == ok.send_id
        assert body["sends"][0]["approval_code"] == "MLR-2026-001"
        assert {c["name"] for c in body["sends"][0]["checks"]} >= {
            "consent",
            "audience",
            "frequency_cap",
            "quiet_hours",
        }
        by_person = c.get(f"/api/v1/compliance/sends?person={pid}", headers=_h(tok["compliance"])).json()
        assert by_person["count"] == 1
        bad = c.get("/api/v1/compliance/sends", headers=_h(tok["compliance"]))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "journey"
        assert (
            c.get("/api/v1/compliance/sends?journey=nope", headers=_h(tok["compliance"])).status_code == 404
        )
        csv_r = c.get("/api/v1/compliance/sends.csv?journey=welcome", headers=_h(tok["compliance"]))
        assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
        assert ok.send_id in csv_r.text and "MLR-2026-001" in csv_r.text


def test_the_report_from_the_command_line(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from medscrm.accounts import service as accounts
    from medscrm.db import make_engine, upgrade_to_head

    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        tid = accounts.ensure_tenant(conn=conn, slug="default")["id"]
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        jid = _journey(conn, tid, "welcome")
        pid = make_person(conn, tid, email="zhang@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        ok = request_send(conn, _req(tid, pid, item["id"], "a1", origin=f"journey:{jid}:s1"), now=DAY)
    eng.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env["COLUMNS"] = "200"

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "medscrm", "compliance", "sends", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    as_json = cli("--journey", "welcome", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert rows[0]["send_id"] == ok.send_id and rows[0]["consent_version"] == 1
    as_csv = cli("--person", pid, "--format", "csv")
    assert as_csv.returncode == 0 and "MLR-2026-001" in as_csv.stdout
    table = cli("--journey", "welcome")
    assert table.returncode == 0 and "frequency_cap=pass" in table.stdout
    bad = cli("--format", "xml", "--journey", "welcome")
    assert bad.returncode == 2 and "--format" in bad.stderr
    none = cli()
    assert none.returncode == 2 and "journey" in none.stderr


def test_the_console_page_shows_each_send_with_its_proof_in_both_languages(tenant, tmp_path):
    from fastapi.testclient import TestClient

    from medscrm.accounts import service as accounts
    from medscrm.app import create_app
    from web.conftest import csrf_of

    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        jid = _journey(conn, tid, "welcome")
        pid = make_person(conn, tid, email="zhang@h.example", license_no="110101199001011234")
        nobody = make_person(conn, tid, email="li@h.example", license_no="110101199001012345")
        grant(conn, tid, pid)
        ok = request_send(conn, _req(tid, pid, item["id"], "w1", origin=f"journey:{jid}:s1"), now=DAY)
        no = request_send(conn, _req(tid, nobody, item["id"], "w2", origin=f"journey:{jid}:s1"), now=DAY)
        for role in ("compliance", "analyst"):
            accounts.create_user(
                conn=conn, tenant_id=tid, username=f"u_{role}", role=role, password="pw-12345678"
            )

    def signed_in(c, username, lang):
        c.cookies.set("medscrm_lang", lang)
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={
                "csrf_token": token,
                "tenant": tenant.slug,
                "username": username,
                "password": "pw-12345678",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text

    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)
    with TestClient(app) as c:
        signed_in(c, "u_compliance", "zh")
        zh = c.get("/compliance")  # no choice: the first journey
        assert zh.status_code == 200
        assert 'data-nav="compliance"' in zh.text and "发送合规凭证" in zh.text
        assert f'data-send="{ok.send_id}"' in zh.text and f'data-send="{no.send_id}"' in zh.text
        assert "MLR-2026-001" in zh.text and "第 1 版" in zh.text
        assert "授权同意: 未通过" in zh.text and "发送频次上限: 通过" in zh.text
        c.cookies.set("medscrm_lang", "en")
        en = c.get(f"/compliance?person={pid}").text
    assert "Frequency cap: pass" in en and f'data-send="{no.send_id}"' not in en
    with TestClient(app) as c:
        signed_in(c, "u_analyst", "zh")
        assert c.get("/compliance").status_code == 403
