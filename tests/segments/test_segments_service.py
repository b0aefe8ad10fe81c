"""Segments and tags on both engines: preview, static/dynamic, refresh history, versions, export, API."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import segment_history, segments, tag_history
from medscrm.rules import RuleError
from medscrm.segments import service as segs
from medscrm.tags import service as tags
from rules.dataset import NOW, load

CARDIO = {"attr": "department", "op": "eq", "value": "心内科"}


@pytest.fixture
def ds(tenant):
    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
    return tenant, ids


def test_preview_create_refresh_version_history(ds):
    tenant, ids = ds
    with tenant.engine.begin() as c:
        assert segs.preview(c, tenant_id=tenant.id, rule=CARDIO, now=NOW)["count"] == 3
        s = segs.create(c, tenant_id=tenant.id, key="cardio", rule=CARDIO, now=NOW)
        assert (s["member_count"], s["version"], s["kind"]) == (3, 1, "dynamic")
        snap = segs.create(c, tenant_id=tenant.id, key="snap", rule=CARDIO, kind="static", now=NOW)
        assert snap["member_count"] == 3
        later = NOW + dt.timedelta(hours=1)
        s = segs.update(
            c, tenant_id=tenant.id, key="cardio", rule={"and": [CARDIO, {"person_type": "hcp"}]}, now=later
        )
        assert (s["member_count"], s["version"]) == (2, 2)
        assert segs.refresh(c, tenant_id=tenant.id, key="snap")["static"] is True
        hist = segs.history(c, tenant_id=tenant.id, key="cardio")
        assert [h["change"] for h in hist].count("entered") == 3
        assert [(h["person_id"], h["change"]) for h in hist if h["change"] == "exited"] == [
            (ids["p5"], "exited")
        ]
        # segment references: a static one by its members, a dynamic one inlined
        both = segs.preview(
            c, tenant_id=tenant.id, rule={"and": [{"segment": "snap"}, {"segment": "cardio"}]}, now=NOW
        )
        assert both["count"] == 2
        assert {x["key"] for x in segs.segments_of(c, tenant_id=tenant.id, person_id=ids["p1"])} == {
            "cardio",
            "snap",
        }


def test_broken_definitions_never_saved_and_cycles_rejected(ds):
    tenant, _ = ds
    with tenant.engine.begin() as c:
        with pytest.raises(RuleError) as ei:
            segs.create(
                c, tenant_id=tenant.id, key="bad", rule={"and": [CARDIO, {"tag": "nope", "op": "exists"}]}
            )
        assert ei.value.problems[0].path == "rule.and[1].tag"
        segs.create(c, tenant_id=tenant.id, key="a", rule=CARDIO, now=NOW)
        segs.create(c, tenant_id=tenant.id, key="b", rule={"segment": "a"}, now=NOW)
        with pytest.raises(RuleError, match="cycle"):
            segs.update(c, tenant_id=tenant.id, key="a", rule={"segment": "b"})
        assert segs.get(c, tenant_id=tenant.id, key="a")["version"] == 1
        n = c.execute(
            sa.select(sa.func.count()).select_from(segments).where(segments.c.tenant_id == tenant.id)
        ).scalar()
        assert n == 2


def test_rule_tags_history_and_import(ds, tmp_path):
    tenant, ids = ds
    with tenant.engine.begin() as c:
        tags.define(
            c,
            tenant_id=tenant.id,
            key="engaged",
            rule={"event": "Article Viewed", "op": "gte", "value": 2, "window": {"last": 90}},
            name_zh="活跃读者",
        )
        with pytest.raises(RuleError):
            tags.define(c, tenant_id=tenant.id, key="broken", rule={"attr": "nope", "op": "exists"})
        assert tags.evaluate(c, tenant_id=tenant.id, now=NOW)["engaged"]["count"] == 2
        later = NOW + dt.timedelta(days=100)  # every article falls out of the 90-day window
        res = tags.evaluate(c, tenant_id=tenant.id, now=later)["engaged"]
        assert (res["removed"], res["count"]) == (2, 0)
        hist = (
            c.execute(
                sa.select(tag_history).where(
                    tag_history.c.tenant_id == tenant.id, tag_history.c.tag_key == "engaged"
                )
            )
            .mappings()
            .all()
        )
        assert len(hist) == 2 + res["removed"] + res["added"] and all(h["reason"]["rule"] for h in hist)
        f = tmp_path / "tags.csv"
        f.write_text(
            f"person_id,id_type,id_value,tag_key,value\n{ids['p1']},,,iqvia_segment,S1\n,user_id,u2,iqvia_segment,S2\n,user_id,ghost,iqvia_segment,S3\n",
            encoding="utf-8",
        )
        rep = tags.import_csv(c, tenant_id=tenant.id, path=f, now=NOW)
        assert rep["matched"] == 2 and [u["row"] for u in rep["unmatched"]] == [4]
        got = {t["key"]: t["value"] for t in tags.tags_of(c, tenant_id=tenant.id, person_id=ids["p2"])}
        assert (
            got["iqvia_segment"] == "S2"
            and tags.get_definition(c, tenant_id=tenant.id, key="iqvia_segment")["category"] == "third_party"
        )


def test_api_end_to_end_with_masking(ds, tmp_path):
    tenant, ids = ds
    with tenant.engine.begin() as c:
        tok = {
            r: accounts.create_token(conn=c, tenant_id=tenant.id, role=r).token for r in ("admin", "analyst")
        }
    h = {r: {"Authorization": f"Bearer {t}"} for r, t in tok.items()}
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool")) as tc:
        r = tc.post(
            "/api/v1/segments/preview",
            json={"rule": {"and": [CARDIO, {"attr": "titel", "op": "eq", "value": "x"}]}},
            headers=h["analyst"],
        )
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "and[1].attr"
        r = tc.post("/api/v1/segments/preview", json={"rule": CARDIO}, headers=h["analyst"])
        assert r.json()["count"] == 3
        assert (
            tc.post("/api/v1/segments", json={"key": "c", "rule": CARDIO}, headers=h["analyst"]).status_code
            == 403
        )
        r = tc.post("/api/v1/segments", json={"key": "c", "rule": CARDIO}, headers=h["admin"])
        assert r.status_code == 201 and r.json()["member_count"] == 3
        assert (
            tc.put("/api/v1/segments/c", json={"rule": {"segment": "c"}}, headers=h["admin"]).status_code
            == 422
        )
        assert tc.post("/api/v1/segments/c/refresh", headers=h["admin"]).json()["member_count"] == 3
        assert tc.get("/api/v1/segments", headers=h["analyst"]).json()["count"] == 1
        assert tc.get("/api/v1/segments/nope", headers=h["analyst"]).status_code == 404
        members = tc.get("/api/v1/segments/c/members", headers=h["analyst"]).json()["members"]
        p1 = next(m for m in members if m["person_id"] == ids["p1"])
        assert p1["phone"] == "+86138****8000" and p1["name"] == "张伟"
        csv_admin = tc.get("/api/v1/segments/c/export.csv", headers=h["admin"]).text
        csv_analyst = tc.get("/api/v1/segments/c/export.csv", headers=h["analyst"]).text
        assert (
            "+8613800138000" in csv_admin
            and "+8613800138000" not in csv_analyst
            and "心内科" not in csv_analyst.splitlines()[0]
        )
        kol = {"key": "kol", "category": "third_party", "name_zh": "关键意见领袖"}
        assert tc.post("/api/v1/tags", json=kol, headers=h["admin"]).status_code == 201
        r = tc.post(
            "/api/v1/tags", json={"key": "kol2", "rule": {"tag": "kol", "op": "exists"}}, headers=h["admin"]
        )
        assert r.status_code == 201, r.text
        assert (
            tc.post(
                "/api/v1/tags", json={"key": "x", "rule": {"tag": "zz", "op": "exists"}}, headers=h["admin"]
            ).json()["errors"][0]["path"]
            == "rule.tag"
        )
        assert (
            tc.post("/api/v1/tags/evaluate", headers=h["admin"]).json()["tags"]["kol2"]["count"] == 1
        )  # kol not defined as a tag yet
        assert tc.get("/api/v1/tags", headers=h["analyst"]).json()["count"] == 2
        t = tc.get(f"/api/v1/persons/{ids['p2']}/tags", headers=h["analyst"]).json()
        assert {x["key"] for x in t["tags"]} >= {"kol", "potential_tier"}
        prof = tc.get(f"/api/v1/persons/{ids['p1']}", headers=h["analyst"]).json()
        assert [s["key"] for s in prof["segments"]] == ["c"] and prof["tags"][0]["key"] == "potential_tier"
    with tenant.engine.connect() as c:
        assert (
            c.execute(
                sa.select(sa.func.count())
                .select_from(segment_history)
                .where(segment_history.c.tenant_id == tenant.id)
            ).scalar()
            == 3
        )
