"""The flusher's set-based path: spooled event lines parsed and stored by the database itself,
on both engines — de-duplication, exact times, identity side effects, old spool records."""

from __future__ import annotations

import datetime as dt

import orjson
import sqlalchemy as sa

from medscrm.db.schema import events, identity_links, source_records
from medscrm.ingest.events import LINES, Ingestor, message_record, store_lines
from medscrm.ingest.protocol.segment import decode_fast, encode_lines, parse_message

T0 = dt.datetime(2026, 3, 1, 8, 0, 0, 123457, tzinfo=dt.UTC)


def lines_of(tenant, msgs: list[dict], received: dt.datetime, source: str = "src_a") -> bytes:
    d = decode_fast(orjson.dumps({"batch": msgs}), is_batch=True)
    assert d is not None
    out, n, bad = encode_lines(d, received_at=received, tags=(tenant.id, source))
    assert n == len(msgs) and not bad
    return LINES + out


def rows(tenant, table=events) -> list[dict]:
    with tenant.engine.connect() as c:
        q = sa.select(table).where(table.c.tenant_id == tenant.id)
        return [dict(r) for r in c.execute(q).mappings()]


def track(mid: str, **extra) -> dict:
    return {"type": "track", "event": "Article Viewed", "userId": "u1", "messageId": mid, **extra}


def test_duplicates_in_a_batch_and_across_batches_are_stored_once(tenant):
    later = T0 + dt.timedelta(seconds=5)
    first = lines_of(tenant, [track("m1", properties={"copy": "first"}), track("m2")], T0)
    retry = lines_of(tenant, [track("m1", properties={"copy": "retry"})], later)
    with tenant.engine.begin() as c:
        assert store_lines(c, [retry, first]) == 2  # spool order is not receive order here
    with tenant.engine.begin() as c:  # a replay after a crash: nothing new
        assert store_lines(c, [first, retry]) == 0
    got = {r["message_id"]: r for r in rows(tenant)}
    assert sorted(got) == ["m1", "m2"]
    assert got["m1"]["properties"] == {"copy": "first"}  # the first received wins
    # the same message id from another source is another message
    with tenant.engine.begin() as c:
        assert store_lines(c, [lines_of(tenant, [track("m1")], later, source="src_b")]) == 1


def test_times_are_exact_and_skew_corrected(tenant):
    msg = track("t1", timestamp="2026-03-01T07:00:00.000001Z", sentAt="2026-03-01T07:10:00Z")
    with tenant.engine.begin() as c:
        store_lines(c, [lines_of(tenant, [msg], T0)])
    (r,) = rows(tenant)
    assert r["received_at"] == T0
    # the client's clock: event 10 min (less 1 µs) before it was sent → as long before receipt
    assert r["timestamp"] == T0 - dt.timedelta(minutes=10) + dt.timedelta(microseconds=1)
    assert r["original_timestamp"] == dt.datetime(2026, 3, 1, 7, 0, 0, 1, tzinfo=dt.UTC)
    assert r["sent_at"] == dt.datetime(2026, 3, 1, 7, 10, tzinfo=dt.UTC)
    assert r["event"] == "Article Viewed" and r["context"] == {} and r["id"].startswith("ev_")


def test_identity_side_effects(tenant):
    msgs = [
        track("k1", anonymousId="anon-1"),
        track("k2", anonymousId="anon-1"),  # the same pair again: one link
        {"type": "alias", "userId": "u1", "previousId": "anon-0", "messageId": "k3"},
        {
            "type": "identify",
            "userId": "u1",
            "messageId": "k4",
            "traits": {"name": "王芳", "phone": "13700137000"},
        },
    ]
    with tenant.engine.begin() as c:
        assert store_lines(c, [lines_of(tenant, msgs, T0)]) == 4
    with tenant.engine.begin() as c:  # later events of the same pair add no link
        store_lines(c, [lines_of(tenant, [track("k5", anonymousId="anon-1")], T0 + dt.timedelta(hours=1))])
    links = sorted((x["relation"], x["value_a"], x["value_b"]) for x in rows(tenant, identity_links))
    assert links == [("alias", "u1", "anon-0"), ("identified_as", "anon-1", "u1")]
    (rec,) = rows(tenant, source_records)
    assert rec["record_key"] == "u1" and rec["phone"] == "+8613700137000" and rec["name"] == "王芳"


def test_old_spool_records_and_lines_in_one_flush(tenant, tmp_path):
    """Records spooled one object per event (before the line format) are still stored."""
    ing = Ingestor(tenant.engine, tmp_path / "spool")
    try:
        m = parse_message(track("old-1"), received_at=T0)
        ing.spool.append([orjson.dumps(message_record(tenant.id, "src_a", m))]).result(5)
        ing.submit(
            [], lines_of(tenant, [track("new-1"), track("old-1")], T0 + dt.timedelta(seconds=1))[1:]
        ).result(5)
        assert ing.flush_pending() == 2  # spool records
        assert ing.stored_events == 2
    finally:
        ing.stop()
    assert sorted(r["message_id"] for r in rows(tenant)) == ["new-1", "old-1"]


def test_a_request_the_database_refuses_is_quarantined_and_the_rest_stored(tenant, tmp_path):
    """One poison request (a NUL character, which PostgreSQL's jsonb cannot hold) must not stall the
    flusher: a refusal that names the data (a DataError) is not retried — the batch is stored request
    by request at once, the refused request's messages go to quarantine with the database's error,
    and everything else is stored in the same flush."""
    from medscrm.db.schema import quarantine

    ing = Ingestor(tenant.engine, tmp_path / "spool")
    try:
        ing.submit([], lines_of(tenant, [track("ok-1"), track("ok-2")], T0)[1:]).result(5)
        poison = track("bad-1", properties={"title": "心衰\x00指南"})
        ing.submit([], lines_of(tenant, [poison], T0 + dt.timedelta(seconds=1))[1:]).result(5)
        ing.submit([], lines_of(tenant, [track("ok-3")], T0 + dt.timedelta(seconds=2))[1:]).result(5)
        refused = tenant.engine.dialect.name == "postgresql"
        assert ing.flush_once() == 3  # no failed tries first: the other requests are not delayed
        assert ing.flush_pending() == 0
    finally:
        ing.stop()
    stored = sorted(r["message_id"] for r in rows(tenant))
    q = rows(tenant, quarantine)
    if refused:
        assert stored == ["ok-1", "ok-2", "ok-3"] and ing.quarantined_refused == 1
        (row,) = q
        assert row["code"] == "storage_refused" and "database refused" in row["reason"]
        assert row["payload"]["message"]["mid"] == "bad-1"
        assert "\\u0000" in row["payload"]["message"]["props"]["title"]  # kept, visibly
    else:  # DuckDB stores the NUL as it is
        assert stored == ["bad-1", "ok-1", "ok-2", "ok-3"] and not q
