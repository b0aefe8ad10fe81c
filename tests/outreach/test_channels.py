"""Channels against real local servers: SMTP (aiosmtpd process), the SMS/WeCom/WeChat stand-in
(checks Alibaba/Tencent signatures and the access_token flow), and a signed-webhook receiver."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from medscrm.config import get_settings
from medscrm.db.schema import sends
from medscrm.devtools.servers import start_sms_server, start_smtp_sink
from medscrm.outreach.channels import OutMessage
from medscrm.outreach.channels.sms import aliyun_signature, tc3_authorization
from medscrm.outreach.channels.webhook import verify
from medscrm.outreach.channels.wechat import WeChatTemplateChannel
from medscrm.outreach.send import SendRequest, dispatch_once, request_send
from medscrm.outreach.settings import configure_channel
from medscrm.profiles.events import query_events
from outreach.helpers import DAY, approved_item, fast_policy, grant, make_person, setup_email

SMS_TEMPLATE = {
    "aliyun_template_code": "SMS_71390007",
    "tencent_template_id": "1110",
    "params": ["name", "url"],
}


def test_signatures_match_the_providers_documented_examples():
    # Alibaba Cloud SMS "HTTP 协议及签名" example
    params = {
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "AccessKeyId": "testId",
        "SignatureVersion": "1.0",
        "Timestamp": "2017-07-12T02:42:19Z",
        "Format": "XML",
        "Action": "SendSms",
        "Version": "2017-05-25",
        "RegionId": "cn-hangzhou",
        "PhoneNumbers": "15300000001",
        "SignName": "阿里云短信测试专用",
        "TemplateParam": '{"customer":"test"}',
        "TemplateCode": "SMS_71390007",
        "OutId": "123",
    }
    assert aliyun_signature(params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # Tencent Cloud API 3.0 signature v3 example (CVM DescribeInstances)
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    auth = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        payload=payload,
        timestamp=1551113065,
    )
    assert auth.endswith("Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    assert "Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request" in auth


def _drain(engine, tid, start=DAY, rounds=8, step=5):
    """Dispatch repeatedly, moving the clock past each backoff."""
    now = start
    for _ in range(rounds):
        dispatch_once(engine, worker_id="w-test", tenant_id=tid, now=now)
        now += dt.timedelta(seconds=step)


def _one(engine, tid, send_id):
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(sends).where(sends.c.tenant_id == tid, sends.c.id == send_id))
            .mappings()
            .one()
        )


def _queue(engine, tid, channel, pid, item, key="k1", **kw):
    with engine.begin() as conn:
        out = request_send(
            conn,
            SendRequest(
                tenant_id=tid,
                person_id=pid,
                channel=channel,
                content_id=item["id"],
                idempotency_key=key,
                origin="rep:zhang",
                **kw,
            ),
            now=DAY,
        )
    assert out.status == "queued", out
    return out.send_id


def test_email_over_a_real_smtp_server_with_auth(tenant, tmp_path):
    tid = tenant.id
    with start_smtp_sink(tmp_path / "mail.jsonl", auth="mailer:pw-123") as smtp:
        with tenant.engine.begin() as conn:
            setup_email(conn, tid, port=smtp.port, username="mailer", password="pw-123")
            fast_policy(conn, tid)
            item = approved_item(conn, tid, subject="{{ name }}，糖尿病指南更新", topics=["guideline"])
            pid = make_person(conn, tid, name="王芳", email="wang@h.example", license_no="110101199001011234")
            grant(conn, tid, pid)
        sid = _queue(tenant.engine, tid, "email", pid, item)
        assert dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY) == 1
        recs = smtp.records()
    row = _one(tenant.engine, tid, sid)
    assert (
        row["status"] == "sent" and row["attempts"] == 1 and row["provider_message_id"] == f"<{sid}@medscrm>"
    )
    assert (
        len(recs) == 1
        and recs[0]["message_id"] == f"<{sid}@medscrm>"
        and recs[0]["rcpt_tos"] == ["wang@h.example"]
    )
    assert recs[0]["subject"] == "王芳，糖尿病指南更新"
    assert "/r/" in recs[0]["body"]  # the content's link is tracked
    with tenant.engine.connect() as conn:
        sent = query_events(conn, tenant_id=tid, person_id=pid, event="Message Sent")
    assert sent[0]["properties"]["send_id"] == sid and sent[0]["properties"]["therapy_area"] == "diabetes"
    assert sent[0]["properties"]["topic"] == "guideline"


def test_wrong_smtp_password_is_retried_then_failed_with_the_servers_error(tenant, tmp_path):
    tid = tenant.id
    with start_smtp_sink(tmp_path / "mail.jsonl", auth="mailer:right") as smtp:
        with tenant.engine.begin() as conn:
            setup_email(conn, tid, port=smtp.port, username="mailer", password="wrong")
            fast_policy(conn, tid, max_attempts=3)
            item = approved_item(conn, tid)
            pid = make_person(conn, tid, email="wang@h.example", license_no="110101199001011234")
            grant(conn, tid, pid)
        sid = _queue(tenant.engine, tid, "email", pid, item)
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        first = _one(tenant.engine, tid, sid)
        assert first["status"] == "queued" and first["attempts"] == 1 and "535" in first["error"]
        nb = first["not_before"]
        assert (nb if nb.tzinfo else nb.replace(tzinfo=dt.UTC)) > DAY  # backoff, not an immediate retry
        _drain(tenant.engine, tid)
        assert smtp.records() == []
    row = _one(tenant.engine, tid, sid)
    assert row["status"] == "failed" and row["attempts"] == 3 and "535" in row["error"]
    with tenant.engine.connect() as conn:
        failed = query_events(conn, tenant_id=tid, person_id=pid, event="Message Failed")
    assert len(failed) == 1 and "535" in failed[0]["properties"]["error"]


def test_a_refused_recipient_fails_at_once(tenant, tmp_path):
    tid = tenant.id
    with start_smtp_sink(tmp_path / "mail.jsonl", reject_rcpt=["gone.example"]) as smtp:
        with tenant.engine.begin() as conn:
            setup_email(conn, tid, port=smtp.port)
            item = approved_item(conn, tid)
            pid = make_person(conn, tid, email="x@gone.example", license_no="110101199001011234")
            grant(conn, tid, pid)
        sid = _queue(tenant.engine, tid, "email", pid, item)
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
    row = _one(tenant.engine, tid, sid)
    assert row["status"] == "failed" and row["attempts"] == 1 and "550" in row["error"]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_sms_signed_requests_are_accepted_and_a_bad_secret_is_refused(tenant, tmp_path, provider):
    tid = tenant.id
    keys = {
        "aliyun": ("LTAI5tKeyId", "access_key_id", "access_key_secret"),
        "tencent": ("AKIDtest", "secret_id", "secret_key"),
    }
    kid, id_field, secret_field = keys[provider]
    with start_sms_server(tmp_path / "sms.jsonl", **{provider: {kid: "the-right-secret"}}) as srv:
        with tenant.engine.begin() as conn:
            fast_policy(conn, tid, max_attempts=3, frequency_caps={"sms": []})
            configure_channel(
                conn,
                tenant_id=tid,
                channel="sms",
                provider=provider,
                actor="admin",
                settings={
                    "base_url": srv.base_url + "/",
                    id_field: kid,
                    secret_field: "the-right-secret",
                    "sign_name": "医学信息",
                    "sms_sdk_app_id": "1400000001",
                },
            )
            item = approved_item(conn, tid, kind="sms_template", template=SMS_TEMPLATE)
            pid = make_person(conn, tid, name="李娜", phone="+8613800138000", license_no="110101199001011234")
            grant(conn, tid, pid)
        good = _queue(tenant.engine, tid, "sms", pid, item, key="good")
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        row = _one(tenant.engine, tid, good)
        assert row["status"] == "sent", row["error"]
        recs = srv.records()
        assert len(recs) == 1 and recs[0]["provider"] == provider
        rec = recs[0]
        if provider == "aliyun":
            assert (
                rec["phone"] == "13800138000"
                and rec["out_id"] == good
                and rec["biz_id"] == row["provider_message_id"]
            )
            assert rec["params"]["name"] == "李娜" and "/r/" in rec["params"]["url"]
        else:
            assert rec["phone"] == "+8613800138000" and rec["session_context"] == good
            assert rec["serial_no"] == row["provider_message_id"] and rec["params"][0] == "李娜"
        # now a wrong secret: refused by the server, retried with backoff, then failed with its error
        with tenant.engine.begin() as conn:
            configure_channel(
                conn,
                tenant_id=tid,
                channel="sms",
                provider=provider,
                actor="admin",
                settings={secret_field: "stolen-or-stale"},
            )
        bad = _queue(tenant.engine, tid, "sms", pid, item, key="bad")
        _drain(tenant.engine, tid)
        assert len(srv.records()) == 1  # nothing more was accepted
    row = _one(tenant.engine, tid, bad)
    expected = "SignatureDoesNotMatch" if provider == "aliyun" else "AuthFailure.SignatureFailure"
    assert row["status"] == "failed" and row["attempts"] == 3 and expected in row["error"]
    assert "stolen-or-stale" not in row["error"]


def test_a_transient_provider_error_is_retried(tenant, tmp_path):
    tid = tenant.id
    with start_sms_server(tmp_path / "sms.jsonl", aliyun={"k": "s"}, fail_first=1) as srv:
        with tenant.engine.begin() as conn:
            fast_policy(conn, tid)
            configure_channel(
                conn,
                tenant_id=tid,
                channel="sms",
                provider="aliyun",
                actor="admin",
                settings={
                    "base_url": srv.base_url + "/",
                    "access_key_id": "k",
                    "access_key_secret": "s",
                    "sign_name": "医学信息",
                },
            )
            item = approved_item(conn, tid, kind="sms_template", template=SMS_TEMPLATE)
            pid = make_person(conn, tid, phone="+8613800138001", license_no="110101199001011234")
            grant(conn, tid, pid)
        sid = _queue(tenant.engine, tid, "sms", pid, item)
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        first = _one(tenant.engine, tid, sid)
        assert first["status"] == "queued" and "ServiceUnavailable" in first["error"]
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)  # backoff not over: nothing due
        assert _one(tenant.engine, tid, sid)["attempts"] == 1
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY + dt.timedelta(seconds=5))
        assert len(srv.records()) == 1
    row = _one(tenant.engine, tid, sid)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["error"] is None


def test_wecom_via_the_reps_account_with_the_access_token_flow(tenant, tmp_path):
    tid = tenant.id
    with start_sms_server(tmp_path / "wx.jsonl", wecom={"wwcorp1": "corp-secret"}, token_ttl=1) as srv:
        with tenant.engine.begin() as conn:
            fast_policy(conn, tid, max_attempts=2)
            configure_channel(
                conn,
                tenant_id=tid,
                channel="wecom",
                provider="wecom",
                actor="admin",
                settings={"base_url": srv.base_url, "corp_id": "wwcorp1", "corp_secret": "corp-secret"},
            )
            item = approved_item(conn, tid, kind="wecom_template")
            pid = make_person(
                conn,
                tid,
                wecom_external_userid="wmEXT001",
                rep_userid="zhangsan",
                license_no="110101199001011234",
            )
            orphan = make_person(conn, tid, wecom_external_userid="wmEXT002", license_no="110101199001011235")
            grant(conn, tid, pid)
            grant(conn, tid, orphan)
            blocked = request_send(
                conn,
                SendRequest(
                    tenant_id=tid,
                    person_id=orphan,
                    channel="wecom",
                    content_id=item["id"],
                    idempotency_key="o",
                    origin="journey:j:s",
                ),
                now=DAY,
            )
        assert (blocked.status, blocked.reason) == ("blocked", "no_address")
        first = _queue(tenant.engine, tid, "wecom", pid, item, key="w1")
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        time.sleep(1.3)  # the server's token expires; the client is told 42001 and fetches a new one
        second = _queue(tenant.engine, tid, "wecom", pid, item, key="w2")
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        recs = srv.records()
        with tenant.engine.begin() as conn:
            configure_channel(
                conn,
                tenant_id=tid,
                channel="wecom",
                provider="wecom",
                actor="admin",
                settings={"corp_id": "wwcorp-other"},
            )
        third = _queue(tenant.engine, tid, "wecom", pid, item, key="w3")
        _drain(tenant.engine, tid)
    assert _one(tenant.engine, tid, first)["status"] == "sent"
    assert _one(tenant.engine, tid, second)["status"] == "sent"
    assert [r["sender"] for r in recs] == ["zhangsan", "zhangsan"] and recs[0]["external_userid"] == [
        "wmEXT001"
    ]
    assert recs[0]["attachments"][0]["link"]["url"].startswith(get_settings().public_base_url + "/r/")
    row = _one(tenant.engine, tid, third)
    assert row["status"] == "failed" and "40013" in row["error"]


def test_wechat_template_messages_are_deduplicated_by_client_msg_id(tenant, tmp_path):
    tid = tenant.id
    with start_sms_server(tmp_path / "wx.jsonl", wechat={"wxapp1": "app-secret"}) as srv:
        with tenant.engine.begin() as conn:
            configure_channel(
                conn,
                tenant_id=tid,
                channel="wechat_template",
                provider="wechat",
                actor="admin",
                settings={"base_url": srv.base_url, "app_id": "wxapp1", "app_secret": "app-secret"},
            )
            item = approved_item(
                conn,
                tid,
                kind="wechat_template",
                template={"wechat_template_id": "TPL-1", "fields": {"first": "title", "keyword1": "name"}},
            )
            pid = make_person(conn, tid, wechat_openid="oOPENID1", license_no="110101199001011234")
            grant(conn, tid, pid)
        sid = _queue(tenant.engine, tid, "wechat_template", pid, item)
        dispatch_once(tenant.engine, worker_id="w1", tenant_id=tid, now=DAY)
        cfg = {"base_url": srv.base_url, "app_id": "wxapp1", "app_secret": "app-secret"}
        # the same send handed over again (a dispatcher died after the hand-off): WeChat keeps one
        msg = OutMessage(
            send_id=sid,
            tenant_id=tid,
            person_id=pid,
            channel="wechat_template",
            to="oOPENID1",
            template={"wechat_template_id": "TPL-1"},
            params={"title": "x"},
        )
        WeChatTemplateChannel().send(msg, cfg)
        recs = srv.records()
    assert _one(tenant.engine, tid, sid)["status"] == "sent"
    assert len(recs) == 1 and recs[0]["client_msg_id"] == sid and recs[0]["touser"] == "oOPENID1"
    assert recs[0]["data"]["first"]["value"] == item["title"]


class _Receiver(BaseHTTPRequestHandler):
    got: list = []
    fail_first = 1

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(
            "hook-secret", self.headers["X-Medscrm-Timestamp"], body, self.headers["X-Medscrm-Signature"]
        )
        if not ok:
            self.send_response(401)
        elif _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
        else:
            _Receiver.got.append((self.headers["Idempotency-Key"], json.loads(body)))
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_signed_webhooks_are_verified_by_the_receiver_and_retried(tenant):
    tid = tenant.id
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.got, _Receiver.fail_first = [], 1
    try:
        with tenant.engine.begin() as conn:
            fast_policy(conn, tid)
            configure_channel(
                conn,
                tenant_id=tid,
                channel="webhook",
                provider="hmac",
                actor="admin",
                settings={"url": f"http://127.0.0.1:{server.server_port}/hook", "secret": "hook-secret"},
            )
            pid = make_person(conn, tid, email="x@h.example")
            out = request_send(
                conn,
                SendRequest(
                    tenant_id=tid,
                    person_id=pid,
                    channel="webhook",
                    idempotency_key="h1",
                    origin="journey:j:s9",
                    variables={"stage": "high_intent"},
                ),
                now=DAY,
            )
        assert out.status == "queued"  # webhooks carry ids only: no consent needed
        _drain(tenant.engine, tid, rounds=3)
        with tenant.engine.begin() as conn:
            configure_channel(
                conn,
                tenant_id=tid,
                channel="webhook",
                provider="hmac",
                actor="admin",
                settings={"secret": "wrong"},
            )
            bad = request_send(
                conn,
                SendRequest(
                    tenant_id=tid,
                    person_id=pid,
                    channel="webhook",
                    idempotency_key="h2",
                    origin="journey:j:s9",
                ),
                now=DAY,
            )
        _drain(tenant.engine, tid, rounds=3)
    finally:
        server.shutdown()
    row = _one(tenant.engine, tid, out.send_id)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert _Receiver.got == [(out.send_id, _Receiver.got[0][1])]
    payload = _Receiver.got[0][1]
    assert (
        payload["person_id"] == pid
        and payload["variables"] == {"stage": "high_intent"}
        and "email" not in json.dumps(payload)
    )
    bad_row = _one(tenant.engine, tid, bad.send_id)
    assert bad_row["status"] == "failed" and "HTTP 401" in bad_row["error"] and bad_row["attempts"] == 1
