"""The journey engine on DuckDB and PostgreSQL: waits across restarts, branches on the rule DSL, A/B
splits, re-entry and caps, pause, versions, triggers, references, concurrent PostgreSQL workers."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from journeys.support import NOW, define_tags, linear, make_persons
from medscrm.common import InvalidInput, new_id
from medscrm.db import make_engine
from medscrm.db.schema import (
    audit_log,
    events,
    identity_links,
    journey_enrollments,
    journey_step_runs,
    person_tags,
    persons,
    segment_history,
    tasks,
)
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.journeys.model import JourneyError

DAY = dt.timedelta(days=1)


def _tick(engine, tenant_id, now, worker="w"):
    return je.tick(engine, worker_id=worker, now=now, tenant_id=tenant_id, dispatch_sends=False)


def _setup(tenant, definition, n=10, attrs=None, tag_keys=("t1", "t2", "t3")):
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, n, attrs)
        define_tags(c, tenant.id, *tag_keys)
        js.create(c, tenant_id=tenant.id, definition=definition, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key=definition["key"], actor="test", now=NOW)
    return pids


def _enroll(tenant, key, pids, now=NOW, ref=None):
    with tenant.engine.begin() as c:
        return js.enroll(c, tenant_id=tenant.id, key=key, person_ids=pids, actor="test", now=now, ref=ref)


def _tags(tenant, key):
    with tenant.engine.connect() as c:
        return dict(
            c.execute(
                sa.select(person_tags.c.person_id, person_tags.c.value).where(
                    person_tags.c.tenant_id == tenant.id, person_tags.c.tag_key == key
                )
            ).all()
        )


def _statuses(tenant):
    with tenant.engine.connect() as c:
        return dict(
            c.execute(
                sa.select(journey_enrollments.c.person_id, journey_enrollments.c.status).where(
                    journey_enrollments.c.tenant_id == tenant.id
                )
            ).all()
        )


def test_wait_survives_restart_with_a_new_engine(tenant, request):
    d = linear(
        "waits",
        [
            {"id": "before", "type": "add_tag", "tag": "t1", "value": "a"},
            {"id": "w", "type": "wait", "duration": "1d"},
            {"id": "after", "type": "add_tag", "tag": "t2", "value": "b"},
        ],
    )
    pids = _setup(tenant, d, n=5)
    _enroll(tenant, "waits", pids)
    assert _tick(tenant.engine, tenant.id, NOW)["steps"] == 10  # tag + wait entered
    assert len(_tags(tenant, "t1")) == 5 and not _tags(tenant, "t2")
    assert _tick(tenant.engine, tenant.id, NOW + DAY / 2)["steps"] == 0  # still waiting
    # "restart": a new engine object on the same database, no cached definitions
    url = tenant.engine.url.render_as_string(hide_password=False)
    if tenant.engine.dialect.name == "duckdb":
        tenant.engine.dispose()
    je._defs.clear()
    fresh = make_engine(url)
    try:
        with fresh.connect() as c:
            stats = {s["step_id"]: s for s in js.step_stats(c, tenant_id=tenant.id, key="waits")}
        assert stats["w"]["waiting"] == 5
        assert _tick(fresh, tenant.id, NOW + DAY + dt.timedelta(seconds=1))["steps"] == 5
        with fresh.connect() as c:
            st = dict(
                c.execute(
                    sa.select(person_tags.c.person_id, person_tags.c.value).where(
                        person_tags.c.tenant_id == tenant.id, person_tags.c.tag_key == "t2"
                    )
                ).all()
            )
            assert st == {p: "b" for p in pids}
            assert js.enrollment_counts(c, tenant_id=tenant.id, key="waits") == {"completed": 5}
    finally:
        if tenant.engine.dialect.name == "duckdb":
            fresh.dispose()


def test_branch_on_rule_dsl_and_goal(tenant):
    d = linear(
        "branchy",
        [
            {
                "id": "cardio",
                "type": "branch",
                "condition": {"attr": "department", "op": "eq", "value": "心血管内科"},
                "then": "tag_c",
                "else": "tag_o",
            },
            {"id": "tag_c", "type": "add_tag", "tag": "t1", "value": "cardio", "next": "win"},
            {"id": "tag_o", "type": "add_tag", "tag": "t1", "value": "other", "next": "end"},
            {"id": "win", "type": "goal"},
            {"id": "end", "type": "exit"},
        ],
    )
    pids = _setup(tenant, d, n=6)  # even index = 心血管内科
    _enroll(tenant, "branchy", pids)
    _tick(tenant.engine, tenant.id, NOW)
    tags = _tags(tenant, "t1")
    assert {p: tags[p] for p in pids} == {
        p: ("cardio" if i % 2 == 0 else "other") for i, p in enumerate(pids)
    }
    with tenant.engine.connect() as c:
        stats = {s["step_id"]: s for s in js.step_stats(c, tenant_id=tenant.id, key="branchy")}
    assert stats["cardio"]["entered"] == 6 and stats["cardio"]["converted"] == 3
    assert stats["win"]["converted"] == 3 and stats["end"]["entered"] == 3
    assert sorted(_statuses(tenant).values()) == ["completed"] * 3 + ["converted"] * 3


def test_journey_goal_converts_before_the_next_step(tenant):
    d = linear(
        "goalie",
        [
            {"id": "w", "type": "wait", "duration": "1h"},
            {"id": "after", "type": "add_tag", "tag": "t2", "value": "x"},
        ],
        goal={"tag": "t1", "op": "eq", "value": "won"},
    )
    pids = _setup(tenant, d, n=4)
    _enroll(tenant, "goalie", pids)
    _tick(tenant.engine, tenant.id, NOW)
    with tenant.engine.begin() as c:  # two of them reach the goal while waiting
        c.execute(
            sa.insert(person_tags),
            [
                {
                    "tenant_id": tenant.id,
                    "person_id": p,
                    "tag_key": "t1",
                    "value": "won",
                    "since": NOW,
                    "source": "rule",
                }
                for p in pids[:2]
            ],
        )
    _tick(tenant.engine, tenant.id, NOW + dt.timedelta(hours=2))
    st = _statuses(tenant)
    assert [st[p] for p in pids] == ["converted", "converted", "completed", "completed"]
    assert set(_tags(tenant, "t2")) == set(pids[2:])


def test_ab_split_proportions(tenant):
    d = linear(
        "ab",
        [
            {
                "id": "split",
                "type": "split",
                "branches": [
                    {"weight": 30, "next": "a", "label": "A"},
                    {"weight": 70, "next": "b", "label": "B"},
                ],
            },
            {"id": "a", "type": "add_tag", "tag": "t1", "value": "A", "next": "end"},
            {"id": "b", "type": "add_tag", "tag": "t1", "value": "B", "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    )
    pids = _setup(tenant, d, n=600)
    _enroll(tenant, "ab", pids)
    _tick(tenant.engine, tenant.id, NOW)
    values = list(_tags(tenant, "t1").values())
    assert len(values) == 600
    share_a = values.count("A") / 600
    assert 0.22 < share_a < 0.38, share_a


@pytest.mark.parametrize(
    ("reentry", "expected"),
    [
        ({"mode": "never"}, [1, 0, 0]),
        ({"mode": "after", "days": 5}, [1, 0, 1]),
        ({"mode": "always"}, [1, 1, 1]),
    ],
)
def test_reentry_rules(tenant, reentry, expected):
    d = linear("re", [{"id": "t", "type": "add_tag", "tag": "t1", "value": "x"}], reentry=reentry)
    (pid,) = _setup(tenant, d, n=1)
    got = []
    for day in (0, 2, 6):
        now = NOW + day * DAY
        got.append(_enroll(tenant, "re", [pid], now=now)["enrolled"])
        _tick(tenant.engine, tenant.id, now)  # completes the enrollment
    assert got == expected


def test_caps_and_active_person_is_not_enrolled_twice(tenant):
    d = linear(
        "capped",
        [{"id": "w", "type": "wait", "duration": "1d"}, {"id": "t", "type": "add_tag", "tag": "t1"}],
        reentry={"mode": "always"},
        caps={"max_enrollments": 3, "per_person": 2},
    )
    pids = _setup(tenant, d, n=5)
    r = _enroll(tenant, "capped", pids[:2])
    assert r["enrolled"] == 2
    r = _enroll(tenant, "capped", pids[:1])
    assert r == {"enrolled": 0, "skipped": {"already_active": 1}}
    _tick(tenant.engine, tenant.id, NOW)
    _tick(tenant.engine, tenant.id, NOW + 2 * DAY)
    r = _enroll(tenant, "capped", pids, now=NOW + 3 * DAY)
    assert r["enrolled"] == 1 and r["skipped"] == {"max_enrollments": 4}
    _tick(tenant.engine, tenant.id, NOW + 3 * DAY)
    _tick(tenant.engine, tenant.id, NOW + 5 * DAY)
    assert "active" not in set(_statuses(tenant).values())
    with tenant.engine.begin() as c:
        c.execute(
            sa.update(journey_enrollments)
            .where(journey_enrollments.c.tenant_id == tenant.id)
            .values(entered_at=NOW - 100 * DAY)
        )
    # per person: the first person has been in twice
    d2 = {**d, "caps": {"per_person": 2}}
    with tenant.engine.begin() as c:
        js.update(c, tenant_id=tenant.id, key="capped", definition=d2, actor="test", now=NOW + 6 * DAY)
    r = _enroll(tenant, "capped", pids[:1], now=NOW + 6 * DAY)
    assert r == {"enrolled": 0, "skipped": {"per_person_cap": 1}}
    # the API refuses unknown persons and journeys without an api trigger
    r = _enroll(tenant, "capped", ["p_nobody"], now=NOW + 6 * DAY)
    assert r["skipped"] == {"unknown_person": 1}


def test_pause_stops_progress_resume_continues_stop_ends(tenant):
    d = linear(
        "pausable",
        [
            {"id": "w", "type": "wait", "duration": "1h"},
            {"id": "t", "type": "add_tag", "tag": "t1"},
            {"id": "w2", "type": "wait", "duration": "1h"},
            {"id": "t2", "type": "add_tag", "tag": "t2"},
        ],
    )
    pids = _setup(tenant, d, n=3)
    _enroll(tenant, "pausable", pids)
    _tick(tenant.engine, tenant.id, NOW)
    with tenant.engine.begin() as c:
        assert js.pause(c, tenant_id=tenant.id, key="pausable", actor="test")["status"] == "paused"
        with pytest.raises(InvalidInput):
            js.enroll(c, tenant_id=tenant.id, key="pausable", person_ids=pids, actor="test")
    assert _tick(tenant.engine, tenant.id, NOW + DAY)["steps"] == 0
    assert not _tags(tenant, "t1")
    with tenant.engine.begin() as c:
        js.resume(c, tenant_id=tenant.id, key="pausable", actor="test")
    assert _tick(tenant.engine, tenant.id, NOW + DAY)["steps"] == 6  # t1 and w2 for each
    assert len(_tags(tenant, "t1")) == 3
    with tenant.engine.begin() as c:
        js.stop(c, tenant_id=tenant.id, key="pausable", actor="test")
        actions = list(
            c.execute(
                sa.select(audit_log.c.action)
                .where(audit_log.c.tenant_id == tenant.id, audit_log.c.object_id == "pausable")
                .order_by(audit_log.c.occurred_at)
            ).scalars()
        )
    assert actions == [
        "journey.create",
        "journey.start",
        "journey.enroll",
        "journey.pause",
        "journey.resume",
        "journey.stop",
    ]
    assert _tick(tenant.engine, tenant.id, NOW + 3 * DAY)["steps"] == 0
    assert set(_statuses(tenant).values()) == {"stopped"} and not _tags(tenant, "t2")


def test_versions_migrate_with_step_map_or_keep(tenant):
    v1 = linear(
        "ver",
        [
            {"id": "w", "type": "wait", "duration": "1d"},
            {"id": "old_tag", "type": "add_tag", "tag": "t1", "value": "v1"},
        ],
    )
    pids = _setup(tenant, v1, n=4)
    _enroll(tenant, "ver", pids[:2])
    _tick(tenant.engine, tenant.id, NOW)
    v2 = linear(
        "ver",
        [
            {"id": "w2", "type": "wait", "duration": "2d"},
            {"id": "new_tag", "type": "add_tag", "tag": "t1", "value": "v2"},
        ],
    )
    with tenant.engine.begin() as c:
        with pytest.raises(JourneyError) as ei:  # people are at "w", which v2 lacks
            js.update(c, tenant_id=tenant.id, key="ver", definition=v2, actor="test", migrate=True, now=NOW)
        assert ei.value.problems[0].path == "step_map.w"
        j = js.update(c, tenant_id=tenant.id, key="ver", definition=v2, actor="test", migrate=False, now=NOW)
        assert j["current_version"] == 2 and j["active_by_version"] == {1: 2}
    _enroll(tenant, "ver", pids[2:])  # new people go to v2
    _tick(tenant.engine, tenant.id, NOW + DAY + dt.timedelta(minutes=1))  # v1 people finish their wait
    tags = _tags(tenant, "t1")
    assert tags == {pids[0]: "v1", pids[1]: "v1"}
    # v3: migrate the v2 people, mapping w2 -> wait
    v3 = linear(
        "ver",
        [
            {"id": "wait", "type": "wait", "duration": "1h"},
            {"id": "tag3", "type": "add_tag", "tag": "t1", "value": "v3"},
        ],
    )
    with tenant.engine.begin() as c:
        j = js.update(
            c,
            tenant_id=tenant.id,
            key="ver",
            definition=v3,
            actor="test",
            migrate=True,
            step_map={"w2": "wait"},
            now=NOW + DAY + dt.timedelta(minutes=1),
        )
        assert j["moved"] == 2 and j["active_by_version"] == {3: 2}
    _tick(tenant.engine, tenant.id, NOW + DAY + dt.timedelta(minutes=2))  # the mapped step starts afresh
    _tick(tenant.engine, tenant.id, NOW + DAY + dt.timedelta(hours=2))
    tags = _tags(tenant, "t1")
    assert tags == {pids[0]: "v1", pids[1]: "v1", pids[2]: "v3", pids[3]: "v3"}


def test_event_and_segment_triggers(tenant):
    d = {
        "key": "trig",
        "name": "trig",
        "triggers": [
            {
                "type": "event",
                "event": "Webinar Registered",
                "where": {"property": "topic", "op": "eq", "value": "心衰"},
            },
            {"type": "segment_entry", "segment": "seg1"},
        ],
        "steps": [{"id": "t", "type": "add_tag", "tag": "t1", "value": "in"}],
    }
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, 4)
        define_tags(c, tenant.id, "t1")
        from medscrm.segments import service as segs

        segs.create(
            c, tenant_id=tenant.id, key="seg1", rule={"attr": "name", "op": "eq", "value": "nobody"}, now=NOW
        )
        js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key="trig", actor="test", now=NOW)

    def ev(pid, topic, at):
        return {
            "id": new_id("ev"),
            "tenant_id": tenant.id,
            "source_id": "src",
            "message_id": new_id("m"),
            "type": "track",
            "event": "Webinar Registered",
            "person_id": pid,
            "timestamp": at,
            "received_at": at,
            "properties": {"topic": topic},
        }

    with tenant.engine.begin() as c:
        c.execute(
            sa.insert(events),
            [
                ev(pids[0], "心衰", NOW - dt.timedelta(minutes=1)),  # before the start: ignored
                ev(pids[1], "心衰", NOW + dt.timedelta(seconds=10)),
                ev(pids[2], "糖尿病", NOW + dt.timedelta(seconds=20)),  # filtered out
            ],
        )
        c.execute(
            sa.insert(segment_history),
            [
                {
                    "tenant_id": tenant.id,
                    "segment_id": je.segment_id(c, tenant_id=tenant.id, key="seg1"),
                    "person_id": pids[3],
                    "change": "entered",
                    "changed_at": NOW + dt.timedelta(seconds=5),
                }
            ],
        )
    r = _tick(tenant.engine, tenant.id, NOW + dt.timedelta(minutes=1))
    assert r["enrolled"] == 2
    assert set(_tags(tenant, "t1")) == {pids[1], pids[3]}
    # polling again (the watermark overlap re-reads the same rows) enrols nobody twice
    assert _tick(tenant.engine, tenant.id, NOW + dt.timedelta(minutes=2))["enrolled"] == 0
    with tenant.engine.connect() as c:
        refs = sorted(
            c.execute(
                sa.select(journey_enrollments.c.trigger_ref).where(
                    journey_enrollments.c.tenant_id == tenant.id
                )
            ).scalars()
        )
    assert refs[0].startswith("event:") and refs[1].startswith("seg:entered:")


def test_schedule_trigger_fires_for_the_segment(tenant):
    d = {
        "key": "sched",
        "name": "sched",
        "triggers": [
            {
                "type": "schedule",
                "at": (NOW + dt.timedelta(hours=1)).isoformat(),
                "every": "7d",
                "segment": "all",
            }
        ],
        "steps": [{"id": "t", "type": "add_tag", "tag": "t1", "value": "in"}],
        "reentry": {"mode": "always"},
    }
    with tenant.engine.begin() as c:
        make_persons(c, tenant.id, 3)
        define_tags(c, tenant.id, "t1")
        from medscrm.segments import service as segs

        segs.create(c, tenant_id=tenant.id, key="all", rule={"person_type": "hcp"}, now=NOW)
        js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key="sched", actor="test", now=NOW)
    assert _tick(tenant.engine, tenant.id, NOW)["enrolled"] == 0
    assert _tick(tenant.engine, tenant.id, NOW + dt.timedelta(hours=2))["enrolled"] == 3
    assert _tick(tenant.engine, tenant.id, NOW + dt.timedelta(hours=3))["enrolled"] == 0
    assert _tick(tenant.engine, tenant.id, NOW + dt.timedelta(days=7, hours=2))["enrolled"] == 3


def test_task_goes_to_the_rep(tenant):
    d = linear(
        "tasks",
        [{"id": "call", "type": "task", "title": "拜访 · visit", "due": "2d", "assignee": "fallback"}],
    )
    pids = _setup(
        tenant,
        d,
        n=3,
        attrs=lambda i: {0: {"wecom_external_userid": "wmEXT0"}, 1: {"owner_rep": "rep_b"}}.get(i, {}),
    )
    with tenant.engine.begin() as c:
        c.execute(
            sa.insert(identity_links).values(
                id=new_id("il"),
                tenant_id=tenant.id,
                source_id="wecom",
                relation="wecom_contact_of",
                type_a="wecom_external_userid",
                value_a="wmEXT0",
                type_b="wecom_user",
                value_b="rep_a",
                created_at=NOW,
            )
        )
    _enroll(tenant, "tasks", pids)
    _tick(tenant.engine, tenant.id, NOW)
    _tick(tenant.engine, tenant.id, NOW)  # nothing more: exactly one task each
    with tenant.engine.connect() as c:
        rows = c.execute(
            sa.select(tasks.c.person_id, tasks.c.assignee, tasks.c.due_at).where(
                tasks.c.tenant_id == tenant.id
            )
        ).all()
    got = {r.person_id: r.assignee for r in rows}
    assert got == {pids[0]: "rep_a", pids[1]: "rep_b", pids[2]: "fallback"}
    assert len(rows) == 3


def test_reference_validation_names_nodes(tenant):
    d = {
        "key": "refs",
        "name": "refs",
        "triggers": [{"type": "segment_entry", "segment": "no_such_segment"}],
        "steps": [
            {
                "id": "b",
                "type": "branch",
                "condition": {"attr": "hospitl", "op": "eq", "value": "x"},
                "then": "s",
                "else": "t",
            },
            {"id": "s", "type": "send", "channel": "sms", "content": "no_such_content", "next": "t"},
            {"id": "t", "type": "add_tag", "tag": "undefined_tag"},
        ],
        "goal": {"tag": "nope", "op": "exists"},
    }
    with tenant.engine.begin() as c, pytest.raises(JourneyError) as ei:
        js.create(c, tenant_id=tenant.id, definition=d, actor="test")
    p = {x.path: x.reason for x in ei.value.problems}
    assert p["triggers[0].segment"] == "unknown segment 'no_such_segment'"
    assert (
        p["steps[b].condition.attr"].startswith("unknown attribute")
        and "hospital" in p["steps[b].condition.attr"]
    )
    assert p["steps[s].content"] == "unknown content 'no_such_content'"
    assert "no credentials for channel 'sms'" in p["steps[s].channel"]
    assert "unknown tag 'undefined_tag'" in p["steps[t].tag"]
    assert "goal.tag" in p
    with tenant.engine.connect() as c:
        assert js.list_journeys(c, tenant_id=tenant.id) == []  # nothing saved


@pytest.mark.postgres
def test_two_postgres_workers_never_run_the_same_step(pg_engine):
    from medscrm.accounts import service as accounts

    with pg_engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=f"t-{new_id('x')[-10:]}")["id"]
        pids = make_persons(c, tid, 1500)
        define_tags(c, tid, "t1", "t2")
        d = linear(
            "race",
            [
                {"id": "a", "type": "add_tag", "tag": "t1", "value": "a"},
                {"id": "w", "type": "wait", "duration": "1s"},
                {"id": "b", "type": "add_tag", "tag": "t2", "value": "b"},
            ],
        )
        js.create(c, tenant_id=tid, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tid, key="race", actor="test", now=NOW)
        js.enroll(c, tenant_id=tid, key="race", person_ids=pids, actor="test", now=NOW)
    done = {"w1": 0, "w2": 0}
    errors = []

    def work(name):
        try:
            for now in (NOW, NOW + dt.timedelta(seconds=5)):
                while (n := je.run_due(pg_engine, worker_id=name, limit=50, now=now, tenant_id=tid)) > 0:
                    done[name] += n
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert done["w1"] > 0 and done["w2"] > 0  # both did work
    with pg_engine.connect() as c:
        r = journey_step_runs
        per = c.execute(
            sa.select(r.c.enrollment_id, r.c.step_id, sa.func.count())
            .where(r.c.tenant_id == tid)
            .group_by(r.c.enrollment_id, r.c.step_id)
        ).all()
        workers = set(c.execute(sa.select(r.c.worker_id).where(r.c.tenant_id == tid)).scalars())
        n_t2 = c.execute(
            sa.select(sa.func.count())
            .select_from(person_tags)
            .where(person_tags.c.tenant_id == tid, person_tags.c.tag_key == "t2")
        ).scalar()
    assert len(per) == 1500 * 3 and all(n == 1 for *_, n in per)
    assert sum(done.values()) == 1500 * 3 and workers == {"w1", "w2"} and n_t2 == 1500
    _ = persons


def test_in_process_runner_of_serve_moves_people_on_duckdb(tenant):
    d = linear(
        "bg",
        [
            {"id": "w", "type": "wait", "duration": "1s"},
            {"id": "t", "type": "add_tag", "tag": "t1", "value": "done"},
        ],
    )
    pids = _setup(tenant, d, n=3)
    _enroll(tenant, "bg", pids, now=dt.datetime.now(dt.UTC))
    runner = je.start_background(tenant.engine)
    if tenant.engine.dialect.name == "postgresql":
        assert runner is None  # PostgreSQL runs `medscrm worker` processes instead
        return
    try:
        deadline = time.monotonic() + 30
        while len(_tags(tenant, "t1")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runner.stop()
    assert _tags(tenant, "t1") == {p: "done" for p in pids} and runner.last_error is None
