"""Scores through the API on both engines: profile scores/stage/tier with role masking, dashboard
distributions, micro-segments, the tag query, refresh permissions."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import audit_log
from medscrm.scores.service import refresh_all
from tests_support import rep_token

from .test_scores import CARDIO, add_events, add_person, beijing

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def client(tenant, tmp_path):
    with tenant.engine.begin() as c:
        rx = add_person(c, tenant.id, {**CARDIO, "phone": "+8613800138000", "rx_volume": 120})
        add_events(
            c,
            tenant.id,
            rx,
            [
                ("Article Viewed", NOW - dt.timedelta(days=d), {"therapy_area": "心衰", "channel": "wecom"})
                for d in (1, 2, 4, 8)
            ]
            + [
                (
                    "Prescription Intent",
                    NOW - dt.timedelta(days=3),
                    {"therapy_area": "心衰", "channel": "wecom"},
                )
            ],
        )
        others = [add_person(c, tenant.id, {"department": "眼科", "title": "住院医师"}) for _ in range(3)]
        for i, p in enumerate(others):
            add_events(
                c,
                tenant.id,
                p,
                [
                    ("Video Watched", beijing(d, 21), {"therapy_area": "呼吸", "channel": "wechat"})
                    for d in (3 + i, 9)
                ],
            )
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        tokens = {
            role: accounts.create_token(conn=c, tenant_id=tenant.id, role=role).token
            for role in ("admin", "analyst")
        }
        tokens["rep"] = rep_token(c, tenant.id, owns=[rx, *others])  # a rep token sees its own HCPs only
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app) as tc:
        tc.h = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}
        tc.rx, tc.others = rx, others
        tc.engine, tc.tenant_id = tenant.engine, tenant.id
        yield tc


def test_profile_has_scores_stage_and_tier_and_hides_prescription_detail_from_reps(client):
    admin = client.get(f"/api/v1/persons/{client.rx}", headers=client.h["analyst"]).json()
    rep = client.get(f"/api/v1/persons/{client.rx}", headers=client.h["rep"]).json()
    assert admin["stage"]["lifecycle"] == "converted" and admin["tier"] == "A"
    assert 0 < admin["scores"]["lead_score"]["value"] <= 100
    assert rep["scores"]["lead_score"]["value"] == admin["scores"]["lead_score"]["value"]
    a_events = {e["event"] for e in admin["scores"]["lead_score"]["reason"]["events"]}
    r_events = {e["event"] for e in rep["scores"]["lead_score"]["reason"]["events"]}
    assert "Prescription Intent" in a_events and "Prescription Intent" not in r_events
    assert "rx_volume" not in rep["attributes"] and admin["attributes"]["rx_volume"] == 120
    tags = {t["key"]: t for t in admin["tags"]}
    assert tags["content_preference"]["value"] == "心衰" and tags["content_preference"]["reason"]["text_zh"]
    one = client.get(f"/api/v1/scores/persons/{client.rx}", headers=client.h["rep"]).json()
    assert one["stage"]["potential_tier"] == "A"
    assert "Prescription Intent" not in {e["event"] for e in one["scores"]["lead_score"]["reason"]["events"]}


def test_distributions_tag_query_and_refresh_permissions(client):
    d = client.get("/api/v1/scores/distributions", headers=client.h["rep"]).json()
    assert sum(d["tags"]["potential_tier"].values()) == 4
    assert d["tags"]["potential_tier"]["C"] == 3 and d["tags"]["lifecycle"]["converted"] == 1
    assert d["scores"]["lead_score"]["count"] == 4
    page1 = client.get(
        "/api/v1/tags/potential_tier/persons", params={"value": "C", "limit": 2}, headers=client.h["rep"]
    ).json()
    assert page1["total"] == 3 and len(page1["persons"]) == 2 and page1["next_offset"] == 2
    page2 = client.get(
        "/api/v1/tags/potential_tier/persons",
        params={"value": "C", "limit": 2, "offset": 2},
        headers=client.h["rep"],
    ).json()
    got = {p["person_id"] for p in page1["persons"] + page2["persons"]}
    assert got == set(client.others) and page2["next_offset"] is None
    assert page1["persons"][0]["department"] == "眼科" and "phone" not in page1["persons"][0]
    with client.engine.connect() as c:
        reads = (
            c.execute(
                sa.select(audit_log.c.detail).where(
                    audit_log.c.tenant_id == client.tenant_id, audit_log.c.action == "tags.query"
                )
            )
            .scalars()
            .all()
        )
    assert sorted(d["returned"] for d in reads) == [1, 2] and {d["role"] for d in reads} == {"rep"}
    r = client.get("/api/v1/tags/no_such_tag/persons", headers=client.h["rep"])
    assert r.status_code == 404 and r.json()["detail"]["field"] == "key"
    assert client.post("/api/v1/scores/refresh", headers=client.h["rep"]).status_code == 403
    ok = client.post("/api/v1/scores/refresh", json={"micro": True, "k": 2}, headers=client.h["admin"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["persons"] == 4 and len(ok.json()["micro_segments"]) == 2
    ms = client.get("/api/v1/scores/micro-segments", headers=client.h["rep"]).json()["micro_segments"]
    assert [m["label"] for m in ms] == ["ms1", "ms2"] and sum(m["size"] for m in ms) == 4
    assert all(m["description_zh"] and m["description_en"] for m in ms)
    bad = client.post("/api/v1/scores/micro-segments/refresh", json={"k": 1}, headers=client.h["admin"])
    assert bad.status_code == 422
