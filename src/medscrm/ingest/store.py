"""The event store: spooled records into the database, in the flusher's transaction.

* events are appended once per ``(tenant, source, messageId)`` — duplicates (client retries, or a
  replay of the spool after a crash) are dropped by an anti-join over the de-duplication window;
* ``identify`` traits become a source record (the identity module resolves it like any import);
* ``alias`` and WeCom/WeChat callbacks leave identity links (previousId ↔ userId, external
  contact ↔ rep);
* bad input becomes a quarantine entry with the reason and the payload as sent.

Two paths: :func:`store_records` takes decoded spool records (callback events, quarantine entries),
:func:`store_lines` hands the fast path's newline-delimited lines to the database as they are and
does the rest in set-based SQL. Also here: the spool form of a message (:func:`message_record`,
:func:`quarantine_record`) and the quarantine rows of records that cannot be stored as they are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from medscrm.common import new_id, sha256_hex, utcnow
from medscrm.db.bulk import append_rows, dumps, insert_new
from medscrm.db.schema import events, identities, identity_links, quarantine, source_records
from medscrm.ingest.importer import build_record
from medscrm.ingest.mapping import Plan, guess_field
from medscrm.ingest.protocol.segment import Message
from medscrm.ingest.suppress import Suppressor, pairs_of_values

DEDUP_WINDOW = dt.timedelta(hours=24)
_ID_TRAITS = {"user_id": "user_id", "anonymous_id": "anonymous_id"}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: First byte of a spool record holding newline-delimited event lines (one record per request,
#: written by the fast path); other records are single JSON objects (``{"k": ...}``).
LINES = b"L"


def _us(v: dt.datetime | None) -> int | None:
    """Spool form of a time: integer microseconds since the epoch (cheaper than ISO text both ways)."""
    if v is None:
        return None
    d = v - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _ts(v: int | str | None) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, str):  # spool records written before the integer form
        return dt.datetime.fromisoformat(v)
    return _EPOCH + dt.timedelta(microseconds=v)


def message_record(tenant_id: str, source_id: str, m: Message, links: list[tuple] | None = None) -> dict:
    """The spool form of one accepted message."""
    return {
        "k": "event",
        "t": tenant_id,
        "s": source_id,
        "type": m.type,
        "mid": m.message_id,
        "event": m.event,
        "uid": m.user_id,
        "aid": m.anonymous_id,
        "pid": m.previous_id,
        "gid": m.group_id,
        "name": m.name,
        "ts": _us(m.timestamp),
        "ots": _us(m.original_timestamp),
        "sat": _us(m.sent_at),
        "rat": _us(m.received_at),
        "props": m.properties,
        "traits": m.traits,
        "ctx": m.context,
        "links": links or [],
    }


def quarantine_record(
    tenant_id: str, source_id: str | None, *, field: str, code: str, reason: str, payload: Any
) -> dict:
    return {
        "k": "quarantine",
        "t": tenant_id,
        "s": source_id,
        "field": field,
        "code": code,
        "reason": reason,
        "payload": payload if isinstance(payload, dict) else {"_raw": payload},
        "at": utcnow().isoformat(),
    }


def tune_for_ingest(engine: sa.Engine, duckdb_checkpoint_threshold: str | None = "256MB") -> None:
    """DuckDB checkpoints once its WAL passes 16 MB: with flushes of ~16 MB of events that is a
    checkpoint at nearly every commit (a third of the flush time). A larger threshold checkpoints
    less often; durability is unchanged (the WAL is replayed when the database is opened)."""
    if engine.dialect.name == "duckdb" and duckdb_checkpoint_threshold:
        if not re.fullmatch(r"\d+(KB|MB|GB)", duckdb_checkpoint_threshold):
            raise ValueError(
                f"duckdb_checkpoint_threshold: {duckdb_checkpoint_threshold!r} is not like '256MB'"
            )
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET GLOBAL checkpoint_threshold = '{duckdb_checkpoint_threshold}'")


def store_records(conn: sa.Connection, recs: list[dict], *, dedup_window: dt.timedelta = DEDUP_WINDOW) -> int:
    """Write one batch of spool records; returns the number of new events stored."""
    rows: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    quarantined: list[dict] = []
    for r in recs:
        if r["k"] == "quarantine":
            quarantined.append(r)
            continue
        key = (r["t"], r["s"], r["mid"])
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "id": new_id("ev"),
                "tenant_id": r["t"],
                "source_id": r["s"],
                "message_id": r["mid"],
                "type": r["type"],
                "event": r["event"],
                "user_id": r["uid"],
                "anonymous_id": r["aid"],
                "previous_id": r["pid"],
                "group_id": r["gid"],
                "name": r["name"],
                "person_id": None,
                "timestamp": _ts(r["ts"]),
                "original_timestamp": _ts(r["ots"]),
                "sent_at": _ts(r["sat"]),
                "received_at": _ts(r["rat"]),
                "properties": r["props"],
                "traits": r["traits"],
                "context": r["ctx"],
                "_links": r.get("links") or [],
            }
        )
    stored = 0
    rows = _suppress_rows(conn, rows)
    if rows:
        _attach_persons(conn, rows)
        stored = _append_new_events(conn, rows, dedup_window)
    if quarantined:
        append_rows(conn, quarantine, [_quarantine_row(q) for q in quarantined])
    return stored


_CALLBACK_ID_TYPES = ("wecom_external_userid", "wechat_openid", "wechat_unionid")


def _suppress_rows(conn: sa.Connection, rows: list[dict]) -> list[dict]:
    """The decoded events less those of erased persons (counted on their tombstones)."""
    if not rows:
        return rows
    sups = {t: Suppressor(conn, t) for t in {r["tenant_id"] for r in rows}}
    if not any(s.active for s in sups.values()):
        return rows
    keep = []
    for r in rows:
        pairs = [("user_id", r["user_id"] or ""), ("anonymous_id", r["anonymous_id"] or "")]
        pairs += [
            (t, str(v)) for t, v in (r["context"] or {}).get("identities", []) if t in _CALLBACK_ID_TYPES
        ]
        if r["type"] == "identify":
            pairs += pairs_of_values(r["traits"] or {})
        if not sups[r["tenant_id"]].check(pairs):
            keep.append(r)
    for s in sups.values():
        s.record(conn)
    return keep


_has_identities: dict[str, tuple[float, bool]] = {}


def _tenant_has_identities(conn: sa.Connection, tenant_id: str) -> bool:
    """Cached for a few seconds: before the first identity run there is nothing to attach."""
    now = time.monotonic()
    hit = _has_identities.get(tenant_id)
    if hit and hit[0] > now:
        return hit[1]
    has = conn.execute(sa.select(identities.c.id).where(identities.c.tenant_id == tenant_id).limit(1)).first()
    _has_identities[tenant_id] = (now + 5.0, has is not None)
    return has is not None


def forget_identity_cache(tenant_id: str) -> None:
    """Identities changed in this process (an identity run): look again at the next flush."""
    _has_identities.pop(tenant_id, None)


def _attach_persons(conn: sa.Connection, rows: list[dict]) -> None:
    """Tag each event with the person its identifiers already resolve to (one query per batch).
    Events of people not yet known keep person_id empty; reads also match them by user id."""
    wanted: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        keys = [("user_id", r["user_id"]), ("anonymous_id", r["anonymous_id"])]
        keys += [(t, v) for t, v in (r["context"] or {}).get("identities", []) if t in _CALLBACK_ID_TYPES]
        for t, v in keys:
            if v:
                wanted.setdefault((r["tenant_id"], t, str(v)), []).append(r)
    if not wanted:
        return
    idn = identities
    for tenant_id in {k[0] for k in wanted}:
        if not _tenant_has_identities(conn, tenant_id):
            continue
        pairs = [(t, v) for (tn, t, v) in wanted if tn == tenant_id]
        for i in range(0, len(pairs), 500):
            chunk = pairs[i : i + 500]
            found = conn.execute(
                sa.select(idn.c.type, idn.c.value, idn.c.person_id).where(
                    idn.c.tenant_id == tenant_id, sa.tuple_(idn.c.type, idn.c.value).in_(chunk)
                )
            ).all()
            for t, v, pid in found:
                for r in wanted[(tenant_id, t, v)]:
                    r["person_id"] = r["person_id"] or pid


def _append_new_events(conn: sa.Connection, rows: list[dict], window: dt.timedelta) -> int:
    since = min(r["received_at"] for r in rows) - window
    e = events
    new_ids = set(
        insert_new(
            conn,
            e,
            rows,
            match=["tenant_id", "source_id", "message_id"],
            where=[e.c.received_at >= since],
            returning=True,
        )
    )
    fresh = [r for r in rows if r["id"] in new_ids]
    _identity_side_effects(conn, fresh)
    return len(fresh)


_recent_links: dict[tuple, None] = {}  # insertion-ordered: a bounded memory of links already stored


def _identity_side_effects(conn: sa.Connection, rows: list[dict]) -> None:
    """identify → source record; alias and callback hints → identity links."""

    recs, links = [], []
    for r in rows:
        for rel, ta, va, tb, vb in r["_links"]:
            key = (r["tenant_id"], rel, ta, str(va), tb, str(vb))
            if key in _recent_links:
                continue
            _recent_links[key] = None
            if len(_recent_links) > 200_000:
                _recent_links.pop(next(iter(_recent_links)))
            links.append(
                {
                    "id": new_id("il"),
                    "tenant_id": r["tenant_id"],
                    "source_id": r["source_id"],
                    "relation": rel,
                    "type_a": ta,
                    "value_a": str(va),
                    "type_b": tb,
                    "value_b": str(vb),
                    "message_id": r["message_id"],
                    "created_at": r["received_at"],
                }
            )
        if r["type"] == "alias" and r["previous_id"] and r["user_id"]:
            links.append(
                {
                    "id": new_id("il"),
                    "tenant_id": r["tenant_id"],
                    "source_id": r["source_id"],
                    "relation": "alias",
                    "type_a": "user_id",
                    "value_a": r["user_id"],
                    "type_b": "user_id",
                    "value_b": r["previous_id"],
                    "message_id": r["message_id"],
                    "created_at": r["received_at"],
                }
            )
        if r["type"] == "identify" and r["traits"]:
            values = {k: v for k, v in r["traits"].items() if not isinstance(v, dict | list)}
            values.update({"userId": r["user_id"], "anonymousId": r["anonymous_id"]})
            plan = _identify_plan(values)
            built = build_record(values, plan, row_number=None)
            if built.record is None:  # traits that fail validation are kept, in the quarantine
                first = built.issues[0]
                append_rows(
                    conn,
                    quarantine,
                    [
                        _quarantine_row(
                            {
                                "t": r["tenant_id"],
                                "s": r["source_id"],
                                "field": f"traits.{first['field']}",
                                "code": first["code"],
                                "reason": first["reason"],
                                "payload": values,
                                "at": r["received_at"].isoformat(),
                            },
                            issues=built.issues,
                        )
                    ],
                )
                continue
            rec = built.record
            rec.update(
                id=new_id("sr"),
                tenant_id=r["tenant_id"],
                source_id=r["source_id"],
                import_id=None,
                record_key=(r["user_id"] or f"anon:{r['anonymous_id']}")[:300],
                received_at=r["received_at"],
            )
            recs.append(rec)
    if links:
        append_rows(conn, identity_links, links)
    if recs:
        append_rows(conn, source_records, recs)


_plans: dict[tuple, Plan] = {}


def _identify_plan(values: dict[str, Any]) -> Plan:
    """The import plan for a set of identify traits (cached by key set: building a Plan and
    guessing fields costs more than normalising the record)."""
    key = tuple((k, values[k] is None) for k in values)
    plan = _plans.get(key)
    if plan is None:
        fields: dict[str, str] = {}
        for k in values:
            f = guess_field(k)
            if f and f not in fields.values():
                fields[k] = f
        plan = Plan(
            fields=fields,
            custom={k: k for k in values if k not in fields and values[k] is not None},
            custom_types={},
            ignored=[],
            record_key=None,
            person_type="hcp",
            warnings=[],
        )
        if len(_plans) > 4096:
            _plans.clear()
        _plans[key] = plan
    return plan


_TAGS = re.compile(
    rb'^\{"k":"[a-z]{1,20}","t":"([A-Za-z0-9_.:-]{1,64})","s":(?:"([A-Za-z0-9_.:-]{1,64})"|null)'
)


def poison_rows(payload: bytes, reason: str) -> list[dict]:
    """A quarantine row for a spooled record that cannot be decoded or stored as it is: its bytes
    as escaped text (``payload.raw``), the reason, and the tenant and source read from the record's
    first bytes (``{"k":…,"t":…,"s":…``); without a tenant, ``tenant_id`` is empty."""
    body = payload[1:] if payload[:1] == LINES else payload
    m = _TAGS.match(body)
    tenant_id, source_id = (
        (m.group(1).decode(), m.group(2).decode() if m.group(2) else None) if m else (None, None)
    )
    text = body.decode("utf-8", "backslashreplace").replace("\x00", "\\u0000")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates, visibly
    q = {
        "t": tenant_id,
        "s": source_id,
        "field": "message",
        "code": "unstorable",
        "reason": f"the spooled message cannot be stored: {reason[:500]}",
        "payload": {"raw": text},
        "at": None,
    }
    return [_quarantine_row(q)]


def refused_rows(payload: bytes, error: str) -> list[dict]:
    """Quarantine rows for a spool record the database refused to store: one per message, with the
    message as sent (text that the database may not take as JSON, e.g. ``\\u0000``, is kept as
    escaped text) and the database's error as the reason. A record that does not decode is kept as
    escaped text (:func:`poison_rows`)."""
    try:
        if payload[:1] == LINES:
            msgs = [orjson.loads(x) for x in payload[1:].splitlines() if x.strip()]
        else:
            rec = orjson.loads(payload)
            msgs = [rec] if rec.get("k") != "quarantine" else [rec.get("payload") or {}]
        if not all(isinstance(m, dict) for m in msgs):
            raise ValueError("not a spool record object")
    except (ValueError, RecursionError, AttributeError) as exc:
        return poison_rows(payload, f"{error}; it is not valid JSON either: {exc}")
    out = []
    for m in msgs:
        q = {
            "t": m.get("t"),
            "s": m.get("s"),
            "field": "message",
            "code": "storage_refused",
            "reason": f"the database refused to store this message: {error[:500]}",
            "payload": {"message": _visible_nul(m)},
            "at": None,
        }
        out.append(_quarantine_row(q))
    return out


def _visible_nul(v: Any) -> Any:
    """NUL characters as the visible text ``\\u0000`` (PostgreSQL's jsonb cannot hold them)."""
    if isinstance(v, str):
        return v.replace("\x00", "\\u0000")
    if isinstance(v, dict):
        return {_visible_nul(k): _visible_nul(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_visible_nul(x) for x in v]
    return v


def _quarantine_row(q: dict, issues: list[dict] | None = None) -> dict:
    payload = q["payload"]
    return {
        "id": new_id("q"),
        "tenant_id": q["t"],
        "source_id": q["s"],
        "kind": "event",
        "import_id": None,
        "file_name": None,
        "row_number": None,
        "field": q["field"],
        "code": q["code"],
        "reason": q["reason"],
        "issues": issues or [{"field": q["field"], "code": q["code"], "reason": q["reason"], "value": None}],
        "payload": payload,
        "fixed_payload": None,
        "payload_hash": sha256_hex((q["s"] or "") + "\x00" + (dumps(payload) or "")),
        "status": "open",
        "created_at": _ts(q["at"]) or utcnow(),
        "resolved_at": None,
        "resolved_by": None,
        "source_record_id": None,
    }


# -- the bulk path: the database parses the spooled lines ----------------------------------------
#
# A request accepted by the fast path is one spool record of newline-delimited JSON lines. The
# flusher hands those bytes to the database as they are — DuckDB reads them with ``read_json``,
# PostgreSQL takes them through ``COPY`` into a ``jsonb`` column — and the rest is set-based SQL:
# de-duplication inside the batch and against the stored window, ids, time conversion, person
# tagging, identity links. No Python object per event on this path; only ``identify`` messages
# come back to Python, to become source records through the importer's normalisation.

_LINE_COLUMNS = (
    "{t: 'VARCHAR', s: 'VARCHAR', type: 'VARCHAR', mid: 'VARCHAR', event: 'VARCHAR', uid: 'VARCHAR', "
    "aid: 'VARCHAR', pid: 'VARCHAR', gid: 'VARCHAR', name: 'VARCHAR', ts: 'BIGINT', ots: 'BIGINT', "
    "sat: 'BIGINT', rat: 'BIGINT', props: 'JSON', traits: 'JSON', ctx: 'JSON'}"
)
_PG_LINE_SELECT = (
    "SELECT j->>'t' AS t, j->>'s' AS s, j->>'type' AS type, j->>'mid' AS mid, j->>'event' AS event, "
    "j->>'uid' AS uid, j->>'aid' AS aid, j->>'pid' AS pid, j->>'gid' AS gid, j->>'name' AS name, "
    "(j->>'ts')::bigint AS ts, (j->>'ots')::bigint AS ots, (j->>'sat')::bigint AS sat, "
    "(j->>'rat')::bigint AS rat, j->'props' AS props, j->'traits' AS traits, j->'ctx' AS ctx "
    "FROM _medscrm_ev_raw"
)
_EVENT_COLUMNS = (
    "id, tenant_id, source_id, message_id, type, event, user_id, anonymous_id, previous_id, group_id, "
    'name, person_id, "timestamp", original_timestamp, sent_at, received_at, properties, traits, context'
)
_stage_counter = itertools.count()


def _lines_source(conn: sa.Connection, chunks: list[bytes], path: Path) -> str:
    """A FROM item yielding the lines' columns (each chunk: ``LINES`` + ndjson)."""
    if conn.dialect.name == "duckdb":
        with open(path, "wb") as fh:
            for c in chunks:
                fh.write(memoryview(c)[1:])
        return (
            f"read_json(:path, format = 'newline_delimited', columns = {_LINE_COLUMNS}, "
            "maximum_object_size = 1048576)"
        )
    # PostgreSQL: COPY the lines verbatim (CSV with quote and delimiter bytes that JSON text never
    # holds) into one jsonb column, then take the columns apart in SQL.
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _medscrm_ev_raw (j jsonb) ON COMMIT DELETE ROWS")
    conn.exec_driver_sql("TRUNCATE _medscrm_ev_raw")
    raw = conn.connection.driver_connection
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY _medscrm_ev_raw (j) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        ) as cp,
    ):
        for c in chunks:
            cp.write(memoryview(c)[1:])
    return f"({_PG_LINE_SELECT})"


def _first_received(chunks: list[bytes]) -> int:
    """The earliest receive time (µs) of the lines: requests spool their lines in one record and
    are received in order within one, so the first line of each record is enough."""
    return min(orjson.loads(c[1 : c.index(b"\n")])["rat"] for c in chunks)


def _us_sql(dialect: str, col: str) -> str:
    if dialect == "duckdb":
        return f"timezone('UTC', make_timestamp(d.{col}))"
    return f"(TIMESTAMPTZ 'epoch' + d.{col} * INTERVAL '1 microsecond')"


def store_lines(
    conn: sa.Connection,
    chunks: list[bytes],
    *,
    dedup_window: dt.timedelta = DEDUP_WINDOW,
    workdir: Path | None = None,
    collect: list | None = None,
) -> int:
    """Store spooled line records (see :data:`LINES`); returns the number of new events. ``collect``:
    a list that receives ``(id, tenant_id, person_id, event)`` of each stored track event whose person
    was known at ingestion (for :attr:`Ingestor.on_stored`)."""
    chunks = [c for c in chunks if len(c) > 1]
    if not chunks:
        return 0
    uuid = _uuid_sql(conn.dialect.name)
    since = _ts(_first_received(chunks)) - dedup_window
    _stage_new_lines(conn, chunks, since=since, workdir=workdir, uuid=uuid)
    # what the batch holds, in one pass over the stage: the steps below that would find nothing to
    # do are skipped (a flush of plain track events is then stage → events and nothing else)
    st = _stage_summary(conn)
    if not st["n"]:
        _drop_stage(conn)
        return 0
    if _suppress_stage(conn, st):
        st = _stage_summary(conn)
        if not st["n"]:
            _drop_stage(conn)
            return 0
    if st["keys"] < st["n"]:
        _drop_batch_duplicates(conn)
    _tag_known_persons(conn, st)
    stored = _insert_stage_events(conn)
    if collect is not None:
        collect.extend(_stored_track_persons(conn))
    _insert_stage_links(conn, st, uuid)
    if st["identifies"]:
        _store_stage_identifies(conn)
    _drop_stage(conn)
    return int(stored)


def _uuid_sql(dialect: str) -> str:
    """A random UUID as text, in the dialect's SQL."""
    return "CAST(gen_random_uuid() AS VARCHAR)" if dialect == "duckdb" else "gen_random_uuid()::text"


def _stage_new_lines(
    conn: sa.Connection, chunks: list[bytes], *, since: dt.datetime, workdir: Path | None, uuid: str
) -> None:
    """Parse the lines into the temporary table ``_medscrm_ev_stage`` (event columns, a new id each),
    leaving out the messages already stored since ``since`` (the de-duplication window)."""
    d = conn.dialect.name
    directory = Path(workdir) if workdir else Path(tempfile.gettempdir())
    path = directory / f"flush-{os.getpid()}-{next(_stage_counter)}.ndjson"
    try:
        lines = _lines_source(conn, chunks, path)
        create = (
            "CREATE OR REPLACE TEMP TABLE _medscrm_ev_stage AS"
            if d == "duckdb"
            else "CREATE TEMP TABLE _medscrm_ev_stage ON COMMIT DROP AS"
        )
        conn.execute(
            sa.text(
                f"{create} SELECT 'ev_' || replace({uuid}, '-', '') AS id, d.t AS tenant_id, "
                "d.s AS source_id, d.mid AS message_id, d.type, d.event, d.uid AS user_id, "
                "d.aid AS anonymous_id, d.pid AS previous_id, d.gid AS group_id, d.name, "
                f'CAST(NULL AS VARCHAR(40)) AS person_id, {_us_sql(d, "ts")} AS "timestamp", '
                f"{_us_sql(d, 'ots')} AS original_timestamp, {_us_sql(d, 'sat')} AS sent_at, "
                f"{_us_sql(d, 'rat')} AS received_at, d.props AS properties, d.traits, d.ctx AS context "
                f"FROM {lines} d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = d.t "
                "AND e.source_id = d.s AND e.message_id = d.mid AND e.received_at >= :since)"
            ),
            {"since": since, "path": str(path)} if d == "duckdb" else {"since": since},
        )
    finally:
        path.unlink(missing_ok=True)


def _stage_summary(conn: sa.Connection) -> sa.RowMapping:
    """Counts over the stage: rows, distinct message keys, tenants, and the rows each later step needs."""
    return (
        conn.execute(
            sa.text(
                "SELECT count(*) AS n, "
                "count(DISTINCT tenant_id || '|' || source_id || '|' || message_id) AS keys, "
                "string_agg(DISTINCT tenant_id, ',') AS tenants, "
                "count(*) FILTER (WHERE user_id IS NOT NULL) AS users, "
                "count(*) FILTER (WHERE anonymous_id IS NOT NULL) AS anons, "
                "count(*) FILTER (WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL) AS links, "
                "count(*) FILTER (WHERE type = 'alias' AND user_id IS NOT NULL "
                "AND previous_id IS NOT NULL) AS aliases, "
                "count(*) FILTER (WHERE type = 'identify') AS identifies FROM _medscrm_ev_stage"
            )
        )
        .mappings()
        .one()
    )


def _suppress_stage(conn: sa.Connection, st: sa.RowMapping) -> int:
    """Drop the staged events of erased persons (their user id, anonymous id or identify traits carry
    an erased identifier, :mod:`medscrm.ingest.suppress`) and count them; returns how many."""
    sups = {t: Suppressor(conn, t) for t in (st["tenants"] or "").split(",") if t}
    sups = {t: s for t, s in sups.items() if s.active}
    if not sups:
        return 0
    dropped = 0
    for t, sup in sups.items():
        rows = conn.execute(
            sa.text(
                "SELECT id, type, user_id, anonymous_id, traits FROM _medscrm_ev_stage WHERE tenant_id = :t"
            ),
            {"t": t},
        ).all()
        ids = []
        for eid, typ, uid, aid, traits in rows:
            pairs = [("user_id", uid or ""), ("anonymous_id", aid or "")]
            if typ == "identify" and traits:
                tr = orjson.loads(traits) if isinstance(traits, str | bytes) else traits
                pairs += pairs_of_values(tr if isinstance(tr, dict) else {})
            if sup.check(pairs):
                ids.append(eid)
        for i in range(0, len(ids), 1000):
            conn.execute(
                sa.text("DELETE FROM _medscrm_ev_stage WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": ids[i : i + 1000]},
            )
        dropped += sup.record(conn)
    return dropped


def _drop_batch_duplicates(conn: sa.Connection) -> None:
    """The same message twice in the batch (a client retry spooled before the first was stored):
    keep the first received (rare: only then a window over the rows)."""
    conn.execute(
        sa.text(
            "DELETE FROM _medscrm_ev_stage WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
            "(PARTITION BY tenant_id, source_id, message_id ORDER BY received_at, id) AS rn "
            "FROM _medscrm_ev_stage) x WHERE rn > 1)"
        )
    )


def _tag_known_persons(conn: sa.Connection, st: sa.RowMapping) -> None:
    """Set ``person_id`` of staged events whose user id (else anonymous id) is a known identity."""
    tenants = (st["tenants"] or "").split(",")
    if not any(_tenant_has_identities(conn, t) for t in tenants if t):
        return
    for col, extra, present in (
        ("user_id", "", st["users"]),
        ("anonymous_id", " AND st.person_id IS NULL", st["anons"]),
    ):
        if not present:
            continue
        conn.execute(
            sa.text(
                "UPDATE _medscrm_ev_stage AS st SET person_id = i.person_id FROM (SELECT tenant_id, "
                "value, min(person_id) AS person_id FROM identities WHERE type = :type "
                f"GROUP BY tenant_id, value) i WHERE i.tenant_id = st.tenant_id AND i.value = st.{col}"
                + extra
            ),
            {"type": col},
        )


def _insert_stage_events(conn: sa.Connection) -> int:
    """Append the staged events; returns how many."""
    stored = conn.execute(
        sa.text(f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM _medscrm_ev_stage")
    ).rowcount
    if stored is None or stored < 0:
        stored = conn.execute(sa.text("SELECT count(*) FROM _medscrm_ev_stage")).scalar() or 0
    return stored


def _stored_track_persons(conn: sa.Connection) -> list[tuple]:
    """``(id, tenant_id, person_id, event)`` of the staged track events whose person is known."""
    return [
        tuple(r)
        for r in conn.execute(
            sa.text(
                "SELECT id, tenant_id, person_id, event FROM _medscrm_ev_stage "
                "WHERE type = 'track' AND person_id IS NOT NULL"
            )
        ).all()
    ]


_LINK_COLS = "id, tenant_id, source_id, relation, type_a, value_a, type_b, value_b, message_id, created_at"


def _insert_stage_links(conn: sa.Connection, st: sa.RowMapping, uuid: str) -> None:
    """Identity links from the staged events: anonymous id → user id (once per pair, not stored
    before) and alias (previousId ↔ userId)."""
    if st["links"]:
        conn.execute(
            sa.text(
                f"INSERT INTO identity_links ({_LINK_COLS}) SELECT 'il_' || replace({uuid}, '-', ''), "
                "tenant_id, min(source_id), 'identified_as', 'anonymous_id', anonymous_id, 'user_id', "
                "user_id, min(message_id), min(received_at) FROM _medscrm_ev_stage st "
                "WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                "identity_links l WHERE l.tenant_id = st.tenant_id AND l.relation = 'identified_as' "
                "AND l.type_a = 'anonymous_id' AND l.value_a = st.anonymous_id AND l.type_b = 'user_id' "
                "AND l.value_b = st.user_id) GROUP BY tenant_id, anonymous_id, user_id"
            )
        )
    if st["aliases"]:
        conn.execute(
            sa.text(
                f"INSERT INTO identity_links ({_LINK_COLS}) SELECT 'il_' || replace({uuid}, '-', ''), "
                "tenant_id, source_id, 'alias', 'user_id', user_id, 'user_id', previous_id, message_id, "
                "received_at FROM _medscrm_ev_stage WHERE type = 'alias' AND user_id IS NOT NULL "
                "AND previous_id IS NOT NULL"
            )
        )


def _store_stage_identifies(conn: sa.Connection) -> None:
    """The staged ``identify`` messages with traits become source records (through the importer's
    normalisation, in Python: the one part of this path that reads rows back)."""
    identify = (
        conn.execute(
            sa.text(
                "SELECT tenant_id, source_id, type, user_id, anonymous_id, previous_id, message_id, "
                "received_at, traits FROM _medscrm_ev_stage WHERE type = 'identify'"
            )
        )
        .mappings()
        .all()
    )
    rows = []
    for r in identify:
        r = dict(r)
        if isinstance(r["traits"], str | bytes):
            r["traits"] = orjson.loads(r["traits"])
        if r["traits"]:
            r["_links"] = []
            rows.append(r)
    if rows:
        _identity_side_effects(conn, rows)


def _drop_stage(conn: sa.Connection) -> None:
    conn.exec_driver_sql("DROP TABLE IF EXISTS _medscrm_ev_stage")
