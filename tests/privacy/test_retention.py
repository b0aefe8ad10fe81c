"""Retention on DuckDB and PostgreSQL: per category, rows older than the policy are deleted or
anonymised and younger ones kept; a held person's rows survive; the audit floor refuses; a dry run
changes nothing; policy changes are audited with the old and new value; the daily schedule."""

from __future__ import annotations

import datetime as dt
import fnmatch
import string

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.common import InvalidInput, utcnow
from medscrm.db import schema as s
from medscrm.privacy import retention, service
from privacy.helpers import plant
from privacy.retention_helpers import row, seed

TABLES = {
    "events": s.events,
    "health": s.events,
    "source_records": s.source_records,
    "quarantine": s.quarantine,
    "webhook_deliveries": s.webhook_deliveries,
    "sends": s.sends,
    "audit": s.audit_log,
}


def _set_all(conn, tenant_id, action):
    """Every category at the shortest allowed keep and ``action`` (where the category allows it)."""
    floors = retention.floors()
    for key, cat in retention.CATEGORIES.items():
        retention.set_policy(
            conn,
            tenant_id=tenant_id,
            category=key,
            actor="dpo",
            keep_days=floors.get(key, 30),
            action=action if action in cat.actions else cat.actions[0],
        )


def test_delete_removes_old_rows_and_keeps_young_ones(tenant):
    with tenant.engine.begin() as c:
        _set_all(c, tenant.id, "delete")
        old = seed(c, tenant.id, age_days=2000)
        young = seed(c, tenant.id, age_days=10)
    res = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo")
    assert res["status"] == "done" and not res["dry_run"]
    with tenant.engine.connect() as c:
        for key, table in TABLES.items():
            assert row(c, table, young[key]) is not None, key
            if key == "source_records":  # anonymised, never deleted
                assert row(c, table, old[key])["raw"] == {}
                continue
            assert row(c, table, old[key]) is None, key
        # the rows that go with a deleted delivery and send went too; the young ones stay
        assert row(c, s.webhook_attempts, old["attempt"]) is None
        assert row(c, s.tracked_links, old["link"], key="token") is None
        assert row(c, s.webhook_attempts, young["attempt"]) is not None
        assert row(c, s.tracked_links, young["link"], key="token") is not None
    r = res["result"]
    assert r["quarantine"]["done"] == 1 and r["sends"]["done"] == 1 and r["audit"]["done"] == 1
    assert r["events"]["done"] == 2  # the page view and the glucose reading (every event is in `events`)
    assert r["quarantine"]["oldest"] == r["quarantine"]["newest"]


def test_anonymise_keeps_the_row_without_personal_fields(tenant):
    with tenant.engine.begin() as c:
        _set_all(c, tenant.id, "anonymise")
        old = seed(c, tenant.id, age_days=2000, phone="+8613911112222")
        young = seed(c, tenant.id, age_days=5, phone="+8613933334444")
    res = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo")
    with tenant.engine.connect() as c:
        ev = row(c, s.events, old["events"])
        assert ev["event"] == "page_view" and ev["type"] == "track" and ev["timestamp"] is not None
        assert [
            ev[k] for k in ("user_id", "anonymous_id", "person_id", "properties", "traits", "context")
        ] == [None] * 6
        sr = row(c, s.source_records, old["source_records"])
        assert sr["raw"] == {} and sr["attributes"] is None
        q = row(c, s.quarantine, old["quarantine"])
        assert (
            q["payload"] == {} and q["fixed_payload"] is None and q["issues"] is None and q["code"] == "bad"
        )
        d = row(c, s.webhook_deliveries, old["webhook_deliveries"])
        assert d["payload"] == {} and d["status"] == "delivered"
        sd = row(c, s.sends, old["sends"])
        assert sd["person_id"] == "" and sd["variables"] is None and sd["detail"] is None
        assert sd["status"] == "delivered" and sd["channel"] == "sms"
        a = row(c, s.audit_log, old["audit"])
        assert a["action"] == "profile.view" and a["object_id"] is None and a["detail"] is None
        # nothing of the old phone is left in any category's rows (a source record keeps its
        # normalised fields: the golden record's lineage; its raw payload went); the young rows are intact
        for key, table in TABLES.items():
            if key != "source_records":
                assert "13911112222" not in repr(row(c, table, old[key])), key
            assert "13933334444" in repr(row(c, table, young[key])) or key == "webhook_deliveries", key
    assert res["result"]["events"]["done"] == 2
    # a second run finds nothing left to anonymise
    again = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo", dry_run=True)
    assert {k: v["rows"] for k, v in again["result"].items()} == dict.fromkeys(retention.CATEGORIES, 0)


def test_a_held_persons_rows_survive_and_are_reported_as_held(tenant):
    with tenant.engine.begin() as c:
        _set_all(c, tenant.id, "delete")
        p = plant(c, tenant.id)
        held = seed(c, tenant.id, age_days=2000, person_id=p.person_id, phone=p.phone)
        other = seed(c, tenant.id, age_days=2000)
        service.hold(c, tenant_id=tenant.id, identifier=p.person_id, actor="dpo", reason="case 12")
    report = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo", dry_run=True)["result"]
    for key in ("events", "health", "quarantine", "webhook_deliveries", "sends", "audit", "source_records"):
        assert report[key]["held"] >= 1, key
    retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo", batch=1)
    with tenant.engine.connect() as c:
        for key, table in TABLES.items():
            kept = row(c, table, held[key])
            assert kept is not None, key
            assert p.phone in repr(kept) or p.person_id in repr(kept), key  # untouched, not anonymised
            if key != "source_records":
                assert row(c, table, other[key]) is None, key


def test_the_audit_floor_refuses_a_shorter_policy(tenant, monkeypatch):
    with tenant.engine.begin() as c:
        with pytest.raises(InvalidInput) as exc:
            retention.set_policy(c, tenant_id=tenant.id, category="audit", actor="dpo", keep_days=365)
        assert exc.value.field == "keep_days"
        assert "audit" in str(exc.value) and "1095" in str(exc.value)
        with pytest.raises(InvalidInput, match="source_records: 'delete' is not allowed"):
            retention.set_policy(
                c, tenant_id=tenant.id, category="source_records", actor="dpo", action="delete"
            )
        with pytest.raises(InvalidInput, match="health: name the event-name patterns"):
            retention.set_policy(c, tenant_id=tenant.id, category="health", actor="dpo", patterns=[])
        assert retention.policies(c, tenant_id=tenant.id)["audit"]["source"] == "default"
    monkeypatch.setenv("MEDSCRM_RETENTION_AUDIT_FLOOR_DAYS", "400")
    from medscrm.config import get_settings

    get_settings.cache_clear()
    try:
        with tenant.engine.begin() as c:
            retention.set_policy(c, tenant_id=tenant.id, category="audit", actor="dpo", keep_days=400)
        monkeypatch.setenv("MEDSCRM_RETENTION_AUDIT_FLOOR_DAYS", "1095")
        get_settings.cache_clear()
        # a floor raised after the policy was saved: the run refuses the category, names the floor
        res = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo")
        assert "1095" in res["result"]["audit"]["refused"]
    finally:
        monkeypatch.delenv("MEDSCRM_RETENTION_AUDIT_FLOOR_DAYS")
        get_settings.cache_clear()


def test_a_dry_run_changes_nothing_and_reports_each_category(tenant):
    with tenant.engine.begin() as c:
        _set_all(c, tenant.id, "delete")
        old = seed(c, tenant.id, age_days=1500)
        seed(c, tenant.id, age_days=1)

    def snapshot():
        with tenant.engine.connect() as c:
            return {k: repr(row(c, t, old[k])) for k, t in TABLES.items()}

    before = snapshot()
    res = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo", dry_run=True)
    assert snapshot() == before
    r = res["result"]
    assert res["dry_run"] and r["quarantine"]["rows"] == 1 and r["quarantine"]["done"] == 0
    assert r["events"]["rows"] == 2 and r["health"]["rows"] == 1
    assert dt.datetime.fromisoformat(r["sends"]["oldest"]) < utcnow() - dt.timedelta(days=1499)
    with tenant.engine.connect() as c:
        runs = retention.list_runs(c, tenant_id=tenant.id)
        assert runs[0]["id"] == res["id"] and runs[0]["dry_run"] and runs[0]["status"] == "done"
        audit = c.execute(
            sa.select(s.audit_log.c.detail).where(
                s.audit_log.c.tenant_id == tenant.id,
                s.audit_log.c.action == "retention.run",
                s.audit_log.c.object_id == res["id"],
            )
        ).scalar_one()
        assert audit["dry_run"] is True and audit["counts"]["quarantine"]["rows"] == 1


def test_policy_changes_are_audited_with_old_and_new(tenant):
    with tenant.engine.begin() as c:
        default = retention.policies(c, tenant_id=tenant.id)["events"]
        assert (
            default["source"] == "default"
            and default["keep_days"] == retention.defaults()["events"]["keep_days"]
        )
        retention.set_policy(
            c, tenant_id=tenant.id, category="events", actor="dpo", keep_days=100, patterns="wecom.*, page_*"
        )
        retention.set_policy(c, tenant_id=tenant.id, category="events", actor="dpo2", action="delete")
        pol = retention.policies(c, tenant_id=tenant.id)["events"]
        assert (pol["keep_days"], pol["action"], pol["patterns"], pol["source"]) == (
            100,
            "delete",
            ["wecom.*", "page_*"],
            "tenant",
        )
        rows = c.execute(
            sa.select(s.audit_log.c.actor, s.audit_log.c.detail)
            .where(s.audit_log.c.tenant_id == tenant.id, s.audit_log.c.action == "retention.policy")
            .order_by(s.audit_log.c.occurred_at)
        ).all()
    assert [r.actor for r in rows] == ["dpo", "dpo2"]
    assert (
        rows[0].detail["old"]["keep_days"] == default["keep_days"]
        and rows[0].detail["new"]["keep_days"] == 100
    )
    assert rows[1].detail["old"]["action"] == "anonymise" and rows[1].detail["new"]["action"] == "delete"


def test_event_patterns_limit_the_events_category(tenant):
    with tenant.engine.begin() as c:
        retention.set_policy(
            c,
            tenant_id=tenant.id,
            category="events",
            actor="dpo",
            keep_days=30,
            action="delete",
            patterns=["page_*"],
        )
        retention.set_policy(c, tenant_id=tenant.id, category="health", actor="dpo", enabled=False)
        old = seed(c, tenant.id, age_days=400)
    res = retention.run(tenant.engine, tenant_id=tenant.id, actor="dpo", categories=["events", "health"])
    assert res["result"]["health"]["skipped"] == "disabled"
    with tenant.engine.connect() as c:
        assert row(c, s.events, old["events"]) is None  # page_view matches page_*
        assert row(c, s.events, old["health"]) is not None  # glucose_reading does not


def test_the_daily_schedule_runs_due_tenants_once_per_slot(tenant):
    at = retention.parse_at("03:00")
    now = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)  # 04:00 in China: after today's slot
    with tenant.engine.begin() as c:
        retention.set_policy(c, tenant_id=tenant.id, category="quarantine", actor="dpo", keep_days=30)
        old = seed(c, tenant.id, age_days=100, now=now)
    out = retention.run_due(tenant.engine, now=now, at=at, tenant_id=tenant.id)
    assert [o["tenant_id"] for o in out] == [tenant.id] and out[0]["done"]["quarantine"] == 1
    with tenant.engine.connect() as c:
        assert row(c, s.quarantine, old["quarantine"]) is None
        assert retention.list_runs(c, tenant_id=tenant.id)[0]["actor"] == "scheduler"
    assert retention.run_due(tenant.engine, now=now + dt.timedelta(hours=1), at=at, tenant_id=tenant.id) == []
    assert retention.run_due(tenant.engine, now=now, at=None, tenant_id=tenant.id) == []
    with pytest.raises(Exception, match="MEDSCRM_RETENTION_AT"):
        retention.parse_at("25:00")


def test_the_refresher_slow_lane_calls_the_daily_jobs(tenant):
    from medscrm.segments.fresh import Refresher

    calls = []
    ref = Refresher(tenant.engine, scores=False, daily_jobs=[lambda: calls.append(1)])
    ref.run_daily_jobs(force_check=True)
    ref.run_daily_jobs()  # within the check interval: not again
    assert calls == [1]


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.text(alphabet=string.ascii_letters[:4] + "_.%*?\\", min_size=1, max_size=6),
    name=st.text(alphabet=string.ascii_letters[:4] + "_.%\\", max_size=8),
)
def test_event_globs_compile_to_like_patterns_that_match_as_fnmatch(pattern, name):
    import duckdb

    con = duckdb.connect()
    got = con.execute("SELECT ? LIKE ? ESCAPE '\\'", [name, retention._like(pattern)]).fetchone()[0]
    assert got == fnmatch.fnmatchcase(name, pattern)


def test_the_served_app_schedules_retention_only_when_configured(tenant, monkeypatch):
    from medscrm.app import _retention_jobs
    from medscrm.config import get_settings

    monkeypatch.delenv("MEDSCRM_RETENTION_AT", raising=False)
    get_settings.cache_clear()
    try:
        assert _retention_jobs(tenant.engine) == []  # off by default
        monkeypatch.setenv("MEDSCRM_RETENTION_AT", "00:00")
        get_settings.cache_clear()
        (job,) = _retention_jobs(tenant.engine)
        job()  # every tenant is due (never run): a real run by the scheduler
        with tenant.engine.connect() as c:
            (last,) = retention.list_runs(c, tenant_id=tenant.id, limit=1)
        assert last["actor"] == "scheduler" and not last["dry_run"] and last["status"] == "done"
    finally:
        monkeypatch.delenv("MEDSCRM_RETENTION_AT", raising=False)
        get_settings.cache_clear()
