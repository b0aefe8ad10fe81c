"""The scheduled scores batch run by the server (``medscrm.scores.schedule`` through the segment refresher's
slow lane): due once a day at a China time, catch-up after downtime, manual runs count, bad setting."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from medscrm.common import MedscrmError
from medscrm.db.schema import audit_log, person_scores, person_tags
from medscrm.scores import schedule
from medscrm.segments.fresh import Refresher

from .test_scores import add_events, add_person

CHINA = dt.timezone(dt.timedelta(hours=8))
AT = dt.time(2, 0)
# Tuesday 2026-11-24 02:30 China time (18:30 UTC the day before): just after the day's slot
AFTER = dt.datetime(2026, 11, 24, 2, 30, tzinfo=CHINA).astimezone(dt.UTC)


def _hcp_with_events(tenant, now: dt.datetime) -> str:
    with tenant.engine.begin() as c:
        pid = add_person(c, tenant.id, {"name": "王医生", "title": "主任医师", "department": "心血管内科"})
        add_events(
            c,
            tenant.id,
            pid,
            [("Article Viewed", now - dt.timedelta(days=d), {"therapy_area": "心衰"}) for d in (1, 2, 3)],
        )
    return pid


def _model_rows(tenant, pid: str) -> tuple[int, int]:
    with tenant.engine.connect() as c:
        n_tags = c.execute(
            sa.select(sa.func.count()).where(
                person_tags.c.tenant_id == tenant.id, person_tags.c.person_id == pid
            )
        ).scalar_one()
        n_scores = c.execute(
            sa.select(sa.func.count()).where(
                person_scores.c.tenant_id == tenant.id, person_scores.c.person_id == pid
            )
        ).scalar_one()
    return n_tags, n_scores


def _runs(tenant) -> list[tuple[dt.datetime, str]]:
    with tenant.engine.connect() as c:
        rows = c.execute(
            sa.select(audit_log.c.occurred_at, audit_log.c.actor)
            .where(audit_log.c.tenant_id == tenant.id, audit_log.c.action == schedule.ACTION)
            .order_by(audit_log.c.occurred_at)
        ).all()
    return [(t if t.tzinfo else t.replace(tzinfo=dt.UTC), a) for t, a in rows]


def test_parse_at_accepts_times_and_off_and_names_the_setting_when_wrong():
    assert schedule.parse_at("02:00") == dt.time(2, 0)
    assert schedule.parse_at(" 23:59 ") == dt.time(23, 59)
    assert schedule.parse_at("7:05") == dt.time(7, 5)
    for off in ("off", "OFF", "", None, "none"):
        assert schedule.parse_at(off) is None
    for bad in ("24:00", "2pm", "02:60", "0200", "02:00:00"):
        with pytest.raises(MedscrmError) as ei:
            schedule.parse_at(bad)
        assert schedule.ENV in str(ei.value) and repr(bad) in str(ei.value)


@given(
    now=st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(dt.UTC)
    ),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_last_slot_is_the_latest_china_time_at_or_before_now(now, hour, minute):
    slot = schedule.last_slot(now, dt.time(hour, minute))
    local = slot.astimezone(CHINA)
    assert (local.hour, local.minute, local.second, local.microsecond) == (hour, minute, 0, 0)
    assert slot <= now < slot + dt.timedelta(days=1)


def test_batch_runs_once_per_day_at_its_time_and_catches_up(tenant):
    pid = _hcp_with_events(tenant, AFTER)
    assert _model_rows(tenant, pid) == (0, 0)
    # never scored: due at once, whatever the time of day
    first = AFTER - dt.timedelta(hours=12)  # 14:30 China time the day before
    res = schedule.run_due(tenant.engine, now=first, at=AT, tenant_id=tenant.id)
    assert [r["tenant_id"] for r in res] == [tenant.id] and res[0]["persons"] == 1
    n_tags, n_scores = _model_rows(tenant, pid)
    assert n_tags >= 3 and n_scores == 4  # lead_score, engagement, potential, academic
    assert _runs(tenant) == [(first, "scheduler")]
    # later the same (China) day, before the next 02:00: nothing due
    assert (
        schedule.run_due(tenant.engine, now=first + dt.timedelta(hours=11), at=AT, tenant_id=tenant.id) == []
    )
    # past 02:00 China time: due again, once
    assert len(schedule.run_due(tenant.engine, now=AFTER, at=AT, tenant_id=tenant.id)) == 1
    assert (
        schedule.run_due(tenant.engine, now=AFTER + dt.timedelta(hours=3), at=AT, tenant_id=tenant.id) == []
    )
    # a server down for two days runs one batch when it is back, not one per missed day
    back = AFTER + dt.timedelta(days=2, hours=5)
    assert len(schedule.run_due(tenant.engine, now=back, at=AT, tenant_id=tenant.id)) == 1
    assert [a for _, a in _runs(tenant)] == ["scheduler"] * 3
    # off: nothing, ever
    assert (
        schedule.run_due(tenant.engine, now=back + dt.timedelta(days=5), at=None, tenant_id=tenant.id) == []
    )


def test_a_manual_run_counts_and_the_refresher_runs_the_due_batch(tenant):
    pid = _hcp_with_events(tenant, AFTER)
    with tenant.engine.begin() as c:  # as `medscrm scores refresh` does
        from medscrm.scores.service import refresh_all

        res = refresh_all(c, tenant_id=tenant.id, now=AFTER)
        schedule.record(c, tenant_id=tenant.id, now=AFTER, actor="cli", res=res)
    r = Refresher(tenant.engine, tenant_id=tenant.id, scores_batch_at=AT)
    assert r.run_scores_batch(now=AFTER + dt.timedelta(hours=1), force_check=True) == []
    # the next day, past 02:00: the refresher's slow lane runs it, and says so in its stats
    nxt = AFTER + dt.timedelta(days=1)
    res = r.run_scores_batch(now=nxt, force_check=True)
    assert [x["tenant_id"] for x in res] == [tenant.id]
    assert r.stats["scores_batches"] == 1 and r.stats["last_scores_batch"]["persons"] == 1
    assert [a for _, a in _runs(tenant)] == ["cli", "scheduler"]
    # looked for at most once a minute: a second call right away does not even look
    assert r.run_scores_batch(now=nxt + dt.timedelta(days=1)) == []
    # scores were written by the batch at its clock
    with tenant.engine.connect() as c:
        at = c.execute(
            sa.select(sa.func.max(person_scores.c.computed_at)).where(person_scores.c.person_id == pid)
        ).scalar_one()
    assert (at if at.tzinfo else at.replace(tzinfo=dt.UTC)) == nxt
    # a refresher without the setting never runs it
    assert (
        Refresher(tenant.engine, tenant_id=tenant.id).run_scores_batch(now=nxt + dt.timedelta(days=3)) == []
    )


def test_the_batch_commits_per_range_and_gives_the_single_transaction_result(tenant):
    pids = [_hcp_with_events(tenant, AFTER) for _ in range(5)]
    from medscrm.scores.service import refresh_all, refresh_all_committed

    seen = []
    res = refresh_all_committed(
        tenant.engine, tenant_id=tenant.id, now=AFTER, chunk=2, last=lambda c, r: seen.append(r["persons"])
    )
    assert res["chunks"] == 3 and res["persons"] == 5 and seen == [5]
    assert all(_model_rows(tenant, p)[1] == 4 for p in pids)
    # the same batch in one transaction finds nothing to change: the ranges covered everyone, once
    with tenant.engine.begin() as c:
        again = refresh_all(c, tenant_id=tenant.id, now=AFTER)
    assert again["persons"] == 5 and again["changed"] == 0 and again["chunks"] == 1
