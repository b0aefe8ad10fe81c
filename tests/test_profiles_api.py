"""The profile API on both engines: lookup, search, masking by role, redirect after merge, audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import audit_log
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.persons import review
from medscrm.persons.service import apply_clusters, load_records
from tests_support import rep_token


@pytest.fixture
def client(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(
        "编号,姓名,手机,邮箱,医院,科室,处方量,负责代表\n1,张伟,13800138000,zw@pumch.cn,北京协和医院,心内科,120,刘军\n"
        "2,张伟,138-0013-8000,,协和医院,心血管内科,,刘军\n3,李娜,13900139000,ln@wch.cn,华西医院,呼吸科,30,刘军\n",
        encoding="utf-8",
    )
    import_file(
        engine=tenant.engine,
        tenant_id=tenant.id,
        source="crm",
        path=f,
        mapping=Mapping(
            record_key="编号",
            custom={
                "处方量": "rx_volume",
                "负责代表": "owner_rep",
            },  # the rep token's user 刘军 owns all three
            custom_types={"rx_volume": "int"},
        ),
    )
    with tenant.engine.begin() as c:
        recs = load_records(c, tenant.id)
        key = {r["record_key"]: r["id"] for r in recs}
        apply_clusters(
            c, tenant_id=tenant.id, clusters={"a": [key["1"], key["2"]], "b": [key["3"]]}, records=recs
        )
        tokens = {
            role: accounts.create_token(conn=c, tenant_id=tenant.id, role=role).token
            for role in ("admin", "analyst")
        }
        tokens["rep"] = rep_token(c, tenant.id)
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app) as tc:
        tc.h = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}
        tc.tenant = tenant
        yield tc


def test_lookup_by_phone_in_any_format_and_profile_shape(client):
    r = client.get(
        "/api/v1/persons/lookup",
        params={"type": "phone", "value": "+86 138 0013 8000"},
        headers=client.h["admin"],
    )
    assert r.status_code == 200, r.text
    prof = r.json()
    for k in ("person_id", "attributes", "identities", "tags", "segments", "scores", "stage", "lineage"):
        assert k in prof
    assert prof["attributes"]["name"] == "张伟" and prof["attributes"]["phone"] == "+8613800138000"
    assert prof["source_records"] == 2 and prof["lineage"]["phone"]["source"] == "crm"
    assert {"type": "email", "value": "zw@pumch.cn"} in prof["identities"]
    assert (
        client.get(
            "/api/v1/persons/lookup",
            params={"type": "phone", "value": "13000000000"},
            headers=client.h["admin"],
        ).status_code
        == 404
    )
    bad = client.get(
        "/api/v1/persons/lookup", params={"type": "fax", "value": "1"}, headers=client.h["admin"]
    )
    assert bad.status_code == 422 and bad.json()["field"] == "query.type"


def test_rep_sees_masked_pii_and_no_prescription_volume(client):
    pid = client.get(
        "/api/v1/persons/lookup", params={"type": "email", "value": "ZW@pumch.cn"}, headers=client.h["admin"]
    ).json()["person_id"]
    admin = client.get(f"/api/v1/persons/{pid}", headers=client.h["admin"]).json()
    rep = client.get(f"/api/v1/persons/{pid}", headers=client.h["rep"]).json()
    analyst = client.get(f"/api/v1/persons/{pid}", headers=client.h["analyst"]).json()
    assert admin["attributes"]["rx_volume"] == 120 and analyst["attributes"]["rx_volume"] == 120
    assert "rx_volume" not in rep["attributes"] and "rx_volume" not in rep["lineage"]
    assert rep["attributes"]["phone"] == "+86138****8000" and "***" in rep["attributes"]["email"]
    assert all("13800138000" not in i["value"] for i in rep["identities"])
    with client.tenant.engine.connect() as c:
        reads = (
            c.execute(
                sa.select(audit_log.c.detail).where(
                    audit_log.c.tenant_id == client.tenant.id, audit_log.c.action == "profile.read"
                )
            )
            .scalars()
            .all()
        )
    assert {d["role"] for d in reads} == {"admin", "rep", "analyst"}


def test_search_and_merged_ids_redirect(client):
    found = client.get("/api/v1/persons", params={"q": "张"}, headers=client.h["rep"]).json()["persons"]
    assert len(found) == 1 and found[0]["hospital"] == "北京协和医院" and "****" in found[0]["phone"]
    assert (
        len(
            client.get("/api/v1/persons", params={"hospital": "华西"}, headers=client.h["admin"]).json()[
                "persons"
            ]
        )
        == 1
    )
    with client.tenant.engine.begin() as c:
        clusters = review.current_clusters(c, client.tenant.id)
        a, b = sorted(clusters, key=lambda k: -len(clusters[k]))
        review.merge_persons(c, tenant_id=client.tenant.id, person_a=a, person_b=b, actor="test")
    r = client.get(f"/api/v1/persons/{b}", headers=client.h["admin"]).json()
    assert r["person_id"] == a and r["requested_id"] == b and r["source_records"] == 3
    recs = client.get(f"/api/v1/persons/{b}/records", headers=client.h["rep"]).json()["records"]
    assert len(recs) == 3 and all("****" in x["phone"] for x in recs)
    assert client.get("/api/v1/persons/per_nope", headers=client.h["admin"]).status_code == 404
    assert client.get(f"/api/v1/persons/{a}/timeline", headers=client.h["admin"]).json()["events"] == []


def test_profile_carries_scores_stage_and_tier_after_a_refresh(client):
    from medscrm.scores.service import refresh_all

    pid = client.get(
        "/api/v1/persons/lookup", params={"type": "email", "value": "zw@pumch.cn"}, headers=client.h["admin"]
    ).json()["person_id"]
    before = client.get(f"/api/v1/persons/{pid}", headers=client.h["rep"]).json()
    assert before["scores"] == {} and before["tier"] is None and before["stage"]["lifecycle"] is None
    with client.tenant.engine.begin() as c:
        refresh_all(c, tenant_id=client.tenant.id)
    after = client.get(f"/api/v1/persons/{pid}", headers=client.h["rep"]).json()
    # no behaviour yet: registered, no AIPL; the tier comes from the profile (协和 is 三级甲等 in 北京)
    assert after["stage"]["lifecycle"] == "registered" and after["stage"]["aipl"] is None
    assert after["tier"] in ("A", "B", "C") and after["scores"]["lead_score"]["value"] >= 0
    assert after["scores"]["engagement"]["value"] == 0
    assert {"lifecycle", "potential_tier", "activity_level"} <= {t["key"] for t in after["tags"]}
    assert "rx_volume" not in after["attributes"]


def _zw_with_events(client, prefix: str, start, evs: list[dict]) -> str:
    """张伟's person id, after storing ``evs`` (event fields) for them a minute apart from ``start``."""
    import datetime as dt

    from medscrm.db.bulk import append_rows
    from medscrm.db.schema import events, sources

    pid = client.get(
        "/api/v1/persons/lookup", params={"type": "email", "value": "zw@pumch.cn"}, headers=client.h["admin"]
    ).json()["person_id"]
    with client.tenant.engine.begin() as c:
        src = c.execute(sa.select(sources.c.id).where(sources.c.tenant_id == client.tenant.id)).scalar()
        rows = [
            {
                "id": f"ev_{prefix}_{i}",
                "tenant_id": client.tenant.id,
                "source_id": src,
                "message_id": f"{prefix}-{i}",
                "type": "track",
                "person_id": pid,
                "timestamp": start + dt.timedelta(minutes=i),
                "received_at": start + dt.timedelta(minutes=i),
                **ev,
            }
            for i, ev in enumerate(evs)
        ]
        append_rows(c, events, rows)
    return pid


def test_rep_timeline_has_no_prescription_events(client):
    """Rep-filing rules: a rep sees the HCP's engagement but not prescription events or properties."""
    import datetime as dt

    pid = _zw_with_events(
        client,
        "rx",
        dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC),
        [
            {"event": "Article Viewed", "properties": {"therapy_area": "心衰", "rx_volume": 40}},
            {"event": "Prescription Intent", "properties": {"product": "X", "rx_volume": 40}},
        ],
    )

    def names(role):
        r = client.get(f"/api/v1/persons/{pid}/timeline", headers=client.h[role]).json()["events"]
        return [(e["event"], sorted(e["properties"])) for e in r]

    assert names("admin") == [
        ("Prescription Intent", ["product", "rx_volume"]),
        ("Article Viewed", ["rx_volume", "therapy_area"]),
    ]
    assert names("rep") == [("Article Viewed", ["therapy_area"])]


def test_events_mask_personal_data_and_hide_prescriptions_by_role(client):
    """/events and the timeline: traits, properties and context (IP, device ids) masked for roles
    without PII rights; prescription events and properties left out for the rep (as in the profile)."""
    import datetime as dt

    ctx = {"ip": "203.0.113.77", "device": {"id": "dev-123456", "model": "iPhone"}, "locale": "zh-CN"}
    pid = _zw_with_events(
        client,
        "pii",
        dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC),
        [
            {
                "type": "identify",
                "traits": {"phone": "13800138000", "email": "zw@pumch.cn"},
                "context": ctx,
            },
            {
                "event": "Prescription Intent",
                "properties": {"product": "X", "rx_volume": 40},
                "context": ctx,
            },
        ],
    )

    def read(role, path):
        r = client.get(path, headers=client.h[role])
        assert r.status_code == 200, r.text
        return {e["id"]: e for e in r.json()["events"] if e["id"].startswith("ev_pii_")}

    for path in ("/api/v1/events?person_id=" + pid, f"/api/v1/persons/{pid}/timeline"):
        admin, analyst, rep = (read(role, path) for role in ("admin", "analyst", "rep"))
        assert admin["ev_pii_0"]["traits"]["phone"] == "13800138000"
        assert admin["ev_pii_0"]["context"]["ip"] == "203.0.113.77"
        assert admin["ev_pii_0"]["context"]["device"]["id"] == "dev-123456"
        for seen in (analyst, rep):
            ev = seen["ev_pii_0"]
            assert "13800138000" not in str(ev) and "zw@pumch.cn" not in str(ev)
            assert ev["context"]["ip"] != "203.0.113.77" and "***" in ev["context"]["ip"]
            assert ev["context"]["device"] == {"id": "***", "model": "iPhone"}
            assert ev["context"]["locale"] == "zh-CN"
        assert analyst["ev_pii_1"]["properties"] == {"product": "X", "rx_volume": 40}
        assert "ev_pii_1" not in rep
