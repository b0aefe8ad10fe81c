"""Reps' tasks from journey task steps on DuckDB and PostgreSQL: a rep's inbox keeps the rep scope,
other roles see the tenant's with filters and counts per assignee, closing is audited; the API and the
CLI do the same."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from journeys.support import NOW, linear, make_persons
from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import Conflict, InvalidInput, NotFound, new_id
from medscrm.db.schema import audit_log, identities, identity_links
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.journeys import tasks as ts
from tests_support import cli_env

LIU = {"username": "liujun", "display_name": "刘军"}


def link_rep(conn, tenant_id: str, person_id: str, rep: str, ext: str) -> None:
    """The person is a WeCom external contact of ``rep``: the task goes to the rep, who owns them."""
    conn.execute(
        sa.insert(identities).values(
            id=new_id("id"),
            tenant_id=tenant_id,
            type="wecom_external_userid",
            value=ext,
            person_id=person_id,
            created_at=NOW,
        )
    )
    conn.execute(
        sa.insert(identity_links).values(
            id=new_id("il"),
            tenant_id=tenant_id,
            source_id="wecom",
            relation="wecom_contact_of",
            type_a="wecom_external_userid",
            value_a=ext,
            type_b="wecom_user",
            value_b=rep,
            created_at=NOW,
        )
    )


def make_tasks(tenant) -> list[str]:
    """Four persons through a task step: two of liujun's, one of wangfang's, one without a rep."""
    d = linear(
        "followup",
        [
            {
                "id": "call",
                "type": "task",
                "title": "电话回访 · call back",
                "due": "2d",
                "note": "高意向 · high intent",
            }
        ],
        name="心衰回访 · HF follow-up",
    )
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, 4, lambda i: {"phone": f"+861380013800{i}"})
        link_rep(c, tenant.id, pids[0], "liujun", "wmA")
        link_rep(c, tenant.id, pids[1], "liujun", "wmB")
        link_rep(c, tenant.id, pids[2], "wangfang", "wmC")
        js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key="followup", actor="test", now=NOW)
        js.enroll(c, tenant_id=tenant.id, key="followup", person_ids=pids, actor="test", now=NOW)
    je.tick(tenant.engine, worker_id="w", now=NOW, tenant_id=tenant.id, dispatch_sends=False)
    return pids


def test_rep_inbox_scope_manager_view_and_audited_close(tenant):
    pids = make_tasks(tenant)
    with tenant.engine.begin() as c:
        mine, n = ts.list_tasks(c, tenant_id=tenant.id, role="rep", user=LIU)
        assert n == 2 and {r["person_id"] for r in mine} == set(pids[:2])
        r0 = mine[0]
        assert (
            r0["journey"] == "followup" and r0["note"] == "高意向 · high intent" and r0["due_at"] is not None
        )
        assert "****" in r0["person"]["phone"]  # a rep sees phones masked
        # a task of liujun's about an HCP he no longer owns is not his to see
        c.execute(sa.delete(identity_links).where(identity_links.c.value_a == "wmB"))
        mine, n = ts.list_tasks(c, tenant_id=tenant.id, role="rep", user=LIU)
        assert n == 1 and mine[0]["person_id"] == pids[0]
        other = ts.list_tasks(c, tenant_id=tenant.id, role="marketer", status=None)[0]
        hidden = next(r["id"] for r in other if r["person_id"] == pids[2])
        with pytest.raises(NotFound):
            ts.close_task(
                c,
                tenant_id=tenant.id,
                task_id=hidden,
                action="done",
                actor="user:liujun",
                role="rep",
                user=LIU,
            )
        # managers: everything, filters, counts per assignee
        all_rows, total = ts.list_tasks(c, tenant_id=tenant.id, role="marketer")
        assert total == 4 and all_rows[0]["person"]["phone"].startswith("+86138")  # PII in clear
        assert ts.list_tasks(c, tenant_id=tenant.id, role="marketer", assignee="wangfang")[1] == 1
        assert ts.list_tasks(c, tenant_id=tenant.id, role="marketer", assignee="")[1] == 1
        assert ts.list_tasks(c, tenant_id=tenant.id, role="marketer", journey="followup")[1] == 4
        with pytest.raises(InvalidInput, match="journey"):
            ts.list_tasks(c, tenant_id=tenant.id, role="marketer", journey="nope")
        counts = {r["assignee"]: r for r in ts.counts_by_assignee(c, tenant_id=tenant.id, role="marketer")}
        assert counts["liujun"]["open"] == 2 and counts["wangfang"]["open"] == 1 and counts[None]["open"] == 1
        # the rep closes his task: done; dismissing needs a note; a closed task stays closed
        tid = mine[0]["id"]
        with pytest.raises(InvalidInput, match="note"):
            ts.close_task(
                c,
                tenant_id=tenant.id,
                task_id=tid,
                action="dismiss",
                actor="user:liujun",
                role="rep",
                user=LIU,
            )
        out = ts.close_task(
            c,
            tenant_id=tenant.id,
            task_id=tid,
            action="done",
            note="已电话沟通",
            actor="user:liujun",
            role="rep",
            user=LIU,
        )
        assert out["status"] == "done"
        with pytest.raises(Conflict):
            ts.close_task(
                c, tenant_id=tenant.id, task_id=tid, action="done", actor="user:liujun", role="rep", user=LIU
            )
        # an analyst reads but does not close
        with pytest.raises(InvalidInput, match="assignee"):
            ts.close_task(
                c, tenant_id=tenant.id, task_id=hidden, action="done", actor="user:a", role="analyst"
            )
        ts.close_task(
            c,
            tenant_id=tenant.id,
            task_id=hidden,
            action="dismiss",
            note="已离职",
            actor="user:m",
            role="marketer",
        )
        audit = c.execute(
            sa.select(audit_log.c.action, audit_log.c.object_id, audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action.startswith("task.")
            )
        ).all()
        assert {(a.action, a.object_id, a.actor) for a in audit} == {
            ("task.done", tid, "user:liujun"),
            ("task.dismiss", hidden, "user:m"),
        }
        done = ts.list_tasks(c, tenant_id=tenant.id, role="marketer", status="done")[0]
        assert [(r["id"], r["close_note"], r["closed_by"]) for r in done] == [
            (tid, "已电话沟通", "user:liujun")
        ]
        counts = {r["assignee"]: r for r in ts.counts_by_assignee(c, tenant_id=tenant.id, role="marketer")}
        assert (counts["liujun"]["open"], counts["liujun"]["done"], counts["wangfang"]["dismissed"]) == (
            1,
            1,
            1,
        )


def test_tasks_api_and_cli(tenant, tmp_path):
    make_tasks(tenant)
    with tenant.engine.begin() as c:
        u = accounts.create_user(
            conn=c, tenant_id=tenant.id, username="liujun", role="rep", password="x" * 12, display_name="刘军"
        )
        h = {
            "rep": accounts.create_token(conn=c, tenant_id=tenant.id, role="rep", user_id=u["id"]).token,
            "analyst": accounts.create_token(conn=c, tenant_id=tenant.id, role="analyst").token,
            "marketer": accounts.create_token(conn=c, tenant_id=tenant.id, role="marketer").token,
        }
    h = {k: {"Authorization": f"Bearer {v}"} for k, v in h.items()}
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool")) as tc:
        r = tc.get("/api/v1/tasks", headers=h["rep"]).json()
        assert r["total"] == 2 and all(t["assignee"] == "liujun" for t in r["tasks"])
        assert tc.get("/api/v1/tasks", headers=h["marketer"]).json()["total"] == 4
        tid = r["tasks"][0]["id"]
        assert tc.post(f"/api/v1/tasks/{tid}/complete", json={}, headers=h["analyst"]).status_code == 403
        r = tc.post(f"/api/v1/tasks/{tid}/complete", json={"action": "dismiss"}, headers=h["rep"])
        assert r.status_code == 422 and "note" in r.text
        r = tc.post(f"/api/v1/tasks/{tid}/complete", json={"action": "done", "note": "ok"}, headers=h["rep"])
        assert r.status_code == 200 and r.json()["status"] == "done"
        assert tc.post(f"/api/v1/tasks/{tid}/complete", json={}, headers=h["rep"]).status_code == 409
        assert tc.post("/api/v1/tasks/tsk_nope/complete", json={}, headers=h["rep"]).status_code == 404
        assert tc.get("/api/v1/tasks?status=all", headers=h["rep"]).json()["total"] == 2
        assert tc.get("/api/v1/tasks?status=bogus", headers=h["rep"]).status_code == 422
        spec = tc.get("/openapi.json").json()
        assert {"/api/v1/tasks", "/api/v1/tasks/{task_id}/complete", "/api/v1/journeys/{key}/results"} <= set(
            spec["paths"]
        )


def test_cli_tasks_list_and_done(tmp_path):
    db = tmp_path / "cli.duckdb"
    env = cli_env(MEDSCRM_DATABASE_URL=f"duckdb:///{db}", MEDSCRM_TENANT="clit")

    def run(*args, code=0):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert p.returncode == code, p.stdout + p.stderr
        return p.stdout + p.stderr

    run("tenants", "create", "clit")
    from medscrm.db import make_engine

    engine = make_engine(f"duckdb:///{db}")
    with engine.connect() as c:
        tid = c.execute(sa.text("select id from tenants where slug = 'clit'")).scalar_one()

    class T:
        pass

    t = T()
    t.engine, t.id = engine, tid
    make_tasks(t)
    with engine.connect() as c:
        rows = ts.list_tasks(c, tenant_id=tid, role="admin", assignee="wangfang")[0]
    engine.dispose()
    assert "--dismiss" in run("tasks", "done", "--help")
    out = run("tasks", "list", "--wide")
    assert "电话回访" in out and "liujun: 2 open" in out and "(unassigned): 1 open" in out
    out = run("tasks", "done", rows[0]["id"][:12], "--dismiss", code=2)
    assert "note" in out
    out = run("tasks", "done", rows[0]["id"][:12], "--dismiss", "--note", "moved away", "--actor", "ops")
    assert f"task {rows[0]['id']}: dismissed" in out
    assert "wangfang: 0 open" in run("tasks", "list", "--status", "all", "--wide")
