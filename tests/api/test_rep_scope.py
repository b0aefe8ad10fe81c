"""Rep tokens see only the rep's own HCPs through every /api/v1 endpoint that shows persons (rep filing
rules, PIPL), on both engines; other roles see the whole tenant. Ownership is what the console uses
(``medscrm.access``): the CRM's 负责代表 (by display name or username) and WeCom contact links."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.access import visible_attributes
from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import new_id, utcnow
from medscrm.db.bulk import append_rows
from medscrm.db.schema import audit_log, events, identities, identity_links, persons, sends, sources, users
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.outreach.send import SendRequest, request_send
from medscrm.persons.service import apply_clusters, load_records
from medscrm.segments import service as segs
from medscrm.tags import service as tags
from tests_support import rep_token

CSV = """编号,姓名,手机,邮箱,医院,科室,负责代表,备注,处方量
1,王芳,13800138001,wf@pumch.cn,北京协和医院,心内科,刘军,王主任手机13800138001,120
2,赵强,13800138002,zq@pumch.cn,北京协和医院,心内科,王丽,,80
3,陈静,13800138003,cj@wch.cn,华西医院,心内科,LiuJun,,
4,孙浩,13800138004,sh@wch.cn,华西医院,呼吸科,,,
5,周敏,13800138005,zm@wch.cn,华西医院,呼吸科,,,
"""
T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(tenant, tmp_path):
    """Five HCPs: 1 (负责代表 = the rep's display name 刘军), 3 (= the rep's username LiuJun) and 4 (a WeCom
    contact of LiuJun) are LiuJun's; 2 is 王丽's, 5 has no rep."""
    f = tmp_path / "crm.csv"
    f.write_text(CSV, encoding="utf-8")
    import_file(
        engine=tenant.engine,
        tenant_id=tenant.id,
        source="crm",
        path=f,
        mapping=Mapping(
            record_key="编号",
            custom={"负责代表": "owner_rep", "备注": "rep_remark", "处方量": "rx_volume"},
            custom_types={"rx_volume": "int"},
        ),
    )
    now = utcnow()
    with tenant.engine.begin() as c:
        recs = load_records(c, tenant.id)
        apply_clusters(
            c, tenant_id=tenant.id, clusters={r["record_key"]: [r["id"]] for r in recs}, records=recs
        )
        pid = {
            v[-1]: p
            for v, p in c.execute(
                sa.select(identities.c.value, identities.c.person_id).where(
                    identities.c.tenant_id == tenant.id, identities.c.type == "phone"
                )
            )
        }
        assert sorted(pid) == ["1", "2", "3", "4", "5"]
        ev = new_id("ev")  # event ids are global: the PostgreSQL database is shared by the tests
        src = c.execute(sa.select(sources.c.id).where(sources.c.tenant_id == tenant.id)).scalar_one()
        # 4 is a WeCom external contact of LiuJun (the callback API's identity link)
        c.execute(
            sa.insert(identities).values(
                id=new_id("id"),
                tenant_id=tenant.id,
                type="wecom_external_userid",
                value="wmEXT4",
                person_id=pid["4"],
                created_at=now,
            )
        )
        c.execute(
            sa.insert(identity_links).values(
                id=new_id("il"),
                tenant_id=tenant.id,
                source_id=src,
                relation="wecom_contact_of",
                type_a="wecom_external_userid",
                value_a="wmEXT4",
                type_b="wecom_user",
                value_b="LiuJun",
                created_at=now,
            )
        )
        append_rows(
            c,
            events,
            [
                {
                    "id": f"{ev}_{k}_{i}",
                    "tenant_id": tenant.id,
                    "source_id": src,
                    "message_id": f"m-{k}-{i}",
                    "type": "track",
                    "event": "Article Viewed",
                    "person_id": pid[k],
                    "timestamp": T0 + dt.timedelta(minutes=i),
                    "received_at": T0 + dt.timedelta(minutes=i),
                    "properties": {"therapy_area": "心衰"},
                }
                for k in ("1", "2", "5")
                for i in range(2)
            ],
        )
        tags.define(
            c,
            tenant_id=tenant.id,
            key="cardio",
            rule={"attr": "department", "op": "eq", "value": "心血管内科"},
        )
        tags.evaluate(c, tenant_id=tenant.id, keys=["cardio"])
        segs.create(c, tenant_id=tenant.id, key="all_hcps", rule={"attr": "hospital", "op": "exists"})
        send_ids = {
            k: request_send(
                c,
                SendRequest(
                    tenant_id=tenant.id,
                    person_id=pid[k],
                    channel="email",
                    idempotency_key=f"s-{k}",
                    origin="api:test",
                ),
            ).send_id
            for k in ("1", "2")
        }
        tokens = {
            "admin": accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token,
            "analyst": accounts.create_token(conn=c, tenant_id=tenant.id, role="analyst").token,
            "rep": rep_token(c, tenant.id),  # LiuJun / 刘军, owns 1, 3, 4 through the data above
            "rep2": rep_token(c, tenant.id, username="WangLi", display_name="王丽"),
            "rep_no_user": accounts.create_token(conn=c, tenant_id=tenant.id, role="rep").token,
        }
        gone = accounts.create_user(
            conn=c, tenant_id=tenant.id, username="LiuJunOld", role="rep", display_name="刘军"
        )
        c.execute(sa.update(users).where(users.c.id == gone["id"]).values(disabled_at=now))
        tokens["rep_disabled_user"] = accounts.create_token(
            conn=c, tenant_id=tenant.id, role="rep", user_id=gone["id"]
        ).token
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as tc:
        tc.h = {k: _h(v) for k, v in tokens.items()}
        tc.pid, tc.send_ids, tc.tenant, tc.ev = pid, send_ids, tenant, ev
        yield tc


def _ids(api, role: str, **params) -> set[str]:
    r = api.get("/api/v1/persons", params={"limit": 500, **params}, headers=api.h[role])
    assert r.status_code == 200, r.text
    return {x["person_id"] for x in r.json()["persons"]}


PERSON_URLS = (
    "/api/v1/persons/{}",
    "/api/v1/persons/{}/timeline",
    "/api/v1/persons/{}/records",
    "/api/v1/persons/{}/tags",
    "/api/v1/persons/{}/consents",
    "/api/v1/scores/persons/{}",
)


def test_rep_reads_own_hcps_on_every_person_endpoint(api):
    pid = api.pid
    for k in ("1", "3", "4"):
        for url in PERSON_URLS:
            r = api.get(url.format(pid[k]), headers=api.h["rep"])
            assert r.status_code == 200, (k, url, r.text)
    prof = api.get(f"/api/v1/persons/{pid['1']}", headers=api.h["rep"]).json()
    assert prof["person_id"] == pid["1"] and prof["attributes"]["name"] == "王芳"
    # masked as the console masks a rep's view (phone, e-mail, the remark), no prescription volume
    assert prof["attributes"]["phone"] == "+86138****8001" and prof["attributes"]["email"] == "w***@pumch.cn"
    assert prof["attributes"]["rep_remark"] == "***" and "rx_volume" not in prof["attributes"]
    with api.tenant.engine.connect() as c:
        raw = c.execute(sa.select(persons.c.attributes).where(persons.c.id == pid["1"])).scalar_one()
    assert prof["attributes"] == visible_attributes(raw, "rep")
    assert all("13800138001" not in i["value"] for i in prof["identities"])
    admin = api.get(f"/api/v1/persons/{pid['1']}", headers=api.h["admin"]).json()
    assert admin["attributes"]["phone"] == "+8613800138001" and admin["attributes"]["rx_volume"] == 120
    assert admin["attributes"]["rep_remark"] == "王主任手机13800138001"
    # lookup, timeline, records
    r = api.get(
        "/api/v1/persons/lookup", params={"type": "phone", "value": "13800138003"}, headers=api.h["rep"]
    )
    assert r.status_code == 200 and r.json()["person_id"] == pid["3"]
    r = api.get("/api/v1/persons/lookup", params={"type": "wecom", "value": "wmEXT4"}, headers=api.h["rep"])
    assert r.status_code == 200 and r.json()["person_id"] == pid["4"]
    tl = api.get(f"/api/v1/persons/{pid['1']}/timeline", headers=api.h["rep"]).json()["events"]
    assert [e["id"] for e in tl if e["event"] == "Article Viewed"] == [f"{api.ev}_1_1", f"{api.ev}_1_0"]
    recs = api.get(f"/api/v1/persons/{pid['1']}/records", headers=api.h["rep"]).json()["records"]
    assert len(recs) == 1 and recs[0]["phone"] == "+86138****8001"
    sc = api.get(f"/api/v1/scores/persons/{pid['3']}", headers=api.h["rep"]).json()
    assert sc["person_id"] == pid["3"]
    t = api.get(f"/api/v1/persons/{pid['1']}/tags", headers=api.h["rep"]).json()
    assert [x["key"] for x in t["tags"]] == ["cardio"]


def test_rep_gets_the_missing_person_answer_for_other_hcps(api):
    """A person the rep does not own answers exactly like a person that does not exist (no leak)."""
    pid = api.pid
    for k in ("2", "5"):
        for url in PERSON_URLS:
            missing = api.get(url.format("per_missing"), headers=api.h["rep"])
            r = api.get(url.format(pid[k]), headers=api.h["rep"])
            assert missing.status_code == r.status_code == 404, (k, url, r.text)
            assert json.dumps(r.json()) == json.dumps(missing.json()).replace("per_missing", pid[k])
            assert api.get(url.format(pid[k]), headers=api.h["admin"]).status_code == 200, (k, url)
        r = api.get(
            "/api/v1/persons/lookup",
            params={"type": "phone", "value": f"1380013800{k}"},
            headers=api.h["rep"],
        )
        none = api.get(
            "/api/v1/persons/lookup", params={"type": "phone", "value": "13900000000"}, headers=api.h["rep"]
        )
        assert r.status_code == none.status_code == 404 and r.json()["detail"]["field"] == "value"
        assert r.json()["detail"]["reason"] == "no person with phone '1380013800" + k + "'"
        ok = api.get(
            "/api/v1/persons/lookup",
            params={"type": "phone", "value": f"1380013800{k}"},
            headers=api.h["admin"],
        )
        assert ok.status_code == 200 and ok.json()["person_id"] == pid[k]
    # the other rep sees 2 and not 1
    assert api.get(f"/api/v1/persons/{pid['2']}", headers=api.h["rep2"]).status_code == 200
    assert api.get(f"/api/v1/persons/{pid['1']}", headers=api.h["rep2"]).status_code == 404
    # refused reads are not audited as profile reads

    def audited(who: str) -> set[str]:
        token_id = api.get("/api/v1/me", headers=api.h[who]).json()["token_id"]
        with api.tenant.engine.connect() as c:
            return set(
                c.execute(
                    sa.select(audit_log.c.object_id).where(
                        audit_log.c.tenant_id == api.tenant.id,
                        audit_log.c.action == "profile.read",
                        audit_log.c.actor == f"token:{token_id}",
                    )
                ).scalars()
            )

    assert audited("rep") == set() and audited("rep2") == {pid["2"]}
    assert audited("admin") == {pid["2"], pid["5"]}


def test_listings_show_only_the_reps_own_hcps(api):
    pid = api.pid
    mine = {pid["1"], pid["3"], pid["4"]}
    everyone = set(pid.values())
    # search
    assert _ids(api, "rep") == mine and _ids(api, "admin") == everyone and _ids(api, "analyst") == everyone
    assert _ids(api, "rep", q="赵") == set() and _ids(api, "admin", q="赵") == {pid["2"]}
    assert _ids(api, "rep", hospital="华西") == {pid["3"], pid["4"]}
    assert _ids(api, "rep2") == {pid["2"]}
    found = api.get("/api/v1/persons", params={"q": "王"}, headers=api.h["rep"]).json()["persons"]
    assert [x["phone"] for x in found] == ["+86138****8001"]
    # tag members: listing and total
    r = api.get("/api/v1/tags/cardio/persons", headers=api.h["rep"]).json()
    assert {x["person_id"] for x in r["persons"]} == {pid["1"], pid["3"]} and r["total"] == 2
    r = api.get("/api/v1/tags/cardio/persons", headers=api.h["admin"]).json()
    assert {x["person_id"] for x in r["persons"]} == {pid["1"], pid["2"], pid["3"]} and r["total"] == 3
    # segment members, export, preview
    r = api.get("/api/v1/segments/all_hcps/members", headers=api.h["rep"]).json()
    assert {x["person_id"] for x in r["members"]} == mine and r["count"] == 3
    assert all("****" in x["phone"] for x in r["members"])
    r = api.get("/api/v1/segments/all_hcps/members", headers=api.h["admin"]).json()
    assert {x["person_id"] for x in r["members"]} == everyone

    def export(role: str) -> set[str]:
        r = api.get("/api/v1/segments/all_hcps/export.csv", headers=api.h[role])
        assert r.status_code == 200
        return {row["person_id"] for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}

    assert export("rep") == mine and export("admin") == everyone
    rule = {"rule": {"attr": "department", "op": "eq", "value": "心血管内科"}, "sample": 10}
    r = api.post("/api/v1/segments/preview", json=rule, headers=api.h["rep"]).json()
    assert r["count"] == 2 and set(r["sample"]) == {pid["1"], pid["3"]}
    assert api.post("/api/v1/segments/preview", json=rule, headers=api.h["admin"]).json()["count"] == 3
    # events
    r = api.get("/api/v1/events", headers=api.h["rep"]).json()["events"]
    assert {e["person_id"] for e in r} == {pid["1"]}
    assert (
        api.get("/api/v1/events", params={"person_id": pid["2"]}, headers=api.h["rep"]).json()["events"] == []
    )
    own = {"person_id": pid["1"], "event": "Article Viewed"}
    assert [
        e["id"] for e in api.get("/api/v1/events", params=own, headers=api.h["rep"]).json()["events"]
    ] == [
        f"{api.ev}_1_1",
        f"{api.ev}_1_0",
    ]
    assert {e["person_id"] for e in api.get("/api/v1/events", headers=api.h["admin"]).json()["events"]} == {
        pid["1"],
        pid["2"],
        pid["5"],
    }
    # sends: the outbox, one send, a new send
    r = api.get("/api/v1/sends", headers=api.h["rep"]).json()
    assert [s["person_id"] for s in r["sends"]] == [pid["1"]] and sum(
        v for k, v in r["totals"].items() if k != "blocked_by_reason"
    ) == 1
    assert {s["person_id"] for s in api.get("/api/v1/sends", headers=api.h["admin"]).json()["sends"]} == {
        pid["1"],
        pid["2"],
    }
    assert api.get(f"/api/v1/sends/{api.send_ids['1']}", headers=api.h["rep"]).status_code == 200
    other = api.get(f"/api/v1/sends/{api.send_ids['2']}", headers=api.h["rep"])
    missing = api.get("/api/v1/sends/snd_missing", headers=api.h["rep"])
    assert other.status_code == missing.status_code == 404
    assert json.dumps(other.json()) == json.dumps(missing.json()).replace("snd_missing", api.send_ids["2"])
    body = {"person_id": pid["2"], "channel": "email", "idempotency_key": "rep-x"}
    r = api.post("/api/v1/sends", json=body, headers=api.h["rep"])
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "person_id"
    r = api.post("/api/v1/sends", json={**body, "person_id": pid["1"]}, headers=api.h["rep"])
    assert r.status_code == 202, r.text
    with api.tenant.engine.connect() as c:
        sent_to = set(
            c.execute(sa.select(sends.c.person_id).where(sends.c.tenant_id == api.tenant.id)).scalars()
        )
    assert sent_to == {pid["1"], pid["2"]}  # nothing was written for the refused one
    # consents: a rep may record a consent for an own HCP, not for another
    consent = {"channel": "email", "purpose": "marketing", "status": "granted", "source": "wecom_chat"}
    assert (
        api.put(f"/api/v1/persons/{pid['1']}/consents", json=consent, headers=api.h["rep"]).status_code == 200
    )
    assert (
        api.put(f"/api/v1/persons/{pid['2']}/consents", json=consent, headers=api.h["rep"]).status_code == 404
    )
    assert (
        api.post(f"/api/v1/persons/{pid['2']}/dnc", json={"reason": "x"}, headers=api.h["rep"]).status_code
        == 404
    )
    assert api.get(f"/api/v1/persons/{pid['2']}/consents", headers=api.h["admin"]).json()["consents"] == []


@pytest.mark.parametrize("who", ["rep_no_user", "rep_disabled_user"])
def test_a_rep_token_without_a_user_behind_it_owns_nobody(api, who):
    me = api.get("/api/v1/me", headers=api.h[who]).json()
    assert me["role"] == "rep" and me["username"] is None
    assert api.get("/api/v1/me", headers=api.h["rep"]).json()["username"] == "LiuJun"
    assert _ids(api, who) == set()
    for url in PERSON_URLS:
        assert api.get(url.format(api.pid["1"]), headers=api.h[who]).status_code == 404, url
    r = api.get("/api/v1/tags/cardio/persons", headers=api.h[who]).json()
    assert r["persons"] == [] and r["total"] == 0
    assert api.get("/api/v1/segments/all_hcps/members", headers=api.h[who]).json()["members"] == []
    assert api.get("/api/v1/events", headers=api.h[who]).json()["events"] == []
    assert api.get("/api/v1/sends", headers=api.h[who]).json()["sends"] == []
