"""Poison in the spool: records that bypassed the door's checks (an older version, a bug) must never
stall the flusher. Good events of every tenant are stored, each poison message ends in the
quarantine with its reason and its bytes as text, and the checkpoint moves — also after a restart.
Both engines, with the real flusher thread."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import orjson
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.db.schema import events, quarantine
from medscrm.ingest.events import LINES, Ingestor, message_record
from medscrm.ingest.protocol.segment import decode_fast, encode_lines, parse_message
from medscrm.ingest.spool import Checkpoint

T0 = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=dt.UTC)


def lines(tenant_id: str, msgs: list[dict], *, raw: dict[str, bytes] | None = None) -> bytes:
    """A spool record of event lines as the fast path writes it; ``raw`` replaces the JSON text of
    placeholder strings with what the door would refuse (``"@inf"`` → ``1e400``)."""
    d = decode_fast(orjson.dumps({"batch": msgs}), is_batch=True)
    assert d is not None
    out, n, bad = encode_lines(d, received_at=T0, tags=(tenant_id, "src_a"))
    assert n == len(msgs) and not bad
    for placeholder, text in (raw or {}).items():
        out = out.replace(orjson.dumps(placeholder), text)
    return LINES + out


def track(mid: str, **extra) -> dict:
    return {"type": "track", "event": "Article Viewed", "userId": "u1", "messageId": mid, **extra}


def second_tenant(engine) -> str:
    with engine.begin() as c:
        return accounts.ensure_tenant(conn=c, slug=f"t-{uuid.uuid4().hex[:10]}")["id"]


def stored(engine, tenant_id: str) -> list[str]:
    with engine.connect() as c:
        q = sa.select(events.c.message_id).where(events.c.tenant_id == tenant_id)
        return sorted(c.execute(q).scalars())


def quarantined(engine, tenant_id: str) -> list[dict]:
    with engine.connect() as c:
        q = sa.select(quarantine).where(quarantine.c.tenant_id == tenant_id)
        return [dict(r) for r in c.execute(q).mappings()]


def spool_poison_between_good(ing: Ingestor, a: str, b: str) -> None:
    """Good events of tenants a and b around every kind of poison, spooled directly."""
    old = parse_message(track("a-old"), received_at=T0)
    bad_object = orjson.dumps(message_record(a, "src_a", old)).replace(b'"props":{}', b'"props":{"n":1e400}')
    deep = b"[" * 100 + b"]" * 100
    records = [
        lines(a, [track("a-1"), track("a-2")]),
        lines(b, [track("b-1"), track("b-inf", properties={"n": "@inf"})], raw={"@inf": b"1e400"}),
        lines(a, [track("a-big", properties={"n": "@big"}), track("a-3")], raw={"@big": b"1" + b"0" * 30}),
        bad_object,  # an object record (the older spool form) that does not decode
        lines(b, [track("b-deep", properties={"n": "@deep"})], raw={"@deep": deep}),
        lines(b, [track("b-utf8", properties={"n": "@x"})], raw={"@x": b'"\xff\xfe"'}),
        lines(a, [track("a-sur", properties={"n": "@s"})], raw={"@s": b'"\\ud800"'}),
        b"\x00garbage that names no tenant",
        lines(b, [track("b-2")]),
        lines(a, [track("a-4")]),
    ]
    ing.spool.append(records).result(5)


def wait_caught_up(ing: Ingestor, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while ing._pos < ing.spool.end and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ing._pos >= ing.spool.end, f"the flusher is stuck at {ing._pos}: {ing.last_error}"


def check_outcome(engine, ing: Ingestor, spool_dir, a: str, b: str) -> None:
    assert stored(engine, a) == ["a-1", "a-2", "a-3", "a-4"]
    assert stored(engine, b) == ["b-1", "b-2"]
    qa, qb = quarantined(engine, a), quarantined(engine, b)
    reasons = {q["reason"] for q in qa + qb}
    assert all(q["code"] == "unstorable" and q["kind"] == "event" for q in qa + qb)
    assert len(qb) == 3 and len(qa) == 3, reasons
    assert any("props.n: is 1e400, which is not a finite number" in r for r in reasons)
    assert any("64-bit" in r for r in reasons)  # the 31-digit integer
    assert any("nests deeper than 64 levels" in r for r in reasons)
    assert any("not valid UTF-8" in r for r in reasons)
    assert any("surrogate" in r for r in reasons)
    assert any("not valid JSON" in r for r in reasons)  # the old-form object record
    raws = [q["payload"]["raw"] for q in qa + qb]  # the bytes, as escaped text
    assert any('"mid":"b-inf"' in r and "1e400" in r for r in raws)
    assert any("\\xff\\xfe" in r for r in raws)
    unattributed = (spool_dir / "poison-unattributed.ndjson").read_text()
    assert "garbage that names no tenant" in unattributed
    assert Checkpoint(spool_dir).load() == ing.spool.end  # the checkpoint moved past all of it


def test_poison_records_are_quarantined_and_every_tenant_stored(tenant, tmp_path):
    a, b = tenant.id, second_tenant(tenant.engine)
    ing = Ingestor(tenant.engine, tmp_path / "spool")
    ing.start()
    try:
        spool_poison_between_good(ing, a, b)
        wait_caught_up(ing)
        check_outcome(tenant.engine, ing, tmp_path / "spool", a, b)
        assert ing.quarantined_poison == 7
        # later events are stored at once: nothing is left to retry
        ing.spool.append([lines(b, [track("b-3")])]).result(5)
        wait_caught_up(ing, timeout=10)
        assert stored(tenant.engine, b) == ["b-1", "b-2", "b-3"]
    finally:
        ing.stop()


def test_poison_left_in_the_spool_by_a_previous_run_is_handled_after_a_restart(tenant, tmp_path):
    a, b = tenant.id, second_tenant(tenant.engine)
    first = Ingestor(tenant.engine, tmp_path / "spool")
    spool_poison_between_good(first, a, b)
    first.spool.close()  # the process ends before anything is stored
    ing = Ingestor(tenant.engine, tmp_path / "spool")
    ing.start()
    try:
        wait_caught_up(ing)
        check_outcome(tenant.engine, ing, tmp_path / "spool", a, b)
    finally:
        ing.stop()
    again = Ingestor(tenant.engine, tmp_path / "spool")  # and a third run finds nothing to redo
    try:
        assert again.flush_pending() == 0
    finally:
        again.stop()
    assert len(quarantined(tenant.engine, a)) == 3
