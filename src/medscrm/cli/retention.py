"""``medscrm retention policies|set|run|runs``: how long each category of data is kept, and the run
that deletes or anonymises what has expired (docs/privacy.md, "Retention")."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medscrm.cli._common import TenantOpt, _fail, _transact, _ws, console

app = typer.Typer(
    help="Retention: how long each category of data is kept (events, health events, raw source "
    "records, quarantine, webhook deliveries, sends, audit log) and the run that deletes or anonymises "
    "what has expired. Persons under legal hold are never touched. 数据保存期限：到期数据删除或匿名化。",
    no_args_is_help=True,
)


def _print_policies(pols: dict) -> None:
    t = Table("category", "keep days", "action", "enabled", "patterns", "floor", "source")
    for key, p in pols.items():
        t.add_row(
            key,
            str(p["keep_days"]),
            p["action"],
            "yes" if p["enabled"] else "no",
            ", ".join(p["patterns"]),
            str(p["floor_days"] or ""),
            p["source"],
        )
    console.print(t)


@app.command("policies")
def policies_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="The policies as one JSON object.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """The retention policy of every category (the tenant's own, else the shipped default)."""
    from medscrm.privacy import retention

    pols = _transact(tenant, lambda c, ws: retention.policies(c, tenant_id=ws.tenant_id))
    if as_json:
        console.print_json(json.dumps(pols, default=str, ensure_ascii=False))
    else:
        _print_policies(pols)


@app.command("set")
def set_cmd(
    category: Annotated[
        str,
        typer.Argument(
            help="events, health, source_records, quarantine, webhook_deliveries, sends or audit."
        ),
    ],
    keep_days: Annotated[int | None, typer.Option(help="Keep rows this many days.")] = None,
    action: Annotated[
        str | None, typer.Option(help="delete, or anonymise (keep the row, blank its personal fields).")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Run this category or not.")
    ] = None,
    patterns: Annotated[
        str | None,
        typer.Option(help="Event-name globs, comma-separated (events: empty = every event; health)."),
    ] = None,
    actor: Annotated[str, typer.Option(help="Who changes it (audited with the old and new value).")] = "cli",
    tenant: TenantOpt = None,
) -> None:
    """Change one category's policy; refused below a legal floor (audit: 1095 days by default)."""
    from medscrm.privacy import retention

    p = _transact(
        tenant,
        lambda c, ws: retention.set_policy(
            c,
            tenant_id=ws.tenant_id,
            category=category,
            actor=actor,
            keep_days=keep_days,
            action=action,
            enabled=enabled,
            patterns=None if patterns is None else retention.parse_patterns(patterns),
        ),
    )
    console.print(
        f"{category}: keep {p['keep_days']} days, then {p['action']}"
        + ("" if p["enabled"] else " (disabled)")
        + (f"; patterns {', '.join(p['patterns'])}" if p["patterns"] else "")
    )


def _print_report(res: dict) -> None:
    t = Table("category", "action", "rows", "done", "held (kept)", "oldest", "newest", "note")
    for key, r in (res["result"] or {}).items():
        t.add_row(
            key,
            r.get("action", ""),
            str(r.get("rows", "")),
            str(r.get("done", "")),
            str(r.get("held", "")),
            (r.get("oldest") or "")[:19],
            (r.get("newest") or "")[:19],
            r.get("refused") or r.get("skipped") or "",
        )
    console.print(t)


@app.command("run")
def run_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would go; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm a real run without asking.")] = False,
    batch: Annotated[int, typer.Option(help="Rows per transaction.")] = 5000,
    actor: Annotated[str, typer.Option(help="Who runs it (recorded and audited).")] = "cli",
    tenant: TenantOpt = None,
) -> None:
    """Delete or anonymise what has expired, in batches; --dry-run reports per category the rows,
    the oldest and newest affected and the rows of held persons that are kept."""
    from medscrm.common import MedscrmError
    from medscrm.privacy import retention

    if (
        not dry_run
        and not yes
        and not typer.confirm("Delete/anonymise expired data now? It cannot be undone")
    ):
        _fail(ValueError("not confirmed: add --yes, or --dry-run for the report only"))
    ws = _ws(tenant)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(category: str, done: int, total: int) -> None:
            if category not in tasks:
                tasks[category] = bar.add_task(category, total=total)
            bar.update(tasks[category], completed=done)

        try:
            res = retention.run(
                ws.engine,
                tenant_id=ws.tenant_id,
                actor=actor,
                dry_run=dry_run,
                batch=batch,
                progress=progress,
            )
        except MedscrmError as exc:
            _fail(exc)
    console.print(f"retention run {res['id']} ({'dry run' if dry_run else 'run'}): {res['status']}")
    _print_report(res)


@app.command("runs")
def runs_cmd(
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    tenant: TenantOpt = None,
) -> None:
    """The latest runs: when, who, dry run or not, rows done per category."""
    from medscrm.privacy import retention

    runs = _transact(tenant, lambda c, ws: retention.list_runs(c, tenant_id=ws.tenant_id, limit=limit))
    t = Table("run", "started", "actor", "dry run", "status", "rows done")
    for r in runs:
        done = {k: v.get("done", 0) for k, v in (r["result"] or {}).items() if v.get("done")}
        t.add_row(
            r["id"],
            str(r["started_at"])[:19],
            r["actor"],
            "yes" if r["dry_run"] else "no",
            r["status"],
            ", ".join(f"{k} {n}" for k, n in done.items()) or "0",
        )
    console.print(t)
