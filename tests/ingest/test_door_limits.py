"""What the door refuses before anything is spooled: numbers no database stores exactly, NaN and
Infinity, invalid UTF-8, nesting deeper than 64 levels, lone surrogates — a 400 naming the field,
never a 5xx, on both engines; and over a real server process, the kept-alive connection stays
usable after such a 400."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_server_process import Server, run_cli, wait_events

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import events, quarantine


@pytest.fixture
def api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="app", kind="segment")
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(
            {
                "Authorization": "Basic " + base64.b64encode(f"{src.write_key}:".encode()).decode(),
                "Content-Type": "application/json",
            }
        )
        client.tenant = tenant
        client.ingestor = app.state.ingestor
        yield client


def rows(api, table) -> list[dict]:
    api.ingestor.flush_pending()
    with api.tenant.engine.connect() as c:
        return [
            dict(r) for r in c.execute(sa.select(table).where(table.c.tenant_id == api.tenant.id)).mappings()
        ]


def track(props: bytes, mid: str = "m") -> bytes:
    return b'{"userId":"u","event":"E","messageId":"' + mid.encode() + b'","properties":{"n":' + props + b"}}"


REFUSED_NUMBERS = [
    (b"1e400", "is 1e400, which is not a finite number"),
    (b"-1E999", "is -1E999, which is not a finite number"),
    (b"NaN", "is NaN, which is not a JSON number"),
    (b"Infinity", "is Infinity, which is not a JSON number"),
    (b"-Infinity", "is -Infinity, which is not a JSON number"),
    (b"9223372036854775808", "integers must lie between -9223372036854775808 and 9223372036854775807"),
    (b"-9223372036854775809", "integers must lie between"),
    (b"123456789012345678901234567890", "integers must lie between"),
    (b"1" + b"0" * 5000, "integers must lie between"),  # beyond Python's int-from-text limit too
    (b"1e300", "numbers must lie between -2^63 and 2^63"),
    (b'[1, 2, {"x": 9.3e18}]', "numbers must lie between"),
]


def test_track_refuses_numbers_no_database_stores_naming_the_field(api):
    for i, (number, reason) in enumerate(REFUSED_NUMBERS):
        r = api.post("/v1/track", content=track(number, f"n{i}"))
        body = r.json()
        assert r.status_code == 400 and body["error"] == "invalid_number", (number[:30], body)
        assert body["field"].startswith("properties.n") and reason in body["reason"], body
        if number.startswith(b"["):
            assert body["field"] == "properties.n[2].x"
    # each request is kept in the quarantine, its bad value as text; nothing is stored
    q = {x["payload"]["messageId"]: x for x in rows(api, quarantine)}
    assert len(q) == len(REFUSED_NUMBERS) and {x["code"] for x in q.values()} == {"invalid_number"}
    assert q["n0"]["field"] == "properties.n" and q["n0"]["payload"]["properties"] == {"n": "1e400"}
    assert rows(api, events) == []


def test_batch_names_the_item_and_the_path(api):
    batch = (
        b'{"batch":[{"type":"track","userId":"u","event":"E","messageId":"b0"},'
        b'{"type":"track","userId":"u","event":"E","messageId":"b1"},'
        b'{"type":"track","userId":"u","event":"E","messageId":"b2","properties":{"n":1e400}}]}'
    )
    r = api.post("/v1/batch", content=batch)
    assert r.status_code == 400 and r.json()["field"] == "batch[2].properties.n", r.json()
    r = api.post("/v1/batch", content=batch.replace(b"1e400", b"NaN"))
    assert r.status_code == 400 and r.json()["field"] == "batch[2].properties.n"
    r = api.post("/v1/batch", content=batch.replace(b"1e400", b"99999999999999999999"))
    assert r.status_code == 400 and r.json()["field"] == "batch[2].properties.n"
    r = api.post("/v1/batch", content=batch.replace(b"1e400", b'"\\ud800"'))
    assert r.status_code == 400 and r.json()["error"] == "invalid_string"
    assert r.json()["field"] == "batch[2].properties.n"
    assert rows(api, events) == []  # the batch is refused as a whole
    assert len(rows(api, quarantine)) == 4


def test_numbers_at_the_bounds_are_stored_exactly(api):
    props = b'{"lo":-9223372036854775808,"hi":9223372036854775807,"f":9.2e18,"small":1e-300,"x":1.5}'
    r = api.post(
        "/v1/track", content=b'{"userId":"u","event":"E","messageId":"ok","properties":' + props + b"}"
    )
    assert r.status_code == 200, r.text
    (ev,) = rows(api, events)
    assert ev["properties"]["lo"] == -(2**63) and ev["properties"]["hi"] == 2**63 - 1
    assert ev["properties"]["f"] == 9.2e18 and ev["properties"]["x"] == 1.5
    assert api.ingestor.last_error is None


def test_invalid_utf8_and_deep_nesting_are_400_naming_the_body(api):
    body = track(b'"\xff"')
    r = api.post("/v1/track", content=body)
    assert r.status_code == 400 and r.json()["field"] == "body" and r.json()["error"] == "invalid_utf8"
    at = body.index(b"\xff")
    assert r.json()["reason"] == f"is not valid UTF-8 at byte {at}"
    r = api.post("/v1/track", content=b'{"userId":"u\xc3","event":"E"}')  # in an identifier: was a 500
    assert r.status_code == 400 and r.json()["reason"] == "is not valid UTF-8 at byte 12"
    for kind, deep in (
        ("track", track(b"[" * 5000 + b"]" * 5000)),
        ("track", b'{"userId":"u","event":"E","properties":' + b'{"a":' * 5000 + b"1" + b"}" * 5001),
        ("batch", b'{"batch":[' + b"[" * 5000 + b"]" * 5000 + b"]}"),
        ("track", track(b"[" * 5000)),  # unbalanced as well
    ):
        r = api.post(f"/v1/{kind}", content=deep)
        assert r.status_code == 400 and r.json()["field"] == "body", r.text
        assert r.json()["reason"] == "nests deeper than 64 levels"
    # the body is level 1, properties level 2: 62 arrays inside reach level 64, one more is refused
    assert api.post("/v1/track", content=track(b"[" * 62 + b"]" * 62, "d64")).status_code == 200
    r = api.post("/v1/track", content=track(b"[" * 63 + b"]" * 63, "d65"))
    assert r.status_code == 400 and r.json()["error"] == "too_deep"
    # brackets inside strings are text, not nesting
    assert api.post("/v1/track", content=track(b'"' + b"[{" * 200 + b'\\"]"', "s1")).status_code == 200
    assert sorted(e["message_id"] for e in rows(api, events)) == ["d64", "s1"]


@pytest.fixture
def server(tmp_path):
    key = run_cli(tmp_path, "sources", "create", "--name", "site")
    token = run_cli(tmp_path, "tokens", "create", "--role", "admin")
    srv = Server(tmp_path)
    srv.start()
    yield srv, key, token
    srv.stop()


def test_a_kept_alive_connection_survives_every_refusal(server):
    """Each refused body is a 400 and the next request on the same connection is answered (after
    a 500, the server dropped the connection and the client's next request with it)."""
    srv, key, token = server
    bad = [
        track(b'"\xff"'),
        b'{"userId":"u\xff","event":"E"}',
        track(b"[" * 5000 + b"]" * 5000),
        track(b"1e400"),
        track(b"NaN"),
        track(b"123456789012345678901234567890"),
        track(b'"\\ud800"'),
    ]
    with httpx.Client(auth=(key, ""), timeout=10, headers={"Content-Type": "application/json"}) as c:
        for i, body in enumerate(bad):
            for path in ("/v1/track", "/v1/batch"):
                sent = body if path == "/v1/track" else b'{"batch":[' + body + b"]}"
                r = c.post(srv.url + path, content=sent)
                assert r.status_code == 400, (path, sent[:60], r.status_code, r.text[:200])
                assert r.headers.get("connection", "").lower() != "close"
                ok = c.post(
                    srv.url + "/v1/track", json={"userId": "u", "event": "E", "messageId": f"k{i}{path}"}
                )
                assert ok.status_code == 200
        assert len(c._transport._pool.connections) == 1  # one connection served every request
    got = wait_events(srv, token, 2 * len(bad))
    assert len(got) == 2 * len(bad)
    # the events are visible once committed; the checkpoint (and so the backlog) follows just after
    deadline = time.monotonic() + 20
    while True:
        health = httpx.get(srv.url + "/api/v1/health").json()
        if health["ingest"]["backlog_bytes"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert health["status"] == "ok" and health["ingest"]["backlog_bytes"] == 0


def test_wechat_callbacks_put_only_storable_records_into_the_spool(api):
    """A signed push whose XML nests past the limit, or whose FromUserName is longer than the
    column, is a 400 and quarantined (it was a 500, or a record the database refused later)."""
    from medscrm.ingest.protocol.tencent_crypto import plain_signature

    with api.tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=api.tenant.id, name="oa", kind="wechat")
        accounts.configure_source(
            conn=c, tenant_id=api.tenant.id, name="oa", changes={"token": "T0KEN", "max_age_seconds": 0}
        )
    ts, nonce = "1700000000", "n"
    params = {"signature": plain_signature("T0KEN", ts, nonce), "timestamp": ts, "nonce": nonce}

    def push(user: str, extra: str = "", create: str = "1700000000") -> httpx.Response:
        xml = (
            f"<xml><ToUserName>gh_1</ToUserName><FromUserName>{user}</FromUserName>"
            f"<CreateTime>{create}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event>{extra}</xml>"
        )
        return api.post(f"/callbacks/wechat/{src.id}", params=params, content=xml.encode())

    r = push("oDEEP", "<A>" * 300 + "x" + "</A>" * 300)  # was a 500 (the encoder's recursion limit)
    assert r.status_code == 400 and "XML nests deeper than 32 levels" in r.text
    r = push("o" * 300)
    assert r.status_code == 400 and "user id is 300 characters long" in r.text
    assert push("oGOOD").status_code == 200
    assert [e["user_id"] for e in rows(api, events)] == ["oGOOD"]
    q = rows(api, quarantine)
    assert sorted(x["code"] for x in q) == ["invalid_callback", "unstorable_callback"]
    assert all("<xml>" in x["payload"]["xml"] for x in q)
    assert api.ingestor.quarantined_refused == 0 and api.ingestor.quarantined_poison == 0
