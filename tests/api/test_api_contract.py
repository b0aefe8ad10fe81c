"""What schemathesis found, pinned down: bounded paging, the static-file route and a NUL byte,
concurrent score refreshes (real threads against a real server on both engines), the answer to an
unexpected error, and an OpenAPI document that declares the answers given."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
sys.path.insert(0, str(Path(__file__).parents[1] / "scores"))
from test_scores import CARDIO, add_events, add_person  # noqa: E402
from test_server_process import free_port  # noqa: E402


@pytest.fixture
def app_token(tenant, tmp_path):
    with tenant.engine.begin() as c:
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token
    return create_app(tenant.engine, spool_dir=tmp_path / "spool"), {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/api/v1/persons", "/api/v1/quarantine", "/api/v1/segments/x/members"])
@pytest.mark.parametrize("offset", ["99999999999999999999", "1000000001", "-1"])
def test_an_offset_out_of_range_is_a_422_naming_it(app_token, path, offset):
    app, h = app_token
    with TestClient(app) as client:
        r = client.get(path, params={"offset": offset}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "query.offset"
        assert client.get(path, params={"offset": "1000000000"}, headers=h).status_code in (200, 404)


def test_a_static_name_with_a_nul_byte_is_a_404(app_token):
    app, _ = app_token
    with TestClient(app) as client:
        for path in ("/static/console.js%00.css", "/static/%00", "/static/" + "a" * 5000):
            r = client.get(path)
            assert r.status_code == 404, (path, r.status_code)
        assert client.get("/static/console.js").status_code in (200, 404)


def test_lookup_declares_its_enum_and_names_the_field(app_token):
    app, h = app_token
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
        op = spec["paths"]["/api/v1/persons/lookup"]["get"]
        kind = next(p for p in op["parameters"] if p["name"] == "type")
        assert kind["schema"]["enum"] == [
            "phone",
            "email",
            "unionid",
            "wecom",
            "license_no",
            "user_id",
            "anonymous_id",
        ]
        assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ApiError"
        }
        r = client.get("/api/v1/persons/lookup", params={"type": "phone", "value": "abc"}, headers=h)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "value"
        beacon = spec["paths"]["/b/{token}"]["get"]["responses"]["200"]["content"]
        assert list(beacon) == ["image/gif"]
        assert client.get("/b/nothing").headers["content-type"] == "image/gif"


def test_the_event_api_and_callbacks_declare_what_they_answer(app_token):
    """Every status the collection API and the Tencent callbacks answer is in the document, with
    the shape and content type they really have."""
    app, _ = app_token
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
        collect = spec["paths"]["/v1/{kind}"]["post"]["responses"]
        assert {"200", "400", "401", "404", "429", "503"} <= set(collect)
        unknown = client.post("/v1/nothing", json={})
        assert unknown.status_code == 404
        schema = spec["components"]["schemas"]["CollectAnswer"]
        assert set(unknown.json()) <= set(schema["properties"]) and unknown.json()["field"] == "path"
        for path, method in (
            ("/callbacks/wecom/{source_id}", "post"),
            ("/callbacks/wechat/{source_id}", "get"),
        ):
            answers = spec["paths"][path][method]["responses"]
            assert list(answers["404"]["content"]) == ["text/plain"], path
        r = client.get(
            "/callbacks/wechat/src_none",
            params={"signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"},
        )
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")


def test_an_unexpected_error_answers_json_without_a_traceback(app_token):
    app, _ = app_token

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret SQL: SELECT * FROM persons WHERE phone = '13800138000'")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal_error" and "reference" in body["errors"][0]["reason"]
    assert "secret" not in r.text and "Traceback" not in r.text and "13800138000" not in r.text


def test_concurrent_micro_segment_refreshes_never_fail(tenant, tmp_path):
    """Three refreshes at once against a real uvicorn server: one re-clusters, the others answer 200
    after it or 409 with the reason — never a 500 (DuckDB: "Conflict on tuple deletion")."""
    now = dt.datetime.now(dt.UTC)
    with tenant.engine.begin() as c:
        for i in range(30):
            pid = add_person(c, tenant.id, {**CARDIO, "name": f"王{i}"})
            area, channel = ("心衰", "wecom") if i % 2 else ("呼吸", "email")
            add_events(
                c,
                tenant.id,
                pid,
                [
                    (
                        "Article Viewed",
                        now - dt.timedelta(days=d, hours=i),
                        {"therapy_area": area, "channel": channel},
                    )
                    for d in range(1, 3 + i % 5)
                ],
            )
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        for path, body in (
            ("/api/v1/scores/micro-segments/refresh", {"k": 3}),
            ("/api/v1/scores/refresh", {"micro": True, "k": 3}),
        ):
            answers: list[httpx.Response] = []
            go = threading.Barrier(3)

            def post(path=path, body=body, go=go, answers=answers):
                go.wait()
                answers.append(httpx.post(url + path, json=body, headers=h, timeout=120))

            threads = [threading.Thread(target=post) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = sorted(r.status_code for r in answers)
            assert set(codes) <= {200, 409} and 200 in codes, [(r.status_code, r.text) for r in answers]
            for r in answers:
                if r.status_code == 409:
                    assert r.json()["detail"]["field"] == "refresh"
                    assert "already running" in r.json()["detail"]["reason"]
        got = httpx.get(url + "/api/v1/scores/micro-segments", headers=h).json()["micro_segments"]
        assert len(got) == 3
    finally:
        server.should_exit = True
        thread.join(30)
