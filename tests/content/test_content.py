"""The content library: the MLR status machine, four-eyes approval, expiry, audience rules,
withdrawal cancelling queued sends — on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, MedscrmError
from medscrm.content import service as content
from medscrm.content.service import TransitionError, is_sendable, sendable_reason
from medscrm.db.schema import audit_log, events, sends
from medscrm.outreach.send import SendRequest, request_send
from outreach.helpers import DAY, approved_item, grant, make_person, setup_email


def json_prop(v):
    return json.loads(v) if isinstance(v, str) else v


def _draft(conn, tenant_id, **kw):
    args = dict(
        key="dm-guide",
        title="2型糖尿病指南",
        kind="article",
        audience="hcp_only",
        actor="author1",
        therapy_area="diabetes",
        topics=["guideline"],
        body="hello {{ name }}",
    )
    args.update(kw)
    return content.create_item(conn, tenant_id=tenant_id, **args)


def test_status_machine_with_four_eyes_approval_and_audit(tenant):
    with tenant.engine.begin() as conn:
        item = _draft(conn, tenant.id)
        assert item["status"] == "draft" and item["id"].startswith("ct_")
        with pytest.raises(TransitionError, match="cannot approve .* while it is draft"):
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-1",
                actor="rev",
                actor_role="compliance",
                expires_at=DAY + dt.timedelta(days=30),
            )
        assert (
            content.submit_for_review(conn, tenant_id=tenant.id, item_id="dm-guide", actor="author1")[
                "status"
            ]
            == "in_review"
        )
        with pytest.raises(TransitionError, match="cannot submit"):
            content.submit_for_review(conn, tenant_id=tenant.id, item_id=item["id"], actor="author1")
        with pytest.raises(MedscrmError, match="only the compliance role"):
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-1",
                actor="m",
                actor_role="marketer",
            )
        with pytest.raises(MedscrmError, match="cannot approve it"):
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-1",
                actor="author1",
                actor_role="compliance",
                expires_at=DAY + dt.timedelta(days=30),
            )
        with pytest.raises(InvalidInput, match="approval_code"):
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code=" ",
                actor="rev",
                actor_role="compliance",
            )
        with pytest.raises(InvalidInput, match="expires_at"):
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-1",
                actor="rev",
                actor_role="compliance",
            )
        back = content.reject(
            conn,
            tenant_id=tenant.id,
            item_id=item["id"],
            reason="cite the source",
            actor="rev",
            actor_role="compliance",
        )
        assert back["status"] == "draft" and back["review_note"] == "cite the source"
        content.submit_for_review(conn, tenant_id=tenant.id, item_id=item["id"], actor="author1")
        ok = content.approve(
            conn,
            tenant_id=tenant.id,
            item_id=item["id"],
            approval_code="MLR-2026-07",
            actor="rev",
            actor_role="compliance",
            expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        )
        assert (
            ok["status"] == "approved" and ok["approved_by"] == "rev" and ok["approval_code"] == "MLR-2026-07"
        )
        wd = content.withdraw(
            conn, tenant_id=tenant.id, item_id=item["id"], actor="rev", reason="label change"
        )
        assert wd["status"] == "withdrawn"
        with pytest.raises(TransitionError, match="cannot withdraw .* while it is withdrawn"):
            content.withdraw(conn, tenant_id=tenant.id, item_id=item["id"], actor="rev")
        actions = [
            a
            for (a,) in conn.execute(
                sa.select(audit_log.c.action)
                .where(audit_log.c.tenant_id == tenant.id, audit_log.c.object_id == item["id"])
                .order_by(audit_log.c.occurred_at)
            )
        ]
    assert actions == [
        "content.create",
        "content.submit",
        "content.reject",
        "content.submit",
        "content.approve",
        "content.withdraw",
    ]


def test_bad_items_are_refused_naming_the_field(tenant):
    with tenant.engine.begin() as conn:
        cases = [
            (dict(audience="patient", prescription=True, product="DrugX"), "audience"),
            (dict(prescription=True), "product"),
            (dict(kind="tweet"), "kind"),
            (dict(audience="everyone"), "audience"),
            (dict(key="Bad Key!"), "key"),
            (dict(body=None), "body"),
            (dict(url="ftp://x"), "url"),
            (dict(valid_from=dt.datetime(2027, 1, 1)), "valid_from"),
            (
                dict(
                    valid_from=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
                    expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                ),
                "expires_at",
            ),
        ]
        for kw, field in cases:
            with pytest.raises(InvalidInput) as exc:
                _draft(conn, tenant.id, **kw)
            assert exc.value.field == field, kw
        _draft(conn, tenant.id)
        with pytest.raises(InvalidInput, match="already exists"):
            _draft(conn, tenant.id)


def test_expired_items_read_as_expired_and_are_persisted(tenant):
    past = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with tenant.engine.begin() as conn:
        item = approved_item(conn, tenant.id, expires_at=past)
    assert item["status"] == "approved"
    import time

    time.sleep(1.2)
    with tenant.engine.begin() as conn:
        assert content.get_item(conn, tenant_id=tenant.id, item_id=item["id"])["status"] == "expired"
        assert [i["id"] for i in content.list_items(conn, tenant_id=tenant.id, status="expired")] == [
            item["id"]
        ]
        assert (
            sendable_reason(
                content.get_item(conn, tenant_id=tenant.id, item_id=item["id"]), None, "verified_hcp"
            )
            == "content_expired"
        )
        # an expired item can still be withdrawn, not approved again
        assert (
            content.withdraw(conn, tenant_id=tenant.id, item_id=item["id"], actor="rev")["status"]
            == "withdrawn"
        )


def _item(status="approved", audience="hcp_only", prescription=False, valid_from=None, expires_at=None):
    return {
        "status": status,
        "audience": audience,
        "prescription": prescription,
        "valid_from": valid_from,
        "expires_at": expires_at,
        "topics": [],
    }


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from(content.STATUSES),
    audience=st.sampled_from(content.AUDIENCES),
    prescription=st.booleans(),
    recipient=st.sampled_from(content.RECIPIENTS),
    expired=st.booleans(),
)
def test_sendability_rules(status, audience, prescription, recipient, expired):
    now = DAY
    item = _item(
        status,
        audience,
        prescription,
        expires_at=now - dt.timedelta(seconds=1) if expired else now + dt.timedelta(days=1),
    )
    ok = is_sendable(item, now, recipient)
    # the rules, stated independently of the implementation
    must_be_ok = (
        status == "approved"
        and not expired
        and not (audience == "hcp_only" and recipient in ("patient", "public"))
        and not (prescription and recipient != "verified_hcp")
    )
    assert ok == must_be_ok
    if prescription and recipient in ("patient", "public"):
        assert not ok  # never Rx content to patients or the public, whatever else holds


def test_not_yet_valid_content_is_not_sendable():
    item = _item(valid_from=DAY + dt.timedelta(hours=1))
    assert sendable_reason(item, DAY, "verified_hcp") == "content_not_yet_valid"
    assert is_sendable(item, DAY + dt.timedelta(hours=2), "verified_hcp")


def test_withdraw_cancels_every_queued_send_but_not_sent_ones(tenant):
    with tenant.engine.begin() as conn:
        setup_email(conn, tenant.id)
        item = approved_item(conn, tenant.id)
        other = approved_item(conn, tenant.id)
        ids = []
        for i in range(3):
            pid = make_person(conn, tenant.id, email=f"d{i}@h.example", license_no="110101200001011234")
            grant(conn, tenant.id, pid)
            out = request_send(
                conn,
                SendRequest(
                    tenant_id=tenant.id,
                    person_id=pid,
                    channel="email",
                    content_id=item["id"],
                    idempotency_key=f"k{i}",
                    origin="journey:j1:s1",
                ),
                now=DAY,
            )
            assert out.status == "queued"
            ids.append(out.send_id)
        keep = request_send(
            conn,
            SendRequest(
                tenant_id=tenant.id,
                person_id=pid,
                channel="email",
                content_id=other["id"],
                idempotency_key="other",
                origin="rep:u1",
            ),
            now=DAY,
        )
        conn.execute(sends.update().where(sends.c.id == ids[0]).values(status="sent"))
    with tenant.engine.begin() as conn:
        wd = content.withdraw(
            conn, tenant_id=tenant.id, item_id=item["id"], actor="rev", reason="safety update"
        )
        assert wd["cancelled_sends"] == 2
        rows = dict(
            conn.execute(sa.select(sends.c.id, sends.c.status).where(sends.c.tenant_id == tenant.id)).all()
        )
        reasons = dict(
            conn.execute(sa.select(sends.c.id, sends.c.reason).where(sends.c.tenant_id == tenant.id)).all()
        )
    assert rows[ids[0]] == "sent"
    assert rows[ids[1]] == rows[ids[2]] == "cancelled" and reasons[ids[1]] == "content_withdrawn"
    assert rows[keep.send_id] == "queued"
    with tenant.engine.connect() as conn:
        blocked = conn.execute(
            sa.select(events.c.message_id, events.c.properties).where(
                events.c.tenant_id == tenant.id, events.c.event == "Send Blocked"
            )
        ).all()
    assert sorted(m for m, _ in blocked) == sorted(f"blocked:{i}" for i in ids[1:])  # on the timelines
    assert {json_prop(p)["reason"] for _, p in blocked} == {"content_withdrawn"}
    # and a new request for the withdrawn item is refused
    with tenant.engine.begin() as conn:
        out = request_send(
            conn,
            SendRequest(
                tenant_id=tenant.id,
                person_id=pid,
                channel="email",
                content_id=item["id"],
                idempotency_key="late",
                origin="rep:u1",
            ),
            now=DAY,
        )
    assert out.status == "blocked" and out.reason == "content_withdrawn"


def test_content_cli_runs_the_review_as_users_do(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env["COLUMNS"] = "200"

    def cli(*args, ok=True):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert p.returncode == 0, p.stdout + p.stderr
        return p

    from medscrm.db import make_engine

    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    from medscrm.db import upgrade_to_head

    upgrade_to_head(eng)
    with eng.begin() as conn:
        t = accounts.ensure_tenant(conn=conn, slug="default")
        accounts.create_user(conn=conn, tenant_id=t["id"], username="liu", role="compliance")
        accounts.create_user(conn=conn, tenant_id=t["id"], username="wang", role="marketer")
    eng.dispose()
    cid = (
        cli(
            "content",
            "create",
            "onc-rx-1",
            "--title",
            "DrugX 处方信息",
            "--audience",
            "hcp_only",
            "--prescription",
            "--product",
            "DrugX",
            "--topic",
            "efficacy",
            "--body",
            "{{ name }} 医生您好",
            "--as",
            "wang",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert cid.startswith("ct_")
    bad = cli(
        "content", "approve", cid, "--as", "liu", "--code", "MLR-9", "--expires", "2030-01-01", ok=False
    )
    assert bad.returncode == 2 and "cannot approve" in bad.stderr and "draft" in bad.stderr
    # a draft is edited: only the options given change, with the create checks
    refused = cli("content", "edit", cid, "--as", "wang", "--audience", "patient", ok=False)
    assert refused.returncode == 2 and "audience" in refused.stderr
    edited = cli("content", "edit", cid, "--as", "wang", "--title", "DrugX 处方信息（2026）").stdout
    assert "edited: title" in edited
    assert "title: DrugX 处方信息（2026）" in cli("content", "show", "onc-rx-1").stdout
    cli("content", "submit", cid, "--as", "wang")
    frozen = cli("content", "edit", cid, "--as", "wang", "--title", "x", ok=False)
    assert frozen.returncode == 2 and "only a draft is edited" in frozen.stderr
    mine = cli(
        "content", "approve", cid, "--as", "wang", "--code", "MLR-9", "--expires", "2030-01-01", ok=False
    )
    assert mine.returncode == 2 and "compliance" in mine.stderr
    out = cli("content", "approve", cid, "--as", "liu", "--code", "MLR-9", "--expires", "2030-01-01").stdout
    assert "approved" in out and "MLR-9" in out
    shown = cli("content", "show", "onc-rx-1").stdout
    assert "approved_by: liu" in shown and "prescription: True" in shown
    assert "withdrawn" in cli("content", "withdraw", cid, "--as", "liu", "--reason", "label").stdout
    assert "withdrawn" in cli("content", "list").stdout


def test_the_submitter_may_not_approve_either_and_errors_carry_codes(tenant):
    with tenant.engine.begin() as conn:
        item = _draft(conn, tenant.id, key="sub-4eyes")
        content.submit_for_review(conn, tenant_id=tenant.id, item_id=item["id"], actor="user:rev2")
        assert content.get_item(conn, tenant_id=tenant.id, item_id=item["id"])["submitted_by"] == "user:rev2"
        # the console's "user:rev2" and the API's "rev2" are one person
        with pytest.raises(MedscrmError, match="submitted this item and cannot approve it") as exc:
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-9",
                actor="rev2",
                actor_role="compliance",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
            )
        assert exc.value.code == "four_eyes"
        with pytest.raises(MedscrmError) as exc:
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-9",
                actor="user:author1",
                actor_role="compliance",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
            )
        assert exc.value.code == "four_eyes" and "wrote this item" in str(exc.value)
        # an approval that would already have expired is refused, naming the field
        with pytest.raises(InvalidInput) as bad:
            content.approve(
                conn,
                tenant_id=tenant.id,
                item_id=item["id"],
                approval_code="MLR-9",
                actor="rev3",
                actor_role="compliance",
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            )
        assert (bad.value.field, bad.value.code) == ("expires_at", "past")
        ok = content.approve(
            conn,
            tenant_id=tenant.id,
            item_id=item["id"],
            approval_code="MLR-9",
            actor="rev3",
            actor_role="compliance",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
        )
        assert ok["status"] == "approved" and is_sendable(ok, audience="verified_hcp")
        with pytest.raises(InvalidInput) as bad:
            _draft(conn, tenant.id, key="Bad Key")
        assert (bad.value.field, bad.value.code) == ("key", "format")
        with pytest.raises(InvalidInput) as bad:
            _draft(conn, tenant.id, key="sub-4eyes")
        assert (bad.value.field, bad.value.code) == ("key", "taken")


def test_a_draft_is_edited_with_the_same_rules_and_audited(tenant):
    with tenant.engine.begin() as conn:
        item = _draft(conn, tenant.id, key="edit-me")
        same = content.update_item(
            conn, tenant_id=tenant.id, item_id="edit-me", actor="author1", title=item["title"]
        )
        assert same["updated_at"] == item["updated_at"]  # nothing changed: nothing written
        with pytest.raises(InvalidInput) as bad:
            content.update_item(
                conn, tenant_id=tenant.id, item_id="edit-me", actor="author1", prescription=True
            )
        assert (bad.value.field, bad.value.code) == ("product", "rx_product")
        with pytest.raises(InvalidInput) as bad:
            content.update_item(conn, tenant_id=tenant.id, item_id="edit-me", actor="author1", key="other")
        assert bad.value.field == "key"
        new_exp = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
        edited = content.update_item(
            conn,
            tenant_id=tenant.id,
            item_id="edit-me",
            actor="author1",
            title="2型糖尿病指南（修订）",
            topics=["guideline", " ", "sglt2"],
            expires_at=new_exp,
        )
        assert edited["title"] == "2型糖尿病指南（修订）" and edited["topics"] == ["guideline", "sglt2"]
        assert edited["body"] == item["body"]  # fields not given keep their values
        content.submit_for_review(conn, tenant_id=tenant.id, item_id="edit-me", actor="author1")
        with pytest.raises(TransitionError, match="only a draft is edited"):
            content.update_item(conn, tenant_id=tenant.id, item_id="edit-me", actor="author1", title="x")
        hist = content.history(conn, tenant_id=tenant.id, item_id="edit-me")
    assert [h["action"] for h in hist] == ["content.create", "content.update", "content.submit"]
    assert json_prop(hist[1]["detail"]) == {"fields": ["expires_at", "title", "topics"]}
