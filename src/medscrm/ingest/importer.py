"""File import: read → map → normalise/validate → stage → commit atomically.

One import is one transaction: each batch's new rows are appended to ``source_records`` (an
anti-join drops what the source already holds), so memory is bounded by the batch, and a failure
rolls everything back: nothing is left half-written. Rejected rows go to
the quarantine (same transaction) with every problem found, and can be fixed and replayed.
Re-importing a file adds nothing: a row is a duplicate when the same source already holds the same
record key with the same content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import MedscrmError, new_id, sha256_hex, utcnow
from medscrm.config import get_settings
from medscrm.db.bulk import dumps, insert_new
from medscrm.db.schema import PERSON_FIELDS, imports, quarantine, source_records
from medscrm.ingest.mapping import Mapping, Plan, plan_for
from medscrm.ingest.readers import FileError, Row, open_reader
from medscrm.ingest.suppress import Suppressor, pairs_of_record, pairs_of_values
from medscrm.schema.person import normalize_record

MAX_REPORTED_REJECTIONS = 1000


@dataclass
class Rejection:
    row_number: int | None
    field: str
    code: str
    reason: str
    value: Any = None


@dataclass
class ImportReport:
    file: str
    source: str
    import_id: str | None = None
    format: str | None = None
    encoding: str | None = None
    status: str = "failed"
    rows_total: int = 0
    rows_accepted: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    #: rows of erased persons (PIPL Art. 47): not stored, only counted (``medscrm.ingest.suppress``)
    rows_suppressed: int = 0
    warnings: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """0: everything imported; 1: some rows rejected (quarantined); 2: the file was refused."""
        if self.status != "committed":
            return 2
        return 1 if self.rows_rejected else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        return d


@dataclass
class Built:
    record: dict[str, Any] | None  # a source_records row, or None if rejected
    issues: list[dict[str, Any]]  # [{field, code, reason, value}]


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def build_record(
    values: dict[str, Any],
    plan: Plan,
    *,
    row_number: int | None,
    problems: list[dict[str, Any]] | None = None,
) -> Built:
    """Turn one raw row into a normalised source record, or the list of reasons it cannot be one."""
    issues = list(problems or [])
    mapped: dict[str, Any] = {}
    for col, f in plan.fields.items():  # several columns may feed one field: first non-empty wins
        v = values.get(col)
        if f not in mapped or (_blank(mapped[f]) and not _blank(v)):
            mapped[f] = v
    custom = {attr: values.get(col) for col, attr in plan.custom.items() if not _blank(values.get(col))}
    res = normalize_record(
        mapped, custom=custom, custom_types=plan.custom_types, default_person_type=plan.person_type
    )
    issues.extend(
        {"field": i.field, "code": i.code, "reason": i.reason, "value": i.value} for i in res.issues
    )
    raw_json = dumps(values)
    row_hash = sha256_hex(raw_json)
    if plan.record_key:
        key = values.get(plan.record_key)
        if _blank(key):
            issues.append(
                {
                    "field": plan.record_key,
                    "code": "missing_record_key",
                    "reason": f"the record key column {plan.record_key!r} is empty",
                    "value": None,
                }
            )
        record_key = str(key).strip() if not _blank(key) else ""
    else:
        record_key = row_hash
    if issues:
        return Built(None, issues)
    rec: dict[str, Any] = {f: res.values.get(f) for f in PERSON_FIELDS}
    rec.update(
        record_key=record_key[:300],
        row_hash=row_hash,
        row_number=row_number,
        attributes=res.attributes or {},
        raw=values,
    )
    return Built(rec, [])


def _quarantine_row(
    *,
    tenant_id: str,
    source_id: str,
    import_id: str | None,
    file_name: str,
    row_number: int | None,
    values: dict[str, Any],
    issues: list[dict[str, Any]],
) -> dict:
    first = issues[0]
    return {
        "id": new_id("q"),
        "tenant_id": tenant_id,
        "source_id": source_id,
        "kind": "import_row",
        "import_id": import_id,
        "file_name": file_name,
        "row_number": row_number,
        "field": first["field"],
        "code": first["code"],
        "reason": first["reason"],
        "issues": issues,
        "payload": values,
        "fixed_payload": None,
        "payload_hash": sha256_hex(source_id + "\x00" + (dumps(values) or "")),
        "status": "open",
        "created_at": utcnow(),
        "resolved_at": None,
        "resolved_by": None,
        "source_record_id": None,
    }


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_of_each(rows: list[dict], key: Callable[[dict], Any], seen: set) -> list[dict]:
    """Rows whose key was not seen before in this import (a file may repeat a row)."""
    out = []
    for r in rows:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


ProgressFn = Callable[[int, int], None]  # (rows_done, bytes_done_estimate)


def import_file(
    *,
    engine: sa.Engine,
    tenant_id: str,
    source: str,
    path: Path | str,
    mapping: Mapping | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    batch_size: int = 20_000,
    actor: str = "cli",
    on_progress: ProgressFn | None = None,
) -> ImportReport:
    path = Path(path)
    report = ImportReport(file=str(path), source=source)
    try:
        size = path.stat().st_size if path.exists() else 0
        limit = get_settings().max_import_bytes
        if size > limit:
            raise FileError(
                path,
                f"the file is {size:,} bytes; the limit is {limit:,} (MEDSCRM_MAX_IMPORT_BYTES); split it",
                "too_large",
            )
        reader = open_reader(path, fmt=fmt, encoding=encoding, sheet=sheet)
        report.format, report.encoding = reader.fmt, reader.encoding
        plan = plan_for(reader.columns, mapping, path.name)
        report.warnings.extend(plan.warnings)
    except MedscrmError as exc:
        report.error = str(exc)
        return report

    import_id = new_id("imp")
    started = utcnow()
    file_hash = _file_sha256(path)
    ctx = _Ctx(
        engine=engine,
        tenant_id=tenant_id,
        import_id=import_id,
        plan=plan,
        report=report,
        file_name=path.name,
        actor=actor,
        on_progress=on_progress,
        batch_size=batch_size,
        started=started,
        file_sha256=file_hash,
    )
    try:
        with engine.begin() as conn:
            ctx.source_id = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name=source)["id"]
            ctx.suppressor = Suppressor(conn, tenant_id)
        if engine.dialect.name == "duckdb":
            _import_staged(ctx, reader)
        else:
            with engine.begin() as conn:
                _import_in_one_transaction(ctx, reader, conn)
    except MedscrmError as exc:
        report.status, report.error = "failed", str(exc)
        report.rows_accepted = report.rows_duplicate = 0
        _record_failure(engine, tenant_id, source, path, report, started, file_hash, actor)
        return report
    # the import record and audit entry are written by _finish inside the committing transaction
    report.import_id = import_id
    report.status = "committed"
    return report


@dataclass
class _Ctx:
    engine: sa.Engine
    tenant_id: str
    import_id: str
    plan: Plan
    report: ImportReport
    file_name: str
    actor: str
    on_progress: ProgressFn | None
    batch_size: int
    source_id: str = ""
    started: Any = field(default_factory=utcnow)
    file_sha256: str = ""
    fmt: str = ""
    encoding: str | None = None
    suppressor: Suppressor | None = None


def _batches(ctx: _Ctx, reader) -> Any:
    """Normalised batches: (new good rows, new bad rows), duplicates inside one batch removed."""
    received = utcnow()
    ctx.fmt, ctx.encoding = reader.fmt, reader.encoding
    for batch in reader.batches(ctx.batch_size):
        good, bad = _process_batch(
            batch,
            ctx.plan,
            ctx.report,
            tenant_id=ctx.tenant_id,
            source_id=ctx.source_id,
            import_id=ctx.import_id,
            file_name=ctx.file_name,
            received=received,
            suppressor=ctx.suppressor,
        )
        good = _first_of_each(good, lambda r: (r["record_key"], r["row_hash"]), set())
        bad = _first_of_each(bad, lambda r: r["payload_hash"], set())
        yield good, bad
        if ctx.on_progress:
            ctx.on_progress(ctx.report.rows_total, 0)
    if ctx.report.rows_total == 0:
        raise FileError(ctx.file_name, "the file has a header but no data rows", "no_rows")


def _import_in_one_transaction(ctx: _Ctx, reader, conn: sa.Connection) -> None:
    """PostgreSQL: every batch goes straight to its table inside one transaction (the server spills
    large transactions to disk, so memory stays bounded); an earlier batch's rows are visible to the
    later batches' anti-joins, which catches a row repeated far apart in the file."""
    mine = [source_records.c.tenant_id == ctx.tenant_id, source_records.c.source_id == ctx.source_id]
    open_q = [quarantine.c.tenant_id == ctx.tenant_id, quarantine.c.status == "open"]
    accepted = 0
    next_analyze = 1
    for n, (good, bad) in enumerate(_batches(ctx, reader), 1):
        accepted += insert_new(conn, source_records, good, match=["record_key", "row_hash"], where=mine)
        insert_new(conn, quarantine, bad, match=["payload_hash"], where=open_q)
        if n == next_analyze:  # statistics taken before this transaction say the table is small:
            conn.exec_driver_sql("ANALYZE source_records")  # refresh them as it grows (1, 2, 4, 8… batches)
            next_analyze *= 2
    _finish(ctx, conn, accepted)


_active_stages: set[str] = set()


def _import_staged(ctx: _Ctx, reader) -> None:
    """DuckDB: a transaction's uncommitted rows live in memory, so batches are committed into
    per-import stage tables first, then moved in ONE transaction (DuckDB streams a large
    INSERT … SELECT to disk). A crash leaves only stage tables, dropped by the next import."""
    stage_sr = sa.Table(
        f"_stage_{ctx.import_id}_sr",
        sa.MetaData(),
        *[sa.Column(c.name, c.type) for c in source_records.columns],
    )
    stage_q = sa.Table(
        f"_stage_{ctx.import_id}_q", sa.MetaData(), *[sa.Column(c.name, c.type) for c in quarantine.columns]
    )
    _drop_stale_stages(ctx.engine)
    _active_stages.add(ctx.import_id)
    try:
        with ctx.engine.begin() as conn:
            stage_sr.create(conn)
            stage_q.create(conn)
        for good, bad in _batches(ctx, reader):
            with ctx.engine.begin() as conn:
                insert_new(conn, stage_sr, good, match=["record_key", "row_hash"])
                insert_new(conn, stage_q, bad, match=["payload_hash"])
        with ctx.engine.begin() as conn:
            sr, q = source_records, quarantine
            held = (
                sa.select(sa.literal(1))
                .where(
                    sr.c.tenant_id == ctx.tenant_id,
                    sr.c.source_id == ctx.source_id,
                    sr.c.record_key == stage_sr.c.record_key,
                    sr.c.row_hash == stage_sr.c.row_hash,
                )
                .exists()
            )
            cols = [c.name for c in sr.columns]
            conn.execute(
                sr.insert().from_select(cols, sa.select(*[stage_sr.c[c] for c in cols]).where(~held))
            )
            accepted = conn.execute(
                sa.select(sa.func.count())
                .select_from(sr)
                .where(sr.c.tenant_id == ctx.tenant_id, sr.c.import_id == ctx.import_id)
            ).scalar()
            q_held = (
                sa.select(sa.literal(1))
                .where(
                    q.c.tenant_id == ctx.tenant_id,
                    q.c.status == "open",
                    q.c.payload_hash == stage_q.c.payload_hash,
                )
                .exists()
            )
            qcols = [c.name for c in q.columns]
            conn.execute(
                q.insert().from_select(qcols, sa.select(*[stage_q.c[c] for c in qcols]).where(~q_held))
            )
            _finish(ctx, conn, accepted)
    finally:
        _active_stages.discard(ctx.import_id)
        with ctx.engine.begin() as conn:
            stage_sr.drop(conn, checkfirst=True)
            stage_q.drop(conn, checkfirst=True)


def _drop_stale_stages(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if (
                name.startswith("_stage_imp_")
                and name[len("_stage_") :].rsplit("_", 1)[0] not in _active_stages
            ):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')


def _finish(ctx: _Ctx, conn: sa.Connection, accepted: int) -> None:
    rep = ctx.report
    if ctx.suppressor is not None:
        ctx.suppressor.record(conn)
    rep.rows_duplicate = rep.rows_total - rep.rows_rejected - rep.rows_suppressed - accepted
    rep.rows_accepted = accepted
    conn.execute(
        imports.insert().values(
            id=ctx.import_id,
            tenant_id=ctx.tenant_id,
            source_id=ctx.source_id,
            file_name=ctx.file_name,
            file_sha256=ctx.file_sha256,
            file_format=ctx.fmt,
            encoding=ctx.encoding,
            status="committed",
            rows_total=rep.rows_total,
            rows_accepted=accepted,
            rows_duplicate=rep.rows_duplicate,
            rows_rejected=rep.rows_rejected,
            report={
                "plan": ctx.plan.model_dump(),
                "warnings": rep.warnings,
                "rejections": [asdict(r) for r in rep.rejections[:100]],
                "suppressed": rep.rows_suppressed,
            },
            started_at=ctx.started,
            finished_at=utcnow(),
        )
    )
    accounts.audit(
        conn=conn,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        action="import.commit",
        object_type="import",
        object_id=ctx.import_id,
        detail={
            "file": ctx.file_name,
            "source_id": ctx.source_id,
            "accepted": accepted,
            "rejected": rep.rows_rejected,
            "duplicate": rep.rows_duplicate,
            "suppressed": rep.rows_suppressed,
        },
    )


def _record_failure(
    engine: sa.Engine,
    tenant_id: str,
    source: str,
    path: Path,
    report: ImportReport,
    started: Any,
    file_hash: str,
    actor: str,
) -> None:
    """A failed import commits nothing but is itself recorded, so the history tells what happened."""
    with engine.begin() as conn:
        src = accounts.get_source(conn=conn, tenant_id=tenant_id, name=source)
        fid = new_id("imp")
        report.import_id = fid
        conn.execute(
            imports.insert().values(
                id=fid,
                tenant_id=tenant_id,
                source_id=src["id"] if src else "",
                file_name=path.name,
                file_sha256=file_hash,
                file_format=report.format or "?",
                encoding=report.encoding,
                status="failed",
                rows_total=report.rows_total,
                rows_accepted=0,
                rows_duplicate=0,
                rows_rejected=0,
                error=report.error,
                report={"warnings": report.warnings},
                started_at=started,
                finished_at=utcnow(),
            )
        )
        accounts.audit(
            conn=conn,
            tenant_id=tenant_id,
            actor=actor,
            action="import.fail",
            object_type="import",
            object_id=fid,
            detail={"file": path.name, "error": report.error},
        )


def _process_batch(
    batch: list[Row],
    plan: Plan,
    report: ImportReport,
    *,
    tenant_id: str,
    source_id: str,
    import_id: str,
    file_name: str,
    received: Any,
    suppressor: Suppressor | None = None,
) -> tuple[list[dict], list[dict]]:
    good: list[dict] = []
    bad: list[dict] = []
    sup = suppressor if suppressor is not None and suppressor.active else None
    for row in batch:
        report.rows_total += 1
        if sup is not None and sup.check(pairs_of_values(row.values)):
            report.rows_suppressed += 1  # an erased person's row: counted, not stored
            continue
        problems = [
            {"field": p.field, "code": p.code, "reason": p.reason, "value": p.value} for p in row.problems
        ]
        built = build_record(row.values, plan, row_number=row.number, problems=problems)
        if built.record is None:
            report.rows_rejected += 1
            if len(report.rejections) < MAX_REPORTED_REJECTIONS:
                report.rejections.extend(
                    Rejection(row.number, i["field"], i["code"], i["reason"], i.get("value"))
                    for i in built.issues
                )
            bad.append(
                _quarantine_row(
                    tenant_id=tenant_id,
                    source_id=source_id,
                    import_id=import_id,
                    file_name=file_name,
                    row_number=row.number,
                    values=row.values,
                    issues=built.issues,
                )
            )
            continue
        rec = built.record
        if sup is not None and sup.check(pairs_of_record(rec, source_id=source_id)):
            report.rows_suppressed += 1
            continue
        rec.update(
            id=new_id("sr"),
            tenant_id=tenant_id,
            source_id=source_id,
            import_id=import_id,
            received_at=received,
        )
        good.append(rec)
    return good, bad
