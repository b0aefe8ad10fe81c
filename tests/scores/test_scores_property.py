"""Property tests: the SQL features agree with a plain-Python reading of the rules for random event
histories (therapy areas, channels, China-time hours, ages), and scores stay in range and decay."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head
from medscrm.scores.config import get_config
from medscrm.scores.service import refresh_all, scores_of
from medscrm.tags import service as tags

from .test_scores import CARDIO, NOW, add_events, add_person

CFG = get_config()
AREAS = ("心衰", "肿瘤", "糖尿病")
CHANNELS = ("wecom", "wechat", "email")
NAMES = ("Article Viewed", "Video Watched", "Webinar Attended", "Survey Completed")
CHINA = dt.timezone(dt.timedelta(hours=8))

event_st = st.tuples(
    st.sampled_from(NAMES),
    st.floats(min_value=0.01, max_value=89.0),  # days ago (inside the preference window)
    st.sampled_from(AREAS),
    st.sampled_from(CHANNELS),
)


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    eng = make_engine(f"duckdb:///{tmp_path_factory.mktemp('prop') / 'p.duckdb'}")
    upgrade_to_head(eng)
    yield eng
    eng.dispose()


def slot_of(ts: dt.datetime) -> str:
    h = ts.astimezone(CHINA).hour
    for name, (lo, hi) in CFG["time_slots"].items():
        if (lo < hi and lo <= h < hi) or (lo > hi and (h >= lo or h < hi)):
            return name
    raise AssertionError(h)


def expected_top(items: list[tuple[str, dt.datetime, str]]) -> str | None:
    """Python reading of the ranking: Σ points × exp(−ln2·age/45), ties → count, then value."""
    w: dict[str, float] = defaultdict(float)
    n: dict[str, int] = defaultdict(int)
    for name, ts, value in items:
        age = (NOW - ts).total_seconds() / 86400
        w[value] += CFG["event_points"][name] * math.exp(-math.log(2) / 45 * age)
        n[value] += 1
    if not w:
        return None
    ranked = sorted(w, key=lambda v: (-round(w[v], 9), -n[v], v))
    if n[ranked[0]] < CFG["min_events_for_preference"]:
        return None
    if len(ranked) > 1 and abs(w[ranked[0]] - w[ranked[1]]) < 1e-6:
        return "tie"  # a near tie: float sums may order either way
    return ranked[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(event_st, min_size=1, max_size=25))
def test_sql_preferences_match_the_rules(duck, evs):
    with duck.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=f"p-{uuid.uuid4().hex[:10]}")["id"]
        pid = add_person(c, tid, CARDIO)
        rows = [
            (name, NOW - dt.timedelta(days=days), {"therapy_area": area, "channel": ch})
            for name, days, area, ch in evs
        ]
        add_events(c, tid, pid, rows)
        refresh_all(c, tenant_id=tid, now=NOW)
        got = {t["key"]: t["value"] for t in tags.tags_of(c, tenant_id=tid, person_id=pid)}
        sc = scores_of(c, tenant_id=tid, person_id=pid)
        refresh_all(c, tenant_id=tid, now=NOW + dt.timedelta(days=30))
        later = scores_of(c, tenant_id=tid, person_id=pid)
    for key, pick in (
        ("content_preference", lambda r: r[2]["therapy_area"]),
        ("channel_preference", lambda r: r[2]["channel"]),
        ("time_preference", lambda r: slot_of(r[1])),
    ):
        exp = expected_top([(r[0], r[1], pick(r)) for r in rows])
        if exp != "tie":
            assert got.get(key) == exp, (key, got, rows)
    n30 = sum(1 for _, days, _, _ in evs if days <= 30)
    al = CFG["activity_level"]
    assert got["activity_level"] == (
        "high" if n30 >= al["high"] else "medium" if n30 >= al["medium"] else "low" if n30 >= 1 else "none"
    )
    for k in ("lead_score", "engagement"):
        assert 0 <= sc[k]["value"] <= 100
        assert later[k]["value"] <= sc[k]["value"]  # no new events: time only lowers the scores
    pts = sum(CFG["event_points"][name] * math.exp(-math.log(2) / 30 * days) for name, days, _, _ in evs)
    assert sc["lead_score"]["reason"]["points"] == pytest.approx(pts, abs=0.02)


def test_china_time_boundaries():
    """06:00 Beijing opens the morning, 22:00 opens the night (hours read in Asia/Shanghai)."""
    day = dt.datetime(2026, 11, 2, tzinfo=CHINA)
    assert slot_of(day + dt.timedelta(hours=5, minutes=59)) == "night"
    assert slot_of(day + dt.timedelta(hours=6)) == "morning"
    assert slot_of(day + dt.timedelta(hours=22)) == "night"


def test_sql_slot_boundaries(duck):
    with duck.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=f"p-{uuid.uuid4().hex[:10]}")["id"]
        expect = {}
        for hour, minute, slot in ((5, 59, "night"), (6, 0, "morning"), (13, 59, "noon"), (22, 0, "night")):
            pid = add_person(c, tid, CARDIO)
            d = (NOW - dt.timedelta(days=2)).astimezone(CHINA).date()
            ts = dt.datetime(d.year, d.month, d.day, hour, minute, tzinfo=CHINA).astimezone(dt.UTC)
            add_events(c, tid, pid, [("Article Viewed", ts, {"therapy_area": "心衰", "channel": "web"})] * 2)
            expect[pid] = slot
        refresh_all(c, tenant_id=tid, now=NOW)
        got = dict(
            c.execute(
                sa.text(
                    "select person_id, value from person_tags where tenant_id = :t and tag_key = 'time_preference'"
                ),
                {"t": tid},
            ).all()
        )
    assert got == expect
