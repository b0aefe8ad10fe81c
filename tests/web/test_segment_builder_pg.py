"""The segment builder's server side on PostgreSQL: event-property and value suggestions, tag values,
the live check of the rule JSON and a preview with a property filter and an average."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.db.schema import events, persons
from medscrm.segments import service as segments
from medscrm.web.devserver import build_tenant
from web.conftest import csrf_of

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_builder(pg_engine, tmp_path_factory):
    from medscrm.app import create_app

    tmp = tmp_path_factory.mktemp("pgsb")
    demo = build_tenant(pg_engine, slug=f"sb-{uuid.uuid4().hex[:8]}", data_dir=tmp / "data", hcps=120, seed=5)
    now = dt.datetime.now(dt.UTC)
    with pg_engine.begin() as conn:
        ids = (
            conn.execute(
                sa.select(persons.c.id)
                .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active")
                .order_by(persons.c.id)
                .limit(12)
            )
            .scalars()
            .all()
        )
        conn.execute(
            sa.insert(events),
            [
                {
                    "id": f"evt_{demo.tenant_id[-8:]}_{i}",
                    "tenant_id": demo.tenant_id,
                    "source_id": "src",
                    "message_id": f"m{i}",
                    "type": "track",
                    "event": "Article Viewed",
                    "person_id": pid,
                    "timestamp": now - dt.timedelta(days=i + 1),
                    "received_at": now,
                    "properties": {
                        "therapy_area": "心衰" if i % 3 else "肿瘤",
                        "minutes": i,
                        "email": "x@example.com",
                    },
                }
                for i, pid in enumerate(ids)
            ],
        )
    app = create_app(pg_engine, spool_dir=tmp / "spool", fsync=False)
    c = TestClient(app)
    token = csrf_of(c.get("/login").text)
    r = c.post(
        "/login",
        data={
            "csrf_token": token,
            "tenant": demo.slug,
            "username": "marketer",
            "password": demo.passwords["marketer"],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    return demo, c


def test_suggestions_and_the_json_check_on_postgresql(pg_builder):
    demo, c = pg_builder
    props = c.get("/segments/event-properties?event=Article Viewed").json()["properties"]
    assert {p["name"]: p["type"] for p in props} == {"therapy_area": "string", "minutes": "number"}
    vals = c.get("/segments/event-values?event=Article Viewed&property=therapy_area").json()["values"]
    assert vals == [{"value": "心衰", "count": 8}, {"value": "肿瘤", "count": 4}]
    assert c.get("/segments/event-values?event=Article Viewed&property=email").json()["values"] == []
    assert c.get("/segments/event-values?event=Article Viewed&property=therapy_area&q=肿").json()[
        "values"
    ] == [{"value": "肿瘤", "count": 4}]
    tiers = c.get("/segments/tag-values?tag=senior_physician").json()["values"]
    assert tiers and all(v["count"] > 0 for v in tiers)

    token = csrf_of(c.get("/segments/new").text)
    rule = {
        "event": "Article Viewed",
        "agg": "avg",
        "property": "minutes",
        "where": [{"property": "therapy_area", "op": "eq", "value": "心衰"}],
        "op": "gte",
        "value": 5,
        "window": {"last": 30, "unit": "days"},
    }
    ok = c.post("/segments/check", data={"rule": json.dumps(rule)}, headers={"X-CSRF-Token": token}).json()
    assert ok == {"ok": True, "rule": rule, "problems": []}
    bad = c.post(
        "/segments/check",
        data={"rule": json.dumps({"and": [rule, {"consent": "email", "purpose": "ads"}]})},
        headers={"X-CSRF-Token": token},
    ).json()
    assert bad["ok"] is False and bad["rule"] is None
    assert [p["path"] for p in bad["problems"]] == ["and[1].purpose"]
    assert "ads" in bad["problems"][0]["reason"]
    assert c.post("/segments/check", data={"rule": "{"}).status_code in (400, 403)  # no CSRF token: refused

    r = c.post("/segments/preview", data={"rule": json.dumps(rule)}, headers={"X-CSRF-Token": token})
    count = int(re.search(r'data-count="(\d+)"', r.text).group(1))
    with demo.engine.connect() as conn:
        assert count == segments.preview(conn, tenant_id=demo.tenant_id, rule=rule, sample=0)["count"]
    # one 心衰 view each for minutes i = 1, 2, 4, 5, 7, 8, 10, 11 (i + 1 days ago): 5, 7, 8, 10, 11 are ≥ 5
    assert count == 5
