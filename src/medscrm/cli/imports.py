"""`medscrm import`, import history and the quarantine of rejected input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medscrm.cli._common import (
    JsonOpt,
    TenantOpt,
    WideOpt,
    _fail,
    _rid,
    _transact,
    _ws,
    console,
    err,
    print_rows,
    via_server,
)
from medscrm.cli._ids import resolve_id, resolve_ids
from medscrm.common import MedscrmError
from medscrm.db.schema import imports, sources
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping

quarantine_app = typer.Typer(
    help="Rejected input: list, inspect, fix, replay or discard.", no_args_is_help=True
)
imports_app = typer.Typer(help="History of file imports.", no_args_is_help=True)


# --- import --------------------------------------------------------------------------------------
def print_report(report, *, show: int = 20) -> None:
    if report.status != "committed":
        err.print(
            Panel(f"[bold red]{report.error}[/]\nNothing was imported.", title=f"refused: {report.file}")
        )
        return
    t = Table.grid(padding=(0, 2))
    t.add_row("file / 文件", report.file)
    t.add_row("source / 来源", report.source)
    t.add_row("format", f"{report.format}" + (f" ({report.encoding})" if report.encoding else ""))
    t.add_row("rows / 行数", f"{report.rows_total:,}")
    t.add_row("[green]imported / 导入[/]", f"{report.rows_accepted:,}")
    t.add_row("duplicates / 重复", f"{report.rows_duplicate:,}")
    t.add_row("[red]quarantined / 隔离[/]", f"{report.rows_rejected:,}")
    if report.rows_suppressed:
        t.add_row("suppressed (erased persons) / 已删除主体", f"{report.rows_suppressed:,}")
    console.print(Panel(t, title=f"import {report.import_id}"))
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if report.rejections:
        rt = Table(
            "row", "field", "reason", title="rejected rows (quarantined; fix with `medscrm quarantine`)"
        )
        for r in report.rejections[:show]:
            rt.add_row(str(r.row_number), r.field, r.reason)
        if len(report.rejections) > show:
            rt.add_row(
                "…", "", f"{len(report.rejections) - show} more problems; see `medscrm quarantine list`"
            )
        console.print(rt)


def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GB18030), XLSX, JSON lines or Parquet.")],
    source: Annotated[str, typer.Option("--source", help="Source name; created if new.")],
    mapping: Annotated[Path | None, typer.Option(help="Mapping YAML: columns → standard fields.")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, xlsx, jsonl, parquet (default: from the extension).")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding (default: detect UTF-8/GB18030).")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet name (default: the first).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Import a file of HCP/patient records into a source.

    Rows are normalised (phone → E.164, e-mail lower-case, full-width → half-width, traditional →
    simplified) with the raw value kept. Bad rows are quarantined with row, field and reason. The
    import is atomic; re-importing the same file adds nothing. Exit code: 0 all imported, 1 some
    rows quarantined, 2 file refused.
    """

    try:
        m = load_mapping(mapping) if mapping else None
    except MedscrmError as exc:
        _fail(exc)
    ws = _ws(tenant)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=None)
        report = import_file(
            engine=ws.engine,
            tenant_id=ws.tenant_id,
            source=source,
            path=file,
            mapping=m,
            fmt=fmt,
            encoding=encoding,
            sheet=sheet,
            on_progress=lambda n, _b: progress.update(task, completed=n),
        )
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, default=str, indent=2))
    else:
        print_report(report)
    raise typer.Exit(report.exit_code)


@imports_app.command("list")
def imports_list(
    limit: int = 20, wide: WideOpt = False, as_json: JsonOpt = False, tenant: TenantOpt = None
) -> None:
    """Recent imports with their counts."""

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(imports, sources.c.name.label("source"))
                .select_from(imports.outerjoin(sources, sources.c.id == imports.c.source_id))
                .where(imports.c.tenant_id == ws.tenant_id)
                .order_by(imports.c.started_at.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    print_rows(
        [{k: v for k, v in dict(r).items() if k != "report"} for r in rows]
        if as_json
        else [dict(r) for r in rows],
        [
            ("id", "id"),
            ("file", "file_name"),
            ("source", "source"),
            ("status", "status"),
            ("rows", lambda r: f"{r['rows_total']:,}"),
            ("imported", lambda r: f"{r['rows_accepted']:,}"),
            ("dup", lambda r: f"{r['rows_duplicate']:,}"),
            ("rejected", lambda r: f"{r['rows_rejected']:,}"),
            ("started", lambda r: str(r["started_at"])[:19]),
        ],
        wide=wide,
        as_json=as_json,
    )


# --- quarantine ----------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    status: Annotated[str, typer.Option(help="open, replayed, discarded or all.")] = "open",
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: int = 50,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
    tenant: TenantOpt = None,
) -> None:
    """List quarantined input with the reason. Ids are full; any unique prefix of one is accepted
    by `quarantine show|fix|replay|discard`."""

    api = via_server(tenant)
    if api is not None:  # `medscrm serve` holds the database: read through its API
        rows = api.get("/api/v1/quarantine", params={"status": status, "limit": max(1, min(limit, 1000))})
        rows = [r for r in rows if source is None or r.get("source_name") == source]
    else:
        ws = _ws(tenant)
        with ws.engine.connect() as conn:
            rows = qs.list_entries(
                conn=conn,
                tenant_id=ws.tenant_id,
                status=None if status == "all" else status,
                source=source,
                limit=limit,
            )
    print_rows(
        [dict(r) for r in rows],
        [
            ("id", "id"),
            ("source", "source_name"),
            ("file", "file_name"),
            ("row", "row_number"),
            ("field", "field"),
            ("reason", "reason"),
            ("status", "status"),
        ],
        wide=wide,
        as_json=as_json,
    )


@quarantine_app.command("show")
def quarantine_show(entry_id: str, tenant: TenantOpt = None) -> None:
    """Show one entry: every problem and the payload as sent (and as fixed)."""

    ws = _ws(tenant)
    entry_id = _rid(ws, "quarantine entry", entry_id)
    try:
        with ws.engine.connect() as conn:
            e = qs.get_entry(conn=conn, tenant_id=ws.tenant_id, entry_id=entry_id)
    except MedscrmError as exc:
        _fail(exc)
    print(
        json.dumps(
            {
                k: e[k]
                for k in (
                    "id",
                    "kind",
                    "status",
                    "file_name",
                    "row_number",
                    "issues",
                    "payload",
                    "fixed_payload",
                    "source_record_id",
                )
            },
            ensure_ascii=False,
            indent=2,
            default=str,
        )
    )


@quarantine_app.command("fix")
def quarantine_fix(
    entry_id: str,
    set_: Annotated[
        list[str], typer.Option("--set", help="COLUMN=VALUE (the source's column name); repeat.")
    ],
    tenant: TenantOpt = None,
) -> None:
    """Correct values of a quarantined row (then `replay` it)."""

    changes = {}
    for kv in set_:
        if "=" not in kv:
            _fail(MedscrmError(f"--set {kv!r}: use COLUMN=VALUE"))
        k, v = kv.split("=", 1)
        changes[k] = v
    fixed = _transact(
        tenant,
        lambda conn, ws: qs.fix(
            conn=conn,
            tenant_id=ws.tenant_id,
            entry_id=resolve_id(conn, ws.tenant_id, "quarantine entry", entry_id),
            changes=changes,
        ),
    )
    console.print_json(json.dumps(fixed, ensure_ascii=False, default=str))


@quarantine_app.command("replay")
def quarantine_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Entry ids (default: with --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every open entry.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Validate entries again; those that pass become source records. Exit 1 if any still fail."""

    if not entry_ids and not all_:
        _fail(MedscrmError("give entry ids or --all"))
    res = _transact(
        tenant,
        lambda conn, ws: qs.replay(
            conn=conn,
            tenant_id=ws.tenant_id,
            entry_ids=None if all_ else resolve_ids(conn, ws.tenant_id, "quarantine entry", entry_ids or []),
        ),
    )
    line = f"replayed {len(res['replayed'])}; still failing {len(res['still_bad'])}"
    if res.get("suppressed"):
        line += f"; discarded {len(res['suppressed'])} of erased persons (data-subject erasure)"
    console.print(line)
    for s in res["still_bad"][:20]:
        console.print(f"  {s['id']}: " + "; ".join(f"{i['field']}: {i['reason']}" for i in s["issues"]))
    raise typer.Exit(1 if res["still_bad"] else 0)


@quarantine_app.command("discard")
def quarantine_discard(
    entry_id: str, reason: Annotated[str, typer.Option(help="Why.")], tenant: TenantOpt = None
) -> None:
    """Mark an entry discarded (kept for the record, never imported)."""

    _transact(
        tenant,
        lambda conn, ws: qs.discard(
            conn=conn,
            tenant_id=ws.tenant_id,
            entry_id=resolve_id(conn, ws.tenant_id, "quarantine entry", entry_id),
            reason=reason,
        ),
    )
    console.print(f"discarded {entry_id}")


# --- events ------------------------------------------------------------------------------------
