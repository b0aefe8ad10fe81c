"""Paging stored events (``GET /api/v1/events``, a person's timeline) with the (timestamp, id)
cursor, on both engines: events sharing one timestamp across page boundaries are each returned
exactly once."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import new_id
from medscrm.db.bulk import append_rows
from medscrm.db.schema import events, persons
from medscrm.profiles.events import decode_cursor, encode_cursor

TS = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
SAME = 1000


@pytest.fixture
def api(tenant, tmp_path):
    """A person with 1,000 events at one timestamp, plus 3 newer and 3 older ones, and an admin token."""
    pid = new_id("per")
    with tenant.engine.begin() as c:
        c.execute(
            sa.insert(persons).values(
                id=pid,
                tenant_id=tenant.id,
                person_type="hcp",
                status="active",
                attributes={"name": "张伟"},
                lineage={},
                created_at=TS,
                updated_at=TS,
            )
        )
        stamps = [TS] * SAME + [TS + dt.timedelta(seconds=i) for i in (1, 2, 3)]
        stamps += [TS - dt.timedelta(microseconds=i) for i in (1, 2, 3)]
        rows = [
            {
                "id": new_id("ev"),
                "tenant_id": tenant.id,
                "source_id": "src_test",
                "message_id": new_id("m"),
                "type": "track",
                "event": "Page Viewed",
                "user_id": "u1",
                "person_id": pid,
                "timestamp": ts,
                "received_at": ts,
                "properties": {},
                "context": {},
            }
            for ts in stamps
        ]
        append_rows(c, events, rows)
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool")) as tc:
        tc.h = {"Authorization": f"Bearer {token}"}
        tc.pid = pid
        tc.ids = [r["id"] for r in rows]
        yield tc


def _page_through(tc, url: str, params: dict, limit: int) -> list[dict]:
    seen: list[dict] = []
    cursor = None
    for _ in range(10_000):
        r = tc.get(
            url, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}, headers=tc.h
        )
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("path", ["events", "timeline"])
def test_every_event_exactly_once_across_pages_of_one_timestamp(api, path):
    url, params = (
        ("/api/v1/events", {"user_id": "u1"})
        if path == "events"
        else (f"/api/v1/persons/{api.pid}/timeline", {})
    )
    seen = _page_through(api, url, params, limit=7)
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == len(api.ids) and set(ids) == set(api.ids)
    stamps = [dt.datetime.fromisoformat(e["timestamp"]) for e in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first, across pages too
    # the old parameter is still accepted: events strictly before the given time
    r = api.get(url, params={**params, "before": TS.isoformat(), "limit": 10}, headers=api.h).json()
    assert [dt.datetime.fromisoformat(e["timestamp"]) for e in r["events"]] == [
        TS - dt.timedelta(microseconds=i) for i in (1, 2, 3)
    ]


@pytest.mark.parametrize("bad", ["nope", "", base64.urlsafe_b64encode(b"2026-01-01T00:00:00|ev_1").decode()])
def test_a_cursor_that_is_not_ours_is_a_422_naming_the_field(api, bad):
    for url in ("/api/v1/events", f"/api/v1/persons/{api.pid}/timeline"):
        r = api.get(url, params={"cursor": bad}, headers=api.h)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == "cursor"


@given(
    st.datetimes(
        timezones=st.just(dt.UTC), min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1)
    ),
    st.text(min_size=1, max_size=60),
)
def test_cursor_round_trips(ts, event_id):
    assert decode_cursor(encode_cursor(ts, event_id)) == (ts, event_id)
