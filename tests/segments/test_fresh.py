"""Incremental freshness on both engines: only affected persons are re-evaluated, history is written,
late events behind the watermark are caught, the schedule runs due full recomputes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from medscrm.common import as_utc, utcnow
from medscrm.db.schema import events, person_tags, segment_history, segment_members, segments
from medscrm.rules import RuleError
from medscrm.segments import fresh
from medscrm.segments import service as segs
from rules.dataset import NOW, days_ago, load

ACTIVE = {"event": "Article Viewed", "op": "gte", "value": 3, "window": {"last": 90, "unit": "days"}}


@pytest.fixture
def ds(tenant):
    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
        segs.create(conn, tenant_id=tenant.id, key="active", rule=ACTIVE, now=NOW)
    return tenant, ids


def _event(tenant_id: str, name: str, *, pid: str | None = None, user_id: str | None = None, received=None):
    return {
        "id": f"ev_{uuid.uuid4().hex[:16]}",
        "tenant_id": tenant_id,
        "source_id": "src",
        "message_id": uuid.uuid4().hex,
        "type": "track",
        "event": name,
        "user_id": user_id,
        "person_id": pid,
        "timestamp": days_ago(0.5),
        "received_at": received or utcnow(),
        "properties": {"therapy_area": "心衰", "minutes": 4},
    }


def _members(engine, tenant_id: str) -> dict[str, dt.datetime]:
    m = segment_members
    with engine.connect() as c:
        return dict(c.execute(sa.select(m.c.person_id, m.c.since).where(m.c.tenant_id == tenant_id)).all())


def _history(engine, tenant_id: str) -> list[tuple[str, str]]:
    h = segment_history
    with engine.connect() as c:
        return sorted(c.execute(sa.select(h.c.person_id, h.c.change).where(h.c.tenant_id == tenant_id)).all())


def test_refresh_persons_reevaluates_only_the_given_persons(ds):
    tenant, ids = ds
    before = _members(tenant.engine, tenant.id)
    assert set(before) == {ids["p1"]}
    # p2 (through its user id) and p3 both reach 3 articles, but only p2 is re-evaluated
    with tenant.engine.begin() as c:
        c.execute(
            sa.insert(events),
            [
                _event(tenant.id, "Article Viewed", user_id="u2"),
                _event(tenant.id, "Article Viewed", pid=ids["p3"]),
            ]
            + [_event(tenant.id, "Article Viewed", pid=ids["p3"])],
        )
        later = NOW + dt.timedelta(minutes=1)
        changed = fresh.refresh_persons(c, tenant_id=tenant.id, person_ids=[ids["p2"]], now=later)
    assert changed == {"active": {"entered": 1, "exited": 0}}
    after = _members(tenant.engine, tenant.id)
    assert set(after) == {ids["p1"], ids["p2"]}  # p3 qualifies too, but was not affected: untouched
    assert after[ids["p1"]] == before[ids["p1"]]  # p1's row is the same row
    assert _history(tenant.engine, tenant.id) == sorted([(ids["p1"], "entered"), (ids["p2"], "entered")])
    with tenant.engine.connect() as c:
        assert segs.get(c, tenant_id=tenant.id, key="active")["member_count"] == 2
    # a full recompute then finds p3 (the schedule's job)
    with tenant.engine.begin() as c:
        res = segs.refresh(c, tenant_id=tenant.id, key="active", now=later)
    assert (res["entered"], res["exited"], res["member_count"]) == (1, 0, 3)


def test_exit_recorded_and_compiled_subset_matches_full_evaluation(ds):
    tenant, ids = ds
    rule = {"and": [{"attr": "department", "op": "eq", "value": "心内科"}, {"not": ACTIVE}]}
    with tenant.engine.begin() as c:
        segs.create(c, tenant_id=tenant.id, key="cardio_quiet", rule=rule, now=NOW)
        full = set(segs.preview(c, tenant_id=tenant.id, rule=rule, now=NOW, sample=100)["sample"])
        # restricted evaluation = full evaluation ∩ the persons, for every subset
        ctx = segs.context(c, tenant_id=tenant.id)
        from medscrm.rules import compile_rule

        for subset in ([ids["p1"]], [ids["p3"], ids["p5"]], list(ids.values())):
            q = compile_rule(rule, tenant_id=tenant.id, now=NOW, ctx=ctx, person_ids=subset)
            assert set(c.execute(q).scalars()) == full & set(subset)
        # p3 becomes active: leaves cardio_quiet, enters active
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", pid=ids["p3"]) for _ in range(2)])
        changed = fresh.refresh_persons(c, tenant_id=tenant.id, person_ids=[ids["p3"]], now=NOW)
    assert changed == {"active": {"entered": 1, "exited": 0}, "cardio_quiet": {"entered": 0, "exited": 1}}
    with tenant.engine.connect() as c:
        hist = segs.history(c, tenant_id=tenant.id, key="cardio_quiet")
    assert (ids["p3"], "exited") in [(h["person_id"], h["change"]) for h in hist]


def test_refresher_follows_new_and_late_events(ds):
    tenant, ids = ds
    r = fresh.Refresher(tenant.engine, full_on_start=False, tenant_id=tenant.id, schedule_every=3600)
    r._last_schedule = 1e18  # no scheduled recompute in this test
    r.step(now=NOW)  # primes the watermark (the dataset's events are from NOW)
    wm = r.watermark
    assert wm is not None and wm >= NOW
    base = r.stats["persons"]
    # two new events of p2 through its user id: p2 enters
    with tenant.engine.begin() as c:
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", user_id="u2") for _ in range(2)])
    assert r.step(now=NOW)
    assert r.stats["persons"] - base == 1
    assert ids["p2"] in _members(tenant.engine, tenant.id)
    assert r.watermark > wm
    # an event stored late, with received_at behind the watermark: still found (p3 reaches 3 with it)
    behind = r.watermark - dt.timedelta(seconds=1)
    with tenant.engine.begin() as c:
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", pid=ids["p3"]) for _ in range(2)])
    r.step(now=NOW)
    with tenant.engine.begin() as c:
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", pid=ids["p4"], received=behind)])
    late_before = r.stats["late_events"]
    r.step(now=NOW)
    assert r.stats["late_events"] == late_before + 1
    # p4 has 1 article only: re-evaluated, stays out; nothing seen twice
    events_seen = r.stats["events"]
    r.step(now=NOW)
    assert r.stats["events"] == events_seen
    assert set(_members(tenant.engine, tenant.id)) == {ids["p1"], ids["p2"], ids["p3"]}
    assert [c for p, c in _history(tenant.engine, tenant.id) if p == ids["p4"]] == []


def test_refresher_thread_in_the_app_lifespan(ds, tmp_path):
    """The server's lifespan starts the refresher: an event sent through the collection API moves the
    person into the segment without any explicit refresh."""
    import base64
    import time

    from fastapi.testclient import TestClient

    from medscrm.accounts import service as accounts
    from medscrm.app import create_app

    tenant, ids = ds
    rule = {"event": "Survey Completed", "window": {"last": 3650, "unit": "days"}}
    with tenant.engine.begin() as c:
        segs.create(c, tenant_id=tenant.id, key="attended", rule=rule, refresh_every_minutes=0)
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="web", kind="segment")
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token
    auth = "Basic " + base64.b64encode(f"{src.write_key}:".encode()).decode()
    # follow this tenant only from the start: other tests' events on the shared PostgreSQL database
    # (some written with received_at in the future) must not set the watermark
    app = create_app(
        tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher={"tenant_id": tenant.id}
    )
    with TestClient(app) as tc:
        deadline = time.monotonic() + 20  # the fast lane has primed its watermark, the start-up recompute ran
        while time.monotonic() < deadline and not (
            app.state.refresher.watermark is not None and app.state.refresher.stats["full_recomputes"] >= 2
        ):
            time.sleep(0.02)

        def attended() -> set[str]:
            with tenant.engine.connect() as c:
                return {
                    m["person_id"] for m in segs.members(c, tenant_id=tenant.id, key="attended", role="admin")
                }

        assert ids["p2"] not in attended()
        r = tc.post(
            "/v1/track",
            json={"userId": "u2", "event": "Survey Completed", "messageId": "m-fresh-1"},
            headers={"Authorization": auth},
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ids["p2"] not in attended():
            time.sleep(0.05)
        bearer = {"Authorization": f"Bearer {token}"}
        st = tc.get("/api/v1/segments/refresher", headers=bearer).json()
        assert st["enabled"] and st["running"] and st["events"] >= 1 and st["last_error"] is None, st
        r = tc.put("/api/v1/segments/attended", json={"refresh_every_minutes": -5}, headers=bearer)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "refresh_every_minutes"
        r = tc.put("/api/v1/segments/attended", json={"refresh_every_minutes": 15}, headers=bearer)
        assert r.status_code == 200 and r.json()["refresh_every_minutes"] == 15
    with tenant.engine.connect() as c:
        mem = segs.members(c, tenant_id=tenant.id, key="attended", role="admin")
    assert ids["p2"] in {m["person_id"] for m in mem}


def test_schedule_runs_due_full_recomputes(ds):
    tenant, ids = ds
    with tenant.engine.begin() as c:
        segs.create(c, tenant_id=tenant.id, key="every5", rule=ACTIVE, now=NOW, refresh_every_minutes=5)
        segs.create(c, tenant_id=tenant.id, key="never", rule=ACTIVE, now=NOW, refresh_every_minutes=0)
        segs.create(c, tenant_id=tenant.id, key="snap", rule=ACTIVE, now=NOW, kind="static")
        with pytest.raises(RuleError) as exc:
            segs.update(c, tenant_id=tenant.id, key="every5", refresh_every_minutes=-1)
        assert exc.value.problems[0].path == "refresh_every_minutes"
    with tenant.engine.connect() as c:
        assert fresh.due_segments(c, now=NOW + dt.timedelta(minutes=4), tenant_id=tenant.id) == []
        assert fresh.due_segments(c, now=NOW + dt.timedelta(minutes=6), tenant_id=tenant.id) == [
            (tenant.id, "every5")
        ]
        # "active" has the default interval (60 minutes)
        assert fresh.due_segments(c, now=NOW + dt.timedelta(minutes=61), tenant_id=tenant.id) == [
            (tenant.id, "active"),
            (tenant.id, "every5"),
        ]
    with tenant.engine.begin() as c:  # data changes that no event announced (p3 gets 2 more articles)
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", pid=ids["p3"]) for _ in range(2)])
    at = NOW + dt.timedelta(minutes=6)
    r = fresh.Refresher(tenant.engine, full_on_start=False, tenant_id=tenant.id, schedule_every=0)
    r.watermark = utcnow() + dt.timedelta(days=1)  # ignore the events: only the schedule acts
    r.step(now=at)
    assert r.stats["full_recomputes"] == 1
    s = segments
    with tenant.engine.connect() as c:
        rows = dict(c.execute(sa.select(s.c.key, s.c.member_count).where(s.c.tenant_id == tenant.id)).all())
        last = c.execute(
            sa.select(s.c.last_refreshed_at).where(s.c.tenant_id == tenant.id, s.c.key == "every5")
        ).scalar_one()
        assert fresh.due_segments(c, now=at, tenant_id=tenant.id) == []
    assert rows == {"active": 1, "every5": 2, "never": 1, "snap": 1}
    assert as_utc(last) == at
    h = segs.history
    with tenant.engine.connect() as c:
        assert (ids["p3"], "entered") in [
            (x["person_id"], x["change"]) for x in h(c, tenant_id=tenant.id, key="every5")
        ]


def test_refresh_all_cli(ds, monkeypatch, tmp_path):
    """`medscrm segments refresh --all` recomputes every dynamic segment of the tenant."""
    if ds[0].engine.dialect.name != "duckdb":
        pytest.skip("the CLI opens its own workspace: exercised on an embedded DuckDB file")
    from typer.testing import CliRunner

    from medscrm.cli import app

    tenant, ids = ds
    monkeypatch.setenv("MEDSCRM_DATABASE_URL", str(tenant.engine.url))
    monkeypatch.setenv("MEDSCRM_TENANT", tenant.slug)
    from medscrm.config import get_settings

    get_settings.cache_clear()
    tenant.engine.dispose()
    try:
        res = CliRunner().invoke(app, ["segments", "refresh", "--all"])
        assert res.exit_code == 0, res.output
        assert "active:" in res.output and "1 segment(s) recomputed" in res.output
        res = CliRunner().invoke(app, ["segments", "refresh"])
        assert res.exit_code == 2
    finally:
        get_settings.cache_clear()
        from medscrm.db import reset_engines

        reset_engines()


def test_new_events_only_reevaluate_segments_that_read_them(ds):
    tenant, ids = ds
    opened = {"event": "App Opened", "window": {"last": 30, "unit": "days"}}
    tiered = {
        "and": [
            {"tag": "potential_tier", "op": "eq", "value": "B"},
            {"event": "Nothing Here", "op": "lt", "value": 1},
        ]
    }
    with tenant.engine.begin() as c:
        tags_define(c, tenant.id)
        segs.create(c, tenant_id=tenant.id, key="opened", rule=opened, now=NOW)
        segs.create(c, tenant_id=tenant.id, key="tier_b", rule=tiered, now=NOW)
        c.execute(sa.insert(events), [_event(tenant.id, "App Opened", pid=ids["p3"])])
        # p3's new events were articles only: "opened" is not re-evaluated for p3
        got = fresh.refresh_persons(
            c,
            tenant_id=tenant.id,
            person_ids=[ids["p3"]],
            now=NOW,
            events={ids["p3"]: ["Article Viewed"]},
            models_changed=False,
        )
        assert "opened" not in got
        got = fresh.refresh_persons(
            c,
            tenant_id=tenant.id,
            person_ids=[ids["p3"]],
            now=NOW,
            events={ids["p3"]: ["App Opened"]},
            models_changed=False,
        )
        assert got == {"opened": {"entered": 1, "exited": 0}}
        # a tag change (the behaviour model's job) moves people only in segments that read tags, when models changed
        c.execute(
            sa.update(person_tags)
            .where(person_tags.c.tenant_id == tenant.id, person_tags.c.person_id == ids["p2"])
            .where(person_tags.c.tag_key == "potential_tier")
            .values(value="A")
        )
        kw = {
            "tenant_id": tenant.id,
            "person_ids": [ids["p2"]],
            "now": NOW,
            "events": {ids["p2"]: ["App Opened"]},
        }
        assert fresh.refresh_persons(c, models_changed=False, **kw) == {}
        assert fresh.refresh_persons(c, models_changed=True, **kw) == {"tier_b": {"entered": 0, "exited": 1}}
        plan = fresh.build_plan(c, tenant_id=tenant.id)
    reads = {it.key: (sorted(it.events), it.reads_models) for it in plan.items}
    assert reads["opened"] == (["App Opened"], False)
    assert reads["tier_b"] == (["Nothing Here"], True)


def tags_define(conn, tenant_id: str) -> None:
    from medscrm.tags import service as tags

    tags.define(
        conn, tenant_id=tenant_id, key="potential_tier", value_type="string", category="behaviour_model"
    )


def test_ingestor_hands_stored_persons_to_c1_at_once(ds, tmp_path):
    """The in-process Ingestor tells the refresher which persons' events it just committed: they go
    to the real-time scores' queue without waiting for the fast lane's poll, and that poll (which still updates their
    memberships) does not queue them for the real-time scores a second time; events stored otherwise still are."""
    from ingest.test_store_lines import lines_of, track
    from medscrm.ingest.events import Ingestor

    tenant, ids = ds
    r = fresh.Refresher(tenant.engine, full_on_start=False, tenant_id=tenant.id, scores=True)
    r._c1 = lambda conn, **kw: 0  # the real-time scores are not run here: only what reaches its queue
    r.poll_events()  # primes the watermark
    ing = Ingestor(tenant.engine, tmp_path / "spool")
    ing.on_stored = r.notify_stored
    try:
        msg = track("push-1", userId="u2")
        ing.submit([], lines_of(tenant, [msg], utcnow())[1:]).result(5)
        assert ing.flush_pending() == 1
    finally:
        ing.stop()
    assert r._queue == {tenant.id: {ids["p2"]}} and r.stats["c1_pushed"] == 1
    with tenant.engine.begin() as c:  # an event stored by another process: no notification
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", pid=ids["p3"])])
    affected = r.poll_events()
    assert set(affected[tenant.id]) == {ids["p2"], ids["p3"]}  # memberships: both
    assert set(r._c1_affected[tenant.id]) == {ids["p3"]}  # scored from the poll: only the unannounced one
