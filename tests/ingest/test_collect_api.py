"""The Segment-spec collection API and the WeCom/WeChat callbacks, through HTTP, on both engines."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import audit_log, events, identity_links, quarantine, source_records
from medscrm.ingest.protocol.tencent_crypto import TencentCrypto, plain_signature

TOKEN, AES_KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"


@pytest.fixture
def api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="app", kind="segment")
        tok = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin")
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app) as client:
        client.write_key = src.write_key
        client.auth_headers = {"Authorization": f"Bearer {tok.token}"}
        client.tenant = tenant
        client.flush = lambda: app.state.ingestor.flush_pending()
        client.app_ = app
        yield client


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def stored(client, table=events, **where) -> list[dict]:
    client.flush()
    with client.tenant.engine.connect() as c:
        q = sa.select(table).where(table.c.tenant_id == client.tenant.id)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return [dict(r) for r in c.execute(q).mappings()]


def test_every_call_type_is_stored_once(api):
    h = basic(api.write_key)
    calls = {
        "track": {
            "userId": "u1",
            "event": "Webinar Attended",
            "properties": {"topic": "心衰"},
            "messageId": "m1",
        },
        "identify": {
            "userId": "u1",
            "traits": {"name": "张伟", "phone": "138 0013 8000", "hospital": "协和医院"},
            "messageId": "m2",
        },
        "page": {
            "anonymousId": "a1",
            "name": "Article",
            "properties": {"url": "https://x/a"},
            "messageId": "m3",
        },
        "screen": {"userId": "u1", "name": "Home", "messageId": "m4"},
        "group": {"userId": "u1", "groupId": "h-pumch", "traits": {"name": "协和"}, "messageId": "m5"},
        "alias": {"userId": "u1", "previousId": "a1", "messageId": "m6"},
    }
    for kind, body in calls.items():
        r = api.post(f"/v1/{kind}", json=body, headers=h)
        assert r.status_code == 200 and r.json() == {"success": True}, (kind, r.text)
    # a retry of the same messages stores nothing new
    for kind, body in calls.items():
        assert api.post(f"/v1/{kind}", json=body, headers=h).status_code == 200
    rows = stored(api)
    assert sorted(r["message_id"] for r in rows) == ["m1", "m2", "m3", "m4", "m5", "m6"]
    by = {r["message_id"]: r for r in rows}
    assert by["m1"]["event"] == "Webinar Attended" and by["m1"]["properties"] == {"topic": "心衰"}
    assert by["m3"]["name"] == "Article" and by["m5"]["group_id"] == "h-pumch"
    (rec,) = stored(api, source_records)
    assert rec["record_key"] == "u1" and rec["phone"] == "+8613800138000" and rec["name"] == "张伟"
    links = stored(api, identity_links, relation="alias")
    assert [(x["value_a"], x["value_b"]) for x in links] == [("u1", "a1")]


def test_batch_gzip_clock_skew_and_key_in_body(api):
    batch = {
        "batch": [
            {
                "type": "track",
                "userId": "u2",
                "event": "Article Viewed",
                "messageId": "b1",
                "timestamp": "2026-01-01T10:00:00Z",
            },
            {
                "type": "track",
                "userId": "u2",
                "event": "Article Viewed",
                "messageId": "b2",
                "timestamp": "2026-01-01T10:00:00Z",
                "anonymousId": None,
                "integrations": {},
            },
        ],
        "sentAt": "2026-01-01T10:05:00Z",  # the client clock says 5 min after the events
        "writeKey": api.write_key,
    }
    r = api.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(batch).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    rows = stored(api)
    assert len(rows) == 2
    for row in rows:  # corrected: receivedAt - 5 minutes, whatever the client clock said
        skew = row["received_at"] - row["timestamp"]
        assert 299 <= skew.total_seconds() <= 301


def test_bad_events_get_4xx_naming_the_field_and_are_quarantined(api):
    h = basic(api.write_key)
    r = api.post("/v1/track", json={"userId": "u1", "messageId": "x1"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "event"
    r = api.post("/v1/track", json={"event": "E", "messageId": "x2"}, headers=h)
    assert r.status_code == 400 and "userId" in r.json()["field"] + r.json()["reason"]
    r = api.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "userId": "u", "event": "ok", "messageId": "g1"},
                {"type": "bogus", "userId": "u", "messageId": "g2"},
            ]
        },
        headers=h,
    )
    body = r.json()
    assert r.status_code == 400 and body["accepted"] == 1 and body["errors"][0]["index"] == 1
    assert "type" in body["errors"][0]["field"]
    big = {"userId": "u", "event": "E", "properties": {"blob": "x" * 40_000}}
    r = api.post("/v1/track", json=big, headers=h)
    assert r.status_code == 400 and r.json()["error"] == "too_large"
    assert (
        api.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic("wk_nope")).status_code == 401
    )
    assert api.post("/v1/track", json={"userId": "u", "event": "E"}).status_code == 401
    assert [r["message_id"] for r in stored(api)] == ["g1"]
    q = stored(api, quarantine)
    assert {x["field"] for x in q} >= {"event"} and all(x["kind"] == "event" for x in q)
    assert any(x["payload"].get("messageId") == "x1" for x in q)


def test_rate_limit_per_source(api):
    with api.tenant.engine.begin() as c:
        accounts.configure_source(conn=c, tenant_id=api.tenant.id, name="app", changes={"rate_limit": 5})
    api.app_.state.sources.ttl = 0
    h = basic(api.write_key)
    batch = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"r{i}"} for i in range(10)]
    }
    assert api.post("/v1/batch", json=batch, headers=h).status_code == 200  # burst = 2 × rate
    r = api.post("/v1/batch", json=batch, headers=h)
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_events_read_back_newest_first_behind_a_token(api):
    h = basic(api.write_key)
    for i in range(5):
        api.post(
            "/v1/track",
            json={
                "userId": "u9",
                "event": f"E{i}",
                "messageId": f"e{i}",
                "timestamp": f"2026-03-0{i + 1}T00:00:00Z",
            },
            headers=h,
        )
    api.flush()
    assert api.get("/api/v1/events").status_code == 401
    r = api.get("/api/v1/events", params={"user_id": "u9", "limit": 3}, headers=api.auth_headers).json()
    assert [e["event"] for e in r["events"]] == ["E4", "E3", "E2"] and r["next_before"]
    r2 = api.get(
        "/api/v1/events", params={"user_id": "u9", "before": r["next_before"]}, headers=api.auth_headers
    ).json()
    assert [e["event"] for e in r2["events"]] == ["E1", "E0"]


def _wecom_source(api, name="wecom", kind="wecom", **cfg):
    with api.tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=api.tenant.id, name=name, kind=kind)
        accounts.configure_source(
            conn=c,
            tenant_id=api.tenant.id,
            name=name,
            changes={
                "token": TOKEN,
                "encoding_aes_key": AES_KEY,
                "receive_id": CORP,
                "max_age_seconds": 0,
                **cfg,
            },
        )
    return src.id


def test_wecom_url_verification_with_tencent_vectors(api):
    sid = _wecom_source(api)
    r = api.get(
        f"/callbacks/wecom/{sid}",
        params={
            "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "timestamp": "1409659589",
            "nonce": "263014780",
            "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
        },
    )
    assert r.status_code == 200 and r.text == "1616140317555161061"
    bad = api.get(
        f"/callbacks/wecom/{sid}",
        params={"msg_signature": "0" * 40, "timestamp": "1409659589", "nonce": "263014780", "echostr": "abc"},
    )
    assert bad.status_code == 403
    refused = stored(api, audit_log, action="callback.refused")
    assert len(refused) == 1 and "verification" in refused[0]["detail"]["reason"]


def test_wecom_external_contact_event_becomes_event_and_identity_link(api):
    sid = _wecom_source(api)
    xml = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]>"
        "</ChangeType><UserID><![CDATA[rep_zhang]]></UserID><ExternalUserID><![CDATA[wmEXT001]]>"
        "</ExternalUserID><State><![CDATA[webinar-2026-03]]></State><WelcomeCode><![CDATA[W1]]></WelcomeCode>"
        "</xml>"
    )
    crypto = TencentCrypto(TOKEN, AES_KEY, CORP)
    enc, sig = crypto.encrypt(xml, nonce="n1", timestamp="1700000001")
    envelope = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    params = {"msg_signature": sig, "timestamp": "1700000001", "nonce": "n1"}
    for _ in range(2):  # Tencent retries: stored once
        r = api.post(f"/callbacks/wecom/{sid}", params=params, content=envelope)
        assert r.status_code == 200 and r.text == "success"
    (ev,) = stored(api)
    assert ev["event"] == "WeCom External Contact Added" and ev["properties"]["state"] == "webinar-2026-03"
    (link,) = stored(api, identity_links)
    assert (link["value_a"], link["value_b"], link["relation"]) == (
        "wmEXT001",
        "rep_zhang",
        "wecom_contact_of",
    )
    tampered = api.post(
        f"/callbacks/wecom/{sid}", params={**params, "msg_signature": "f" * 40}, content=envelope
    )
    assert tampered.status_code == 403


def test_wecom_stale_timestamp_is_refused(api):
    sid = _wecom_source(api, max_age_seconds=300)
    crypto = TencentCrypto(TOKEN, AES_KEY, CORP)
    enc, sig = crypto.encrypt("<xml><MsgType>event</MsgType></xml>", nonce="n", timestamp="1409659813")
    r = api.post(
        f"/callbacks/wecom/{sid}",
        params={"msg_signature": sig, "timestamp": "1409659813", "nonce": "n"},
        content=f"<xml><Encrypt>{enc}</Encrypt></xml>",
    )
    assert r.status_code == 403 and "stale" in r.text


def test_wechat_plain_and_safe_mode(api):
    sid = _wecom_source(api, name="oa", kind="wechat")
    ts, nonce = "1700000000", "abc"
    sig = plain_signature(TOKEN, ts, nonce)
    r = api.get(
        f"/callbacks/wechat/{sid}",
        params={"signature": sig, "timestamp": ts, "nonce": nonce, "echostr": "hello"},
    )
    assert r.text == "hello"
    xml = (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oOPENID1]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]>"
        "</Event><EventKey><![CDATA[qrscene_1001]]></EventKey></xml>"
    )
    r = api.post(
        f"/callbacks/wechat/{sid}", params={"signature": sig, "timestamp": ts, "nonce": nonce}, content=xml
    )
    assert r.status_code == 200
    crypto = TencentCrypto(TOKEN, AES_KEY, CORP)
    scan = (
        xml.replace("subscribe", "SCAN").replace("qrscene_1001", "2002").replace("1700000000", "1700000100")
    )
    enc, msig = crypto.encrypt(scan, nonce=nonce, timestamp=ts)
    r = api.post(
        f"/callbacks/wechat/{sid}",
        params={
            "signature": sig,
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": msig,
        },
        content=f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>",
    )
    assert r.status_code == 200, r.text
    rows = sorted(stored(api), key=lambda e: e["timestamp"])
    assert [e["event"] for e in rows] == ["WeChat Subscribed", "WeChat QR Scanned"]
    assert [e["properties"]["scene"] for e in rows] == ["1001", "2002"]
    assert all(e["user_id"] == "oOPENID1" for e in rows)
    bad = api.post(
        f"/callbacks/wechat/{sid}",
        params={"signature": "0" * 40, "timestamp": ts, "nonce": nonce},
        content=xml,
    )
    assert bad.status_code == 403


def test_events_of_known_people_are_tagged_with_the_person(api):
    from medscrm.persons.service import apply_clusters, load_records

    h = basic(api.write_key)
    api.post(
        "/v1/identify",
        json={"userId": "doc-1", "traits": {"name": "王芳", "phone": "13700137000"}, "messageId": "i1"},
        headers=h,
    )
    api.flush()
    with api.tenant.engine.begin() as c:
        recs = load_records(c, api.tenant.id)
        apply_clusters(c, tenant_id=api.tenant.id, clusters={"k": [r["id"] for r in recs]}, records=recs)
    api.post("/v1/track", json={"userId": "doc-1", "event": "Article Viewed", "messageId": "t1"}, headers=h)
    (ev,) = stored(api, events, message_id="t1")
    assert ev["person_id"] and ev["person_id"].startswith("per_")
    r = api.get("/api/v1/events", params={"person_id": ev["person_id"]}, headers=api.auth_headers).json()
    assert {e["message_id"] for e in r["events"]} == {"i1", "t1"}  # i1 matched through the user id


def test_back_pressure_when_the_spool_backlog_is_too_big(api):
    h = basic(api.write_key)
    api.app_.state.max_backlog = 0  # any unstored byte counts as too much
    ingestor = api.app_.state.ingestor
    ingestor._stop.set()  # the flusher stops storing: a slow database
    ingestor._thread.join(timeout=10)
    assert (
        api.post("/v1/track", json={"userId": "u", "event": "E", "messageId": "bp1"}, headers=h).status_code
        == 200
    )
    ingestor._backlog_at = 0.0
    r = api.post("/v1/track", json={"userId": "u", "event": "E", "messageId": "bp2"}, headers=h)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert [e["message_id"] for e in stored(api)] == [
        "bp1"
    ]  # the acknowledged one is stored once it catches up


def test_identifiers_longer_than_the_columns_are_refused_not_stored(api):
    """A 201-character userId would fail the PostgreSQL column at flush time and stall the
    flusher: it is refused at the door instead, naming the field, and quarantined."""
    h = basic(api.write_key)
    r = api.post("/v1/track", json={"userId": "u" * 201, "event": "E", "messageId": "long1"}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "userId" and r.json()["error"] == "too_long"
    r = api.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "userId": "u", "event": "E", "messageId": "m" * 300},
                {"type": "track", "userId": "u", "event": "E", "messageId": "ok1"},
            ]
        },
        headers=h,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "batch[0].messageId"
    assert [e["message_id"] for e in stored(api)] == ["ok1"]
    assert {q["field"] for q in stored(api, quarantine)} == {"userId", "batch[0].messageId"}


def test_streamed_bodies_are_limited_and_joined(api):
    """Bodies sent in pieces (chunked, no Content-Length) are joined, and cut off at the limit."""
    h = basic(api.write_key)
    r = api.post("/v1/track", content=iter([b" " * 1000] * 40), headers=h)  # 40 KB > 32 KB
    assert r.status_code == 400 and r.json()["error"] == "too_large" and r.json()["field"] == "body"
    body = json.dumps({"userId": "u", "event": "E", "messageId": "s1"}).encode()
    r = api.post("/v1/track", content=iter([body[:7], body[7:20], body[20:]]), headers=h)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert [e["message_id"] for e in stored(api)] == ["s1"]
    assert api.post("/v1/nope", json={}, headers=h).json()["error"] == "unknown_call"
