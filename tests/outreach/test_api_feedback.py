"""The outreach API behind tokens, and feedback flowing back to the timeline: tracked links,
view beacons, SMS delivery receipts pushed by the provider stand-in to a running server."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import sends
from medscrm.devtools.servers import free_port, start_sms_server, start_smtp_sink
from medscrm.outreach.send import SendRequest, dispatch_once, request_send
from medscrm.outreach.settings import configure_channel, reply_callback_urls, set_policy
from medscrm.profiles.events import query_events
from outreach.helpers import DAY, approved_item, grant, make_person, setup_email
from tests_support import rep_token


def _tokens(tenant, owned=()):
    """A token per role; the rep's acts as a rep user who owns the persons ``owned``."""
    with tenant.engine.begin() as conn:
        tok = {
            role: accounts.create_token(conn=conn, tenant_id=tenant.id, role=role).token
            for role in ("admin", "marketer", "compliance", "analyst")
        }
        tok["rep"] = rep_token(conn, tenant.id, owns=owned)
        return tok


def _h(tok):
    return {"Authorization": f"Bearer {tok}"}


def test_content_review_consents_and_sends_over_the_api(tenant, tmp_path):
    with tenant.engine.begin() as conn:
        pid = make_person(conn, tenant.id, email="hcp@h.example", license_no="110101199001011234")
    tok = _tokens(tenant, owned=[pid])
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as c:
        body = {
            "key": "dm-1",
            "title": "指南",
            "audience": "hcp_only",
            "therapy_area": "diabetes",
            "topics": ["guideline"],
            "body": "{{ name }}",
            "url": "https://example.org/a",
            "expires_at": "2099-01-01T00:00:00Z",
        }
        assert c.post("/api/v1/content", json=body, headers=_h(tok["analyst"])).status_code == 403
        bad = c.post(
            "/api/v1/content",
            json={**body, "audience": "patient", "prescription": True, "product": "X"},
            headers=_h(tok["marketer"]),
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "audience"
        item = c.post("/api/v1/content", json=body, headers=_h(tok["marketer"])).json()
        assert item["status"] == "draft"
        # a draft is edited field by field; the create checks apply
        path = f"/api/v1/content/{item['id']}"
        assert c.patch(path, json={"title": "新指南"}, headers=_h(tok["analyst"])).status_code == 403
        r = c.patch(path, json={"url": "ftp://x"}, headers=_h(tok["marketer"]))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
        r = c.patch(path, json={"title": "新指南"}, headers=_h(tok["marketer"]))
        assert r.status_code == 200 and r.json()["title"] == "新指南" and r.json()["url"] == body["url"]
        r = c.post(
            f"/api/v1/content/{item['id']}/approve",
            json={"approval_code": "MLR-1"},
            headers=_h(tok["compliance"]),
        )
        assert r.status_code == 409 and "while it is draft" in r.json()["errors"][0]["reason"]
        assert (
            c.post(f"/api/v1/content/{item['id']}/submit", headers=_h(tok["marketer"])).json()["status"]
            == "in_review"
        )
        r = c.post(
            f"/api/v1/content/{item['id']}/approve",
            json={"approval_code": "MLR-1"},
            headers=_h(tok["marketer"]),
        )
        assert r.status_code == 403 and "content.review" in r.json()["detail"]["reason"]
        ok = c.post(
            f"/api/v1/content/{item['id']}/approve",
            json={"approval_code": "MLR-1"},
            headers=_h(tok["compliance"]),
        )
        assert ok.status_code == 200 and ok.json()["status"] == "approved"
        assert [
            i["key"] for i in c.get("/api/v1/content?status=approved", headers=_h(tok["rep"])).json()["items"]
        ] == ["dm-1"]

        # consents
        put = c.put(
            f"/api/v1/persons/{pid}/consents",
            json={
                "channel": "email",
                "purpose": "marketing",
                "status": "granted",
                "source": "webinar_form",
                "evidence": {"form": "f1"},
            },
            headers=_h(tok["marketer"]),
        )
        assert put.status_code == 200 and put.json()["consents"][0]["status"] == "granted"
        assert (
            c.put(
                f"/api/v1/persons/{pid}/consents",
                json={"channel": "email", "purpose": "x", "status": "granted", "source": "s"},
                headers=_h(tok["marketer"]),
            ).status_code
            == 422
        )
        got = c.get(f"/api/v1/persons/{pid}/consents", headers=_h(tok["rep"])).json()
        assert got["history"][0]["source"] == "webinar_form" and got["do_not_contact"] is None

        # channels: admin only, secrets never returned
        ch = {"provider": "smtp", "settings": {"host": "127.0.0.1", "port": 1, "password": "pw-secret"}}
        assert c.put("/api/v1/channels/email", json=ch, headers=_h(tok["marketer"])).status_code == 403
        assert c.put("/api/v1/channels/email", json=ch, headers=_h(tok["admin"])).json()["secrets"] == {
            "password": "***"
        }
        assert "pw-secret" not in c.get("/api/v1/channels", headers=_h(tok["rep"])).text

        # a rep's message: guardrails apply, origin rep:…
        s1 = c.post(
            "/api/v1/sends",
            json={"person_id": pid, "channel": "email", "content_id": item["id"], "idempotency_key": "rep-1"},
            headers=_h(tok["rep"]),
        ).json()
        assert s1["status"] in ("queued",) and s1["send_id"].startswith("snd_")
        dup = c.post(
            "/api/v1/sends",
            json={"person_id": pid, "channel": "email", "content_id": item["id"], "idempotency_key": "rep-1"},
            headers=_h(tok["rep"]),
        ).json()
        assert dup["status"] == "duplicate" and dup["send_id"] == s1["send_id"]
        assert (
            c.post(
                f"/api/v1/persons/{pid}/dnc", json={"reason": "complaint"}, headers=_h(tok["rep"])
            ).status_code
            == 200
        )
        s2 = c.post(
            "/api/v1/sends",
            json={"person_id": pid, "channel": "email", "content_id": item["id"], "idempotency_key": "rep-2"},
            headers=_h(tok["rep"]),
        ).json()
        assert (s2["status"], s2["reason"]) == ("blocked", "do_not_contact")
        listing = c.get("/api/v1/sends", headers=_h(tok["analyst"])).json()
        assert listing["count"] == 2 and listing["totals"]["blocked_by_reason"] == {"do_not_contact": 1}
        assert {s["origin"] for s in listing["sends"]} == {listing["sends"][0]["origin"]} and listing[
            "sends"
        ][0]["origin"].startswith("rep:")
        # withdraw cancels the queued one
        wd = c.post(
            f"/api/v1/content/{item['id']}/withdraw", json={"reason": "label"}, headers=_h(tok["compliance"])
        ).json()
        assert wd["status"] == "withdrawn" and wd["cancelled_sends"] == 1
        # the timeline shows the refusal
        tl = c.get(f"/api/v1/persons/{pid}/timeline", headers=_h(tok["admin"])).json()
        events = tl["events"] if isinstance(tl, dict) else tl
        assert any(
            e["event"] == "Send Blocked" and e["properties"]["reason"] == "do_not_contact" for e in events
        )


def test_tracked_links_and_beacons_record_clicks_and_views(tenant, tmp_path):
    tid = tenant.id
    with start_smtp_sink(tmp_path / "mail.jsonl") as smtp:
        with tenant.engine.begin() as conn:
            setup_email(conn, tid, port=smtp.port)
            set_policy(
                conn, tenant_id=tid, changes={"tracking_base_url": "https://t.pharma.example"}, actor="a"
            )
            item = approved_item(conn, tid, therapy_area="oncology", topics=["immunotherapy", "lung"])
            pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
            grant(conn, tid, pid)
            out = request_send(
                conn,
                SendRequest(
                    tenant_id=tid,
                    person_id=pid,
                    channel="email",
                    content_id=item["id"],
                    idempotency_key="k",
                    origin="rep:x",
                ),
                now=DAY,
            )
        dispatch_once(tenant.engine, worker_id="w", tenant_id=tid, now=DAY)
        body = smtp.records()[0]["body"]
    link = next(w for w in body.split() if w.startswith("https://t.pharma.example/r/"))
    token = link.rsplit("/", 1)[1]
    from medscrm.db.schema import tracked_links

    with tenant.engine.connect() as conn:
        beacon = conn.execute(
            sa.select(tracked_links.c.token).where(
                tracked_links.c.send_id == out.send_id, tracked_links.c.kind == "beacon"
            )
        ).scalar()
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as c:
        r = c.get(f"/r/{token}", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "https://example.org/guide"
        assert c.get("/r/nope", follow_redirects=False).status_code == 404
        b = c.get(f"/b/{beacon}?dwell=42.5")
        assert b.status_code == 200 and b.headers["content-type"] == "image/gif"
        assert c.get(f"/b/{beacon}?dwell=-1").status_code == 422
    with tenant.engine.connect() as conn:
        clicked = query_events(conn, tenant_id=tid, person_id=pid, event="Content Clicked")
        viewed = query_events(conn, tenant_id=tid, person_id=pid, event="Content Viewed")
    assert len(clicked) == 1 and clicked[0]["properties"]["therapy_area"] == "oncology"
    assert (
        clicked[0]["properties"]["topic"] == "immunotherapy"
        and clicked[0]["properties"]["content_id"] == item["id"]
    )
    assert clicked[0]["properties"]["send_id"] == out.send_id
    assert len(viewed) == 1 and viewed[0]["properties"]["dwell_seconds"] == 42.5


def test_sms_delivery_receipts_pushed_by_the_provider_reach_the_timeline(tenant, tmp_path):
    tid = tenant.id
    port = free_port()
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{port}"
        with start_sms_server(
            tmp_path / "sms.jsonl",
            aliyun={"k": "s"},
            tencent={"AKID": "sk"},
            aliyun_receipt_url=f"{base}/callbacks/sms/aliyun",
            tencent_receipt_url=f"{base}/callbacks/sms/tencent",
        ) as srv:
            tpl = {"aliyun_template_code": "SMS_1", "tencent_template_id": "7", "params": ["name"]}
            with tenant.engine.begin() as conn:
                set_policy(conn, tenant_id=tid, changes={"frequency_caps": {"sms": []}}, actor="a")
                item = approved_item(conn, tid, kind="sms_template", template=tpl)
                pid = make_person(conn, tid, phone="+8613800138000", license_no="110101199001011234")
                grant(conn, tid, pid)
            ids = []
            for provider, settings in (
                ("aliyun", {"access_key_id": "k", "access_key_secret": "s", "sign_name": "医学"}),
                (
                    "tencent",
                    {"secret_id": "AKID", "secret_key": "sk", "sign_name": "医学", "sms_sdk_app_id": "1400"},
                ),
            ):
                with tenant.engine.begin() as conn:
                    configure_channel(
                        conn,
                        tenant_id=tid,
                        channel="sms",
                        provider=provider,
                        actor="a",
                        settings={"base_url": srv.base_url + "/", **settings},
                    )
                    out = request_send(
                        conn,
                        SendRequest(
                            tenant_id=tid,
                            person_id=pid,
                            channel="sms",
                            content_id=item["id"],
                            idempotency_key=provider,
                            origin="rep:x",
                        ),
                        now=DAY,
                    )
                dispatch_once(tenant.engine, worker_id="w", tenant_id=tid, now=DAY)
                ids.append(out.send_id)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with tenant.engine.connect() as conn:
                    st = dict(
                        conn.execute(sa.select(sends.c.id, sends.c.status).where(sends.c.id.in_(ids))).all()
                    )
                if set(st.values()) == {"delivered"}:
                    break
                time.sleep(0.1)
    finally:
        server.should_exit = True
        th.join(10)
    assert st == {i: "delivered" for i in ids}
    with tenant.engine.connect() as conn:
        delivered = query_events(conn, tenant_id=tid, person_id=pid, event="Message Delivered")
    assert sorted(e["properties"]["send_id"] for e in delivered) == sorted(ids)
    assert {e["properties"]["code"] for e in delivered} == {"DELIVERED", "DELIVRD"}


def test_sms_replies_are_on_the_timeline_and_td_opts_out(tenant, tmp_path):
    from medscrm.outreach import consent

    tid = tenant.id
    with tenant.engine.begin() as conn:
        a = make_person(conn, tid, phone="+8613800138000")
        b = make_person(conn, tid, phone="+8613900139000")
        for p in (a, b):
            grant(conn, tid, p, channel="sms")
    urls = reply_callback_urls(tid, "http://testserver")
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as c:
        r = c.post(
            urls["aliyun"],
            json=[
                {
                    "phone_number": "13800138000",
                    "send_time": "2026-11-24 10:00:00",
                    "content": "TD",
                    "sign_name": "医学",
                    "sequence_id": 1234,
                }
            ],
        )
        assert r.json() == {"code": 0, "msg": "成功"}
        c.post(
            urls["aliyun"],
            json=[{"phone_number": "13800138000", "content": "TD", "sequence_id": 1234}],
        )  # repeat
        r = c.post(
            urls["tencent"],
            json=[{"mobile": "13900139000", "nationcode": "86", "text": "谢谢，已收到", "time": 1763949600}],
        )
        assert r.json() == {"result": 0, "errmsg": "OK"}
        assert (
            c.post(
                urls["tencent"].replace(tid, "tn_nope"), json=[{"mobile": "13900139000", "text": "TD"}]
            ).status_code
            == 403
        )
    with tenant.engine.connect() as conn:
        assert not consent.has_consent(conn, tenant_id=tid, person_id=a, channel="sms", purpose="marketing")
        assert consent.has_consent(conn, tenant_id=tid, person_id=b, channel="sms", purpose="marketing")
        hist = consent.consent_log(conn, tenant_id=tid, person_id=a)
        ra = query_events(conn, tenant_id=tid, person_id=a, event="Message Replied")
        rb = query_events(conn, tenant_id=tid, person_id=b, event="Message Replied")
    assert hist[0]["new_status"] == "withdrawn" and hist[0]["source"] == "sms_reply_aliyun" and len(hist) == 2
    assert len(ra) == 1 and ra[0]["properties"]["opt_out"] is True
    assert (
        len(rb) == 1
        and rb[0]["properties"]["text"] == "谢谢，已收到"
        and rb[0]["properties"]["opt_out"] is False
    )
