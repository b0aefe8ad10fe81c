"""``medscrm tasks list|done``: the tasks journeys leave for reps (task steps), and closing one."""

from __future__ import annotations

from typing import Annotated

import typer

from medscrm.cli._common import (
    JsonOpt,
    TenantOpt,
    WideOpt,
    _fail,
    _rid,
    _transact,
    _ws,
    console,
    print_rows,
    via_server,
)
from medscrm.common import MedscrmError

app = typer.Typer(
    help="Tasks for reps from journey task steps (跟进任务): list them (per rep, per journey) and mark "
    "them done or dismissed (with a note; audited).",
    no_args_is_help=True,
)


@app.command("list")
def list_cmd(
    status: Annotated[str, typer.Option(help="open (default), done, dismissed, cancelled or all.")] = "open",
    assignee: Annotated[
        str | None, typer.Option(help="Only this rep's tasks (WeCom userid / username; '' = unassigned).")
    ] = None,
    journey: Annotated[str | None, typer.Option(help="Only tasks of this journey (its key).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
    tenant: TenantOpt = None,
) -> None:
    """List tasks (due first) and the open / overdue / done count per assignee. Persons are shown as an
    analyst sees them (phone masked)."""
    api = via_server(tenant)
    st = None if status == "all" else status
    if api is not None:  # `medscrm serve` holds the database: read through its API
        res = api.get(
            "/api/v1/tasks",
            params={"status": status, "assignee": assignee, "journey": journey, "limit": limit},
        )
        rows, total, counts = res["tasks"], res["total"], res["by_assignee"]
    else:
        from medscrm.journeys import tasks as svc

        ws = _ws(tenant)
        try:
            with ws.engine.connect() as conn:
                kw = {"tenant_id": ws.tenant_id, "role": "analyst", "journey": journey}
                rows, total = svc.list_tasks(conn, status=st, assignee=assignee, limit=limit, **kw)
                counts = svc.counts_by_assignee(conn, **kw)
        except MedscrmError as exc:
            _fail(exc)
            raise
    print_rows(
        rows,
        [
            ("id", "id"),
            ("status", "status"),
            ("due", lambda r: str(r["due_at"] or "")[:16]),
            ("assignee", "assignee"),
            ("person", lambda r: (r["person"] or {}).get("name") or r["person_id"]),
            ("title", "title"),
            ("why", "note"),
            ("journey", "journey"),
        ],
        wide=wide,
        as_json=as_json,
        title=f"tasks · 任务 ({len(rows)} of {total})",
    )
    if not as_json:
        line = ", ".join(
            f"{c['assignee'] or '(unassigned)'}: {c['open']} open ({c['overdue']} overdue), {c['done']} done, "
            f"{c['dismissed']} dismissed"
            for c in counts
        )
        console.print(f"per assignee · 按负责人: {line or '-'}", markup=False, highlight=False)


@app.command("done")
def done_cmd(
    task_id: Annotated[str, typer.Argument(help="Task id (or a unique prefix of it).")],
    note: Annotated[str | None, typer.Option(help="What was done (required with --dismiss: why).")] = None,
    dismiss: Annotated[bool, typer.Option("--dismiss", help="Dismiss instead of marking it done.")] = False,
    actor: Annotated[str, typer.Option(help="Who closes it (recorded in the audit log).")] = "cli",
    tenant: TenantOpt = None,
) -> None:
    """Mark a task done (or dismissed, with --dismiss and a --note saying why); audited as task.done /
    task.dismiss."""
    from medscrm.journeys import tasks as svc

    ws = _ws(tenant)
    tid = _rid(ws, "task", task_id)
    res = _transact(
        tenant,
        lambda c, w: svc.close_task(
            c,
            tenant_id=w.tenant_id,
            task_id=tid,
            action="dismiss" if dismiss else "done",
            note=note,
            actor=actor,
            role="admin",
        ),
    )
    console.print(f"task {tid}: {res['status']}")
