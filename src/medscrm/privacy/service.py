"""Data-subject requests under PIPL Arts. 44–47: export, correct, erase, restrict, legal hold.

Each request is about ONE person, found by any identifier (:func:`find_person`); an identifier that
finds nobody is answered with :class:`~medscrm.common.NotFound` ("no person found for …") and
nothing is written. Every request that finds its person leaves a ``dsr_requests`` row (status,
timestamps, the identifier only as a keyed hash) and an audit row without personal data.

* **export** — every row about the person in every table of :data:`~medscrm.privacy.tables.PERSON_TABLES`,
  as a zip of JSON and CSV per table with a manifest (rows per table, sha256 per file).
* **erase** — deletes those rows (audit rows are kept with their detail removed), keeps keyed hashes
  of the identifiers (``dsr_tombstones``) so re-imports and new events are suppressed
  (:mod:`medscrm.ingest.suppress`), drops the person's rows from the identity feature index, and
  records a certificate (rows removed per table, hashed identifiers, its own sha256). Refused while
  the person is under legal hold. Spooled events not yet stored meet the tombstones when the
  flusher stores them, so they are suppressed too.
* **correct** — a field of the golden record changes through a manual source record, so the
  lineage names where the value came from and later identity runs keep it.
* **restrict** / **lift** — processing restricted: no segment entry, no journey step, no send
  (reason ``processing_restricted``) until lifted. **hold** / **release** — legal hold.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from medscrm.access import resolve_person_id
from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, new_id, utcnow
from medscrm.db.schema import (
    dsr_requests,
    dsr_tombstones,
    identities,
    person_records,
    person_restrictions,
    persons,
    segment_members,
    segments,
    sends,
    source_records,
    tenants,
    webhook_deliveries,
)
from medscrm.exports import SafeDictWriter
from medscrm.ingest import suppress
from medscrm.ingest.store import forget_identity_cache
from medscrm.persons.restrictions import LEGAL_HOLD, RESTRICTED
from medscrm.privacy.tables import PERSON_TABLES, Subject, jsonable
from medscrm.schema.person import STANDARD_FIELDS, normalize_record
from medscrm.webhooks import outbox

#: how an identifier may be named (``auto`` tries them in a sensible order)
KINDS: dict[str, str | None] = {
    "auto": None,
    "person_id": None,
    "source_record": None,
    "phone": "phone",
    "email": "email",
    "license_no": "license_no",
    "wecom": "wecom_external_userid",
    "openid": "wechat_openid",
    "unionid": "wechat_unionid",
    "user_id": "user_id",
}
REQUEST_KINDS = ("export", "correct", "erase", "restrict", "lift", "hold", "release")
#: fields of the golden record a correction may change
CORRECTABLE = tuple(f for f in STANDARD_FIELDS if f != "person_type")


# --- finding the person ----------------------------------------------------------------------------
def _identity_person(conn: sa.Connection, tenant_id: str, type_: str, value: str) -> str | None:
    v = suppress.normalise(type_, value)
    if not v:
        return None
    return conn.execute(
        sa.select(identities.c.person_id)
        .where(identities.c.tenant_id == tenant_id, identities.c.type == type_, identities.c.value == v)
        .order_by(identities.c.person_id)
        .limit(1)
    ).scalar()


def find_person(conn: sa.Connection, *, tenant_id: str, identifier: str, kind: str = "auto") -> str:
    """The (surviving) person id for an identifier: a person id, a source-record id, a phone
    number, an e-mail address, a licence number, a WeCom external userid, a WeChat openid/unionid or
    an event user id. Raises NotFound naming the identifier when no person has it."""
    if kind not in KINDS:
        raise InvalidInput("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    value = (identifier or "").strip()
    if not value:
        raise InvalidInput(
            "identifier", "give a person id, phone, e-mail, WeCom/WeChat id, licence or record id"
        )
    pid: str | None = None
    if kind in ("auto", "person_id"):
        try:
            pid = resolve_person_id(conn, tenant_id, value)["id"]
        except NotFound:
            pid = None
    if pid is None and kind in ("auto", "source_record"):
        pid = conn.execute(
            sa.select(person_records.c.person_id).where(
                person_records.c.tenant_id == tenant_id, person_records.c.source_record_id == value
            )
        ).scalar()
    if pid is None and kind != "auto" and KINDS[kind]:
        pid = _identity_person(conn, tenant_id, KINDS[kind], value)
    if pid is None and kind == "auto":
        order = ["email"] if "@" in value else ["phone", "license_no"]
        order += ["wecom_external_userid", "wechat_openid", "wechat_unionid", "user_id", "anonymous_id"]
        for t in order:
            pid = _identity_person(conn, tenant_id, t, value)
            if pid:
                break
    if pid is None:
        label = "identifier" if kind == "auto" else kind
        raise NotFound(f"no person found for {label} {value!r}")
    return resolve_person_id(conn, tenant_id, pid)["id"]


def subject(conn: sa.Connection, *, tenant_id: str, person_id: str) -> Subject:
    """Everything that identifies the person's rows (see :class:`Subject`)."""
    pids = [person_id]
    frontier = [person_id]
    while frontier:  # persons merged into this one (their rows are this person's too)
        more = list(
            conn.execute(
                sa.select(persons.c.id).where(
                    persons.c.tenant_id == tenant_id,
                    persons.c.merged_into.in_(frontier),
                    persons.c.id.notin_(pids),
                )
            ).scalars()
        )
        pids += more
        frontier = more
    sub = Subject(tenant_id=tenant_id, person_id=person_id, person_ids=pids)
    sub.record_ids = sorted(
        set(
            conn.execute(
                sa.select(person_records.c.source_record_id).where(
                    person_records.c.tenant_id == tenant_id, person_records.c.person_id.in_(pids)
                )
            ).scalars()
        )
    )
    ids: set[tuple[str, str]] = set()
    for t, v in conn.execute(
        sa.select(identities.c.type, identities.c.value).where(
            identities.c.tenant_id == tenant_id, identities.c.person_id.in_(pids)
        )
    ):
        ids.add((t, v))
    sr = source_records
    names: set[str] = set()
    for i in range(0, len(sub.record_ids), 1000):
        for r in conn.execute(
            sa.select(sr).where(sr.c.tenant_id == tenant_id, sr.c.id.in_(sub.record_ids[i : i + 1000]))
        ).mappings():
            ids.update(suppress.pairs_of_record(r))
            ids.add(("record_key", f"{r['source_id']}:{r['record_key']}"))
            if r["import_id"] is None and r["record_key"]:
                key = r["record_key"]
                ids.add(("anonymous_id", key[5:]) if key.startswith("anon:") else ("user_id", key))
            if r["name"]:
                names.add(r["name"])
    for row in conn.execute(
        sa.select(persons.c.attributes).where(persons.c.tenant_id == tenant_id, persons.c.id.in_(pids))
    ):
        attrs = row[0] or {}
        for f in suppress.IDENTIFIER_FIELDS:
            if attrs.get(f):
                ids.add((f, str(attrs[f])))
        if attrs.get("wechat_openid"):
            ids.add(("wechat_openid", str(attrs["wechat_openid"])))
        if attrs.get("name"):
            names.add(str(attrs["name"]))
    sub.identifiers = sorted(ids)
    sub.user_ids = sorted(v for t, v in ids if t == "user_id")
    sub.anonymous_ids = sorted(v for t, v in ids if t == "anonymous_id")
    sub.names = sorted(names)
    sub.send_ids = list(
        conn.execute(
            sa.select(sends.c.id).where(sends.c.tenant_id == tenant_id, sends.c.person_id.in_(pids))
        ).scalars()
    )
    wd = webhook_deliveries
    sub.delivery_ids = list(
        conn.execute(
            sa.select(wd.c.id).where(wd.c.tenant_id == tenant_id, sub.mentions(wd.c.payload))
        ).scalars()
    )
    return sub


def counts(conn: sa.Connection, sub: Subject) -> dict[str, int]:
    """Rows about the person, per table."""
    out = {}
    for name, pt in PERSON_TABLES.items():
        out[name] = int(
            conn.execute(sa.select(sa.func.count()).select_from(pt.table).where(pt.where(sub))).scalar() or 0
        )
    return out


def rows(conn: sa.Connection, sub: Subject) -> dict[str, list[dict[str, Any]]]:
    """Every row about the person, per table (JSON-ready values)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, pt in PERSON_TABLES.items():
        out[name] = [
            {str(k): jsonable(v) for k, v in r.items()}
            for r in conn.execute(sa.select(pt.table).where(pt.where(sub))).mappings()
        ]
    return out


# --- the request log -------------------------------------------------------------------------------
def _hash_identifier(tenant_id: str, kind: str, identifier: str) -> str:
    return suppress.key_hash(tenant_id, f"request:{kind}", identifier.strip())


def _open_request(
    conn: sa.Connection,
    *,
    tenant_id: str,
    kind: str,
    person_id: str,
    identifier: str,
    id_kind: str,
    actor: str,
    reason: str | None,
) -> dict[str, Any]:
    row = {
        "id": new_id("dsr"),
        "tenant_id": tenant_id,
        "kind": kind,
        "status": "received",
        "person_id": person_id,
        "identifier_type": id_kind,
        "identifier_hash": _hash_identifier(tenant_id, id_kind, identifier),
        "reason": (reason or None) and reason[:2000],
        "actor": actor,
        "created_at": utcnow(),
    }
    conn.execute(dsr_requests.insert().values(**row))
    return row


def _close_request(
    conn: sa.Connection, req: dict[str, Any], *, status: str = "done", **values: Any
) -> dict[str, Any]:
    values.update(status=status, completed_at=utcnow())
    conn.execute(sa.update(dsr_requests).where(dsr_requests.c.id == req["id"]).values(**values))
    accounts.audit(
        conn=conn,
        tenant_id=req["tenant_id"],
        actor=req["actor"],
        action=f"dsr.{req['kind']}",
        object_type="dsr_request",
        object_id=req["id"],
        detail={
            "status": status,
            "person_id": req["person_id"],
            **({"code": values["refusal_code"]} if values.get("refusal_code") else {}),
        },
    )
    return get_request(conn, tenant_id=req["tenant_id"], request_id=req["id"])


def get_request(conn: sa.Connection, *, tenant_id: str, request_id: str) -> dict[str, Any]:
    r = (
        conn.execute(
            sa.select(dsr_requests).where(
                dsr_requests.c.tenant_id == tenant_id, dsr_requests.c.id == request_id
            )
        )
        .mappings()
        .first()
    )
    if r is None:
        raise NotFound(f"data-subject request {request_id!r} not found")
    return dict(r)


def list_requests(
    conn: sa.Connection, *, tenant_id: str, limit: int = 100, person_id: str | None = None
) -> list[dict[str, Any]]:
    q = sa.select(dsr_requests).where(dsr_requests.c.tenant_id == tenant_id)
    if person_id:
        q = q.where(dsr_requests.c.person_id == person_id)
    return [
        dict(r)
        for r in conn.execute(
            q.order_by(dsr_requests.c.created_at.desc(), dsr_requests.c.id).limit(limit)
        ).mappings()
    ]


def _restrictions(conn: sa.Connection, tenant_id: str, person_id: str) -> dict[str, dict[str, Any]]:
    r = person_restrictions
    return {
        row["kind"]: {k: jsonable(v) for k, v in row.items()}
        for row in conn.execute(
            sa.select(r).where(r.c.tenant_id == tenant_id, r.c.person_id == person_id)
        ).mappings()
    }


# --- look-up: what is held -------------------------------------------------------------------------
def held(conn: sa.Connection, *, tenant_id: str, identifier: str, kind: str = "auto") -> dict[str, Any]:
    """What the tenant holds about the person: rows per table, restriction and hold, past requests.
    Reading it is audited (no personal data in the audit row)."""
    pid = find_person(conn, tenant_id=tenant_id, identifier=identifier, kind=kind)
    sub = subject(conn, tenant_id=tenant_id, person_id=pid)
    c = counts(conn, sub)
    rs = _restrictions(conn, tenant_id, pid)
    return {
        "person_id": pid,
        "person_ids": sub.person_ids,
        "tables": c,
        "total_rows": sum(c.values()),
        "restricted": rs.get(RESTRICTED),
        "legal_hold": rs.get(LEGAL_HOLD),
        "requests": list_requests(conn, tenant_id=tenant_id, person_id=pid, limit=50),
    }


# --- export ----------------------------------------------------------------------------------------
def _tenant_slug(conn: sa.Connection, tenant_id: str) -> str:
    return conn.execute(sa.select(tenants.c.slug).where(tenants.c.id == tenant_id)).scalar() or tenant_id


def export(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str = "auto",
    actor: str,
    reason: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """(the request row, the zip): ``tables/<table>.json`` and ``.csv`` for every table, and
    ``manifest.json`` (rows per table, generated_at, tenant, request id, sha256 per file)."""
    pid = find_person(conn, tenant_id=tenant_id, identifier=identifier, kind=kind)
    req = _open_request(
        conn,
        tenant_id=tenant_id,
        kind="export",
        person_id=pid,
        identifier=identifier,
        id_kind=kind,
        actor=actor,
        reason=reason,
    )
    sub = subject(conn, tenant_id=tenant_id, person_id=pid)
    data = rows(conn, sub)
    now = utcnow()
    files: dict[str, bytes] = {}
    for name, rs in data.items():
        files[f"tables/{name}.json"] = orjson.dumps(rs, option=orjson.OPT_INDENT_2, default=str)
        buf = io.StringIO()
        cols = [c.name for c in PERSON_TABLES[name].table.columns]
        w = SafeDictWriter(buf, fieldnames=cols)
        w.writeheader()
        for r in rs:
            w.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                    for k, v in r.items()
                }
            )
        files[f"tables/{name}.csv"] = buf.getvalue().encode("utf-8-sig")
    manifest = {
        "request_id": req["id"],
        "tenant": _tenant_slug(conn, tenant_id),
        "tenant_id": tenant_id,
        "person_id": pid,
        "person_ids": sub.person_ids,
        "generated_at": now.isoformat(),
        "tables": {name: len(rs) for name, rs in data.items()},
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        for n, b in files.items():
            z.writestr(n, b)
    done = _close_request(
        conn, req, result={"tables": manifest["tables"], "total_rows": sum(manifest["tables"].values())}
    )
    return done, out.getvalue()


# --- erase -----------------------------------------------------------------------------------------
def erase(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str = "auto",
    actor: str,
    reason: str | None = None,
    feature_index: Path | None = None,
) -> dict[str, Any]:
    """Erase the person (see the module). Returns the request row with its certificate, or, under
    legal hold, the request row with ``status`` ``refused`` and ``refusal_code`` ``legal_hold``
    (nothing erased). ``feature_index``: the identity feature index (default: the tenant's)."""
    pid = find_person(conn, tenant_id=tenant_id, identifier=identifier, kind=kind)
    req = _open_request(
        conn,
        tenant_id=tenant_id,
        kind="erase",
        person_id=pid,
        identifier=identifier,
        id_kind=kind,
        actor=actor,
        reason=reason,
    )
    hold = _restrictions(conn, tenant_id, pid).get(LEGAL_HOLD)
    if hold:
        why = f"person {pid} is under legal hold ({hold.get('reason') or 'no reason given'}): erasure refused"
        return _close_request(conn, req, status="refused", refusal_code="legal_hold", result={"why": why})
    sub = subject(conn, tenant_id=tenant_id, person_id=pid)
    if conn.dialect.name == "postgresql":  # the append-only trigger lets this transaction's deletes through
        conn.exec_driver_sql("SET LOCAL medscrm.erasure = 'on'")
    seg_ids = list(
        conn.execute(
            sa.select(segment_members.c.segment_id).where(
                segment_members.c.tenant_id == tenant_id, segment_members.c.person_id.in_(sub.person_ids)
            )
        ).scalars()
    )
    removed: dict[str, int] = {}
    anonymised: dict[str, int] = {}
    for name, pt in PERSON_TABLES.items():
        if pt.erase == "anonymise":
            n = conn.execute(
                sa.update(pt.table).where(pt.where(sub)).values(detail={"erased_by_request": req["id"]})
            ).rowcount
            anonymised[name] = int(n or 0)
        else:
            n = conn.execute(sa.delete(pt.table).where(pt.where(sub))).rowcount
            removed[name] = int(n or 0)
    for sid in sorted(set(seg_ids)):
        conn.execute(
            sa.update(segments)
            .where(segments.c.id == sid)
            .values(
                member_count=sa.select(sa.func.count())
                .select_from(segment_members)
                .where(segment_members.c.segment_id == sid)
                .scalar_subquery()
            )
        )
    # tombstones: keyed hashes only; the same identifier erased twice keeps its first tombstone
    now = utcnow()
    hashed = sorted(
        {
            (t, suppress.key_hash(tenant_id, t, v))
            for t, v in sub.identifiers
            if t in suppress.IDENTIFIER_TYPES
        }
    )
    have = set(
        conn.execute(
            sa.select(dsr_tombstones.c.key_hash).where(
                dsr_tombstones.c.tenant_id == tenant_id,
                dsr_tombstones.c.key_hash.in_([h for _t, h in hashed] or [""]),
            )
        ).scalars()
    )
    new = [
        {
            "tenant_id": tenant_id,
            "key_hash": h,
            "identifier_type": t,
            "request_id": req["id"],
            "created_at": now,
            "suppressed": 0,
        }
        for t, h in hashed
        if h not in have
    ]
    if new:
        conn.execute(dsr_tombstones.insert(), new)
    suppress.forget_cache(tenant_id)
    forget_identity_cache(tenant_id)
    if feature_index is None:
        feature_index = feature_index_for(conn.engine, conn, tenant_id)
    index_rows = _forget_in_feature_index(feature_index, sub)
    cert = {
        "request_id": req["id"],
        "kind": "erasure",
        "law": "PIPL Art. 47",
        "tenant": _tenant_slug(conn, tenant_id),
        "person_id": pid,
        "person_ids": sub.person_ids,
        "requested_by": actor,
        "requested_at": jsonable(req["created_at"]),
        "completed_at": now.isoformat(),
        "identifiers": [{"type": t, "hmac_sha256": h} for t, h in hashed],
        "rows_removed": removed,
        "rows_anonymised": anonymised,
        "total_rows_removed": sum(removed.values()),
        "feature_index_rows_removed": index_rows,
        "tombstones": len(hashed),
        "statement": "Every row about this person was deleted; audit rows keep the action without personal "
        "data; re-imports and events carrying these identifiers are suppressed.",
    }
    digest = hashlib.sha256(canonical(cert)).hexdigest()
    # downstream systems that received this person's data are told to erase it too (pseudonymous ids
    # only: the identifiers themselves are gone)
    outbox.publish(
        conn,
        tenant_id,
        [
            (
                "person.erased",
                {"person_ids": sub.person_ids, "request_id": req["id"], "certificate_sha256": digest},
            )
        ],
        now,
    )
    return _close_request(
        conn,
        req,
        result={"rows_removed": removed, "rows_anonymised": anonymised, "tombstones": len(hashed)},
        certificate=cert,
        certificate_sha256=digest,
    )


def canonical(obj: Any) -> bytes:
    """The certificate's bytes as hashed: JSON with sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def certificate(conn: sa.Connection, *, tenant_id: str, request_id: str) -> dict[str, Any]:
    """The erasure certificate (with its sha256) of a completed erase request."""
    req = get_request(conn, tenant_id=tenant_id, request_id=request_id)
    if req["kind"] != "erase" or not req["certificate"]:
        raise NotFound(
            f"request {request_id!r} has no erasure certificate (kind {req['kind']}, status {req['status']})"
        )
    return {"certificate": req["certificate"], "sha256": req["certificate_sha256"]}


def _forget_in_feature_index(path: Path | None, sub: Subject) -> int:
    """Drop the person's records from the identity feature index (Parquet parts + shared values)."""
    if path is None or not Path(path).exists():
        return 0
    import pandas as pd

    gone = set(sub.record_ids)
    needles = set(sub.values) | gone
    n = 0
    for part in sorted(Path(path).glob("part-*.parquet")):
        df = pd.read_parquet(part)
        if "unique_id" not in df.columns:
            continue
        keep = ~df["unique_id"].astype(str).isin(gone)
        if not keep.all():
            n += int((~keep).sum())
            tmp = part.with_suffix(".tmp")
            df[keep].to_parquet(tmp, index=False)
            tmp.replace(part)
    shared = Path(path) / "shared.json"
    if shared.exists():
        try:
            items = json.loads(shared.read_text(encoding="utf-8"))
        except ValueError:
            items = []
        kept = [
            it
            for it in items
            if not any(x in json.dumps(it, ensure_ascii=False, default=str) for x in needles)
        ]
        if len(kept) != len(items):
            n += len(items) - len(kept)
            shared.write_text(json.dumps(kept, ensure_ascii=False, default=str), encoding="utf-8")
    return n


# --- correct ---------------------------------------------------------------------------------------
def correct(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str = "auto",
    field: str,
    value: str,
    actor: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Change one field of the golden record (PIPL Art. 46). The value is normalised like an import
    and stored as a record of the manual source ``dsr-corrections`` linked to the person, so the
    lineage names it and later identity runs see it."""
    if field not in CORRECTABLE:
        raise InvalidInput("field", f"{field!r} is not one of {', '.join(CORRECTABLE)}")
    res = normalize_record({field: value})
    bad = [i for i in res.issues if i.field == field]
    if bad:
        raise InvalidInput("value", bad[0].reason)
    new_value = res.values.get(field)
    if new_value is None:
        raise InvalidInput("value", "give the corrected value")
    pid = find_person(conn, tenant_id=tenant_id, identifier=identifier, kind=kind)
    req = _open_request(
        conn,
        tenant_id=tenant_id,
        kind="correct",
        person_id=pid,
        identifier=identifier,
        id_kind=kind,
        actor=actor,
        reason=reason,
    )
    p = (
        conn.execute(sa.select(persons).where(persons.c.tenant_id == tenant_id, persons.c.id == pid))
        .mappings()
        .one()
    )
    src = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name="dsr-corrections", kind="manual")
    now = utcnow()
    sr_id = new_id("sr")
    rec = {f: None for f in STANDARD_FIELDS}
    rec.update({"person_type": p["person_type"], field: new_value})
    raw = {"field": field, "value": value, "request_id": req["id"]}
    conn.execute(
        source_records.insert().values(
            id=sr_id,
            tenant_id=tenant_id,
            source_id=src["id"],
            import_id=None,
            record_key=f"dsr:{req['id']}",
            row_hash=hashlib.sha256(canonical(raw)).hexdigest(),
            row_number=None,
            attributes={},
            raw=raw,
            received_at=now,
            **rec,
        )
    )
    conn.execute(
        person_records.insert().values(
            id=new_id("pr"),
            tenant_id=tenant_id,
            person_id=pid,
            source_record_id=sr_id,
            confidence=1.0,
            rule="manual",
            assigned_at=now,
        )
    )
    attrs = dict(p["attributes"] or {})
    lineage = dict(p["lineage"] or {})
    old = attrs.get(field)
    attrs[field] = new_value
    lineage[field] = {
        "source_record_id": sr_id,
        "source": "dsr-corrections",
        "received_at": now.isoformat(),
        "rule": "manual_correction",
        "request_id": req["id"],
        "actor": actor,
    }
    conn.execute(
        sa.update(persons)
        .where(persons.c.id == pid)
        .values(attributes=attrs, lineage=lineage, updated_at=now)
    )
    if field in suppress.IDENTIFIER_FIELDS:  # the identity index follows the golden record
        if old:
            conn.execute(
                identities.delete().where(
                    identities.c.tenant_id == tenant_id,
                    identities.c.person_id == pid,
                    identities.c.type == field,
                    identities.c.value == str(old),
                )
            )
        conn.execute(
            identities.insert().values(
                id=new_id("idn"),
                tenant_id=tenant_id,
                type=field,
                value=new_value,
                person_id=pid,
                source_record_id=sr_id,
                created_at=now,
            )
        )
    return _close_request(
        conn, req, result={"field": field, "source_record_id": sr_id, "changed": old != new_value}
    )


# --- restrict / hold -------------------------------------------------------------------------------
def _set_flag(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str,
    flag: str,
    on: bool,
    request_kind: str,
    actor: str,
    reason: str | None,
) -> dict[str, Any]:
    pid = find_person(conn, tenant_id=tenant_id, identifier=identifier, kind=kind)
    if on and not (reason or "").strip():
        raise InvalidInput("reason", "say why (the request, the case or the matter)")
    req = _open_request(
        conn,
        tenant_id=tenant_id,
        kind=request_kind,
        person_id=pid,
        identifier=identifier,
        id_kind=kind,
        actor=actor,
        reason=reason,
    )
    r = person_restrictions
    where = sa.and_(r.c.tenant_id == tenant_id, r.c.person_id == pid, r.c.kind == flag)
    present = conn.execute(sa.select(r.c.person_id).where(where)).first() is not None
    if on and not present:
        conn.execute(
            r.insert().values(
                tenant_id=tenant_id,
                person_id=pid,
                kind=flag,
                reason=reason,
                request_id=req["id"],
                created_by=actor,
                created_at=utcnow(),
            )
        )
    if not on:
        conn.execute(sa.delete(r).where(where))
    if flag == RESTRICTED and on:  # out of every segment now (entered/exited history as usual)
        _leave_segments(conn, tenant_id, pid)
    if flag == RESTRICTED and present != on:  # downstream systems stop (or resume) processing too
        outbox.publish(
            conn,
            tenant_id,
            [("person.restricted", {"person_id": pid, "restricted": on, "request_id": req["id"]})],
        )
    return _close_request(conn, req, result={flag: on, "changed": present != on})


def _leave_segments(conn: sa.Connection, tenant_id: str, pid: str) -> None:
    from medscrm.segments.fresh import apply_changes

    now = utcnow()
    for sid in list(
        conn.execute(
            sa.select(segment_members.c.segment_id).where(
                segment_members.c.tenant_id == tenant_id, segment_members.c.person_id == pid
            )
        ).scalars()
    ):
        apply_changes(conn, tenant_id=tenant_id, segment_id=sid, entered=[], exited=[pid], now=now)


def restrict(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str = "auto",
    actor: str,
    reason: str | None = None,
    lift: bool = False,
) -> dict[str, Any]:
    """Restrict the person's processing (PIPL Art. 44), or lift the restriction."""
    return _set_flag(
        conn,
        tenant_id=tenant_id,
        identifier=identifier,
        kind=kind,
        flag=RESTRICTED,
        on=not lift,
        request_kind="lift" if lift else "restrict",
        actor=actor,
        reason=reason,
    )


def hold(
    conn: sa.Connection,
    *,
    tenant_id: str,
    identifier: str,
    kind: str = "auto",
    actor: str,
    reason: str | None = None,
    release: bool = False,
) -> dict[str, Any]:
    """Put the person under legal hold (erasure refused), or release the hold."""
    return _set_flag(
        conn,
        tenant_id=tenant_id,
        identifier=identifier,
        kind=kind,
        flag=LEGAL_HOLD,
        on=not release,
        request_kind="release" if release else "hold",
        actor=actor,
        reason=reason,
    )


def feature_index_for(engine: sa.Engine, conn: sa.Connection, tenant_id: str) -> Path | None:
    """The tenant's identity feature index directory (beside its match model), if there is one.
    Looked for by file name first: the identity engine's modules (Splink) load slowly and are only
    imported when a model file exists."""
    db = getattr(engine.url, "database", None)
    near = Path(f"{db}.x").parent if db and db != ":memory:" else Path.cwd()
    if not any(near.glob("*identity-model.*")) and not any(Path.cwd().glob(".medscrm-identity-model.*")):
        return None
    from medscrm.identity.model import model_path
    from medscrm.persons.engine import index_dir_for

    p = index_dir_for(model_path(engine, _tenant_slug(conn, tenant_id)))
    return p if p.exists() else None
