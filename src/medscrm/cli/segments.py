"""``medscrm segments …`` and ``medscrm tags …``: register with :func:`register`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from medscrm.cli._common import TenantOpt, _ws, via_server
from medscrm.common import MedscrmError

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

RoleOpt = Annotated[str, typer.Option(help="Role whose PII rights apply to the export (admin sees PII).")]


def _fail(exc: Exception, code: int = 2) -> None:
    from medscrm.rules import RuleError

    if isinstance(exc, RuleError):
        err.print(f"[bold red]invalid rule[/] ({len(exc.problems)} problem(s)):")
        for p in exc.problems:
            err.print(f"  {p.path or '(rule)'}: {p.reason}")
    else:
        err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code)


def _read_rule(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(MedscrmError(f"{path}: not a readable JSON file: {exc}"))


def register(app: typer.Typer) -> None:
    """Add the ``segments`` and ``tags`` sub-commands to the ``medscrm`` app."""
    seg_app = typer.Typer(help="Segments (分群): preview, create, refresh, export.", no_args_is_help=True)
    tags_app = typer.Typer(help="Tags (标签): define, evaluate rule tags, import.", no_args_is_help=True)
    app.add_typer(seg_app, name="segments")
    app.add_typer(tags_app, name="tags")

    @seg_app.command("preview")
    def preview(rule_file: Path, tenant: TenantOpt = None) -> None:
        """Count the persons matching the rule in RULE_FILE (JSON) and show a sample."""
        from medscrm.segments import service

        rule = _read_rule(rule_file)
        ws = _ws(tenant)
        try:
            with ws.engine.connect() as conn:
                res = service.preview(conn, tenant_id=ws.tenant_id, rule=rule)
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{res['count']} person(s)")
        for pid in res["sample"]:
            console.print(f"  {pid}")

    @seg_app.command("create")
    def create(
        key: str,
        rule_file: Annotated[Path, typer.Option("--rule", help="The rule (JSON file).")],
        name: Annotated[str | None, typer.Option(help="Display name.")] = None,
        static: Annotated[
            bool, typer.Option("--static", help="Snapshot the members now (never refreshed).")
        ] = False,
        every: Annotated[
            int | None,
            typer.Option("--every", help="Full recompute every N minutes (default 60; 0 = never)."),
        ] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Create a segment (dynamic unless --static) and compute its members."""
        from medscrm.segments import service

        rule = _read_rule(rule_file)
        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                seg = service.create(
                    conn,
                    tenant_id=ws.tenant_id,
                    key=key,
                    rule=rule,
                    name=name,
                    kind="static" if static else "dynamic",
                    created_by="cli",
                    refresh_every_minutes=every,
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"created {seg['kind']} segment {key}: {seg['member_count']} member(s)")

    @seg_app.command("list")
    def list_(tenant: TenantOpt = None) -> None:
        """List segments (while `medscrm serve` holds the database, through its API)."""
        from medscrm.segments import service

        api = via_server(tenant)
        if api is not None:
            rows = api.get("/api/v1/segments")
            rows = rows.get("segments", rows) if isinstance(rows, dict) else rows
        else:
            ws = _ws(tenant)
            with ws.engine.connect() as conn:
                rows = service.list_segments(conn, tenant_id=ws.tenant_id)
        t = Table("key", "name", "kind", "version", "members", "refreshed")
        for r in rows:
            t.add_row(
                r["key"],
                r["name"],
                r["kind"],
                str(r["version"]),
                str(r["member_count"]),
                str(r["last_refreshed_at"]),
            )
        console.print(t)

    @seg_app.command("refresh")
    def refresh(
        key: Annotated[str | None, typer.Argument(help="Segment key (or --all).")] = None,
        all_: Annotated[
            bool, typer.Option("--all", help="Recompute every dynamic segment of the tenant.")
        ] = False,
        due: Annotated[
            bool, typer.Option("--due", help="With --all: only those whose scheduled recompute is due.")
        ] = False,
        tenant: TenantOpt = None,
    ) -> None:
        """Recompute a dynamic segment, or all of them (entered/exited go to the membership history).

        `medscrm serve` does this by itself: incrementally as events arrive, and fully every
        refresh_every_minutes (see `segments schedule`)."""

        from medscrm.segments import fresh, service

        if bool(key) == all_:
            _fail(MedscrmError("give a segment KEY or --all (not both)"))
        ws = _ws(tenant)
        if key:
            try:
                with ws.engine.begin() as conn:
                    res = service.refresh(conn, tenant_id=ws.tenant_id, key=key)
            except MedscrmError as exc:
                _fail(exc)
            console.print(f"{key}: {res['member_count']} member(s); +{res['entered']} −{res['exited']}")
            return
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("recomputing segments", total=None)
            results = fresh.refresh_all(
                ws.engine,
                tenant_id=ws.tenant_id,
                due_only=due,
                on_done=lambda _t, k, _r: progress.update(task, advance=1, description=k),
            )
        failed = 0
        for r in results:
            if "error" in r:
                failed += 1
                err.print(f"[red]{r['key']}: {r['error']}[/]")
            else:
                console.print(f"{r['key']}: {r['member_count']} member(s); +{r['entered']} −{r['exited']}")
        console.print(
            f"{len(results) - failed} segment(s) recomputed" + (f", {failed} failed" if failed else "")
        )
        if failed:
            raise typer.Exit(1)

    @seg_app.command("schedule")
    def schedule(
        key: str,
        every: Annotated[
            int, typer.Option("--every", help="Full recompute every N minutes (0 = never; incremental only).")
        ],
        tenant: TenantOpt = None,
    ) -> None:
        """Set how often `medscrm serve` fully recomputes a dynamic segment."""
        from medscrm.segments import service

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                service.update(conn, tenant_id=ws.tenant_id, key=key, refresh_every_minutes=every)
        except MedscrmError as exc:
            _fail(exc)
        console.print(
            f"{key}: full recompute every {every} minute(s)" if every else f"{key}: incremental only"
        )

    @seg_app.command("export")
    def export(
        key: str,
        out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
        role: RoleOpt = "analyst",
        tenant: TenantOpt = None,
    ) -> None:
        """Export members to CSV (phone/e-mail masked unless --role may read PII)."""
        from medscrm.segments import service

        ws = _ws(tenant)
        try:
            with ws.engine.connect() as conn:
                text = service.export_csv(conn, tenant_id=ws.tenant_id, key=key, role=role)
        except MedscrmError as exc:
            _fail(exc)
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {max(text.count(chr(10)) - 1, 0)} member(s) to {out}")

    @tags_app.command("define")
    def define(
        key: Annotated[str, typer.Option("--key", help="Tag key, e.g. kol_cardio.")],
        rule_file: Annotated[
            Path | None, typer.Option("--rule", help="Rule (JSON file) for a rule tag.")
        ] = None,
        value_type: Annotated[str, typer.Option(help="bool, string or number.")] = "bool",
        category: Annotated[
            str, typer.Option(help="basic, business_rule, behaviour_model, third_party.")
        ] = "business_rule",
        name_zh: Annotated[str | None, typer.Option(help="Chinese name.")] = None,
        name_en: Annotated[str | None, typer.Option(help="English name.")] = None,
        owner: Annotated[str | None, typer.Option(help="Owner (team or person).")] = None,
        description: Annotated[str | None, typer.Option(help="What it means.")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Define (or redefine) a tag; a rule tag's rule must validate."""
        from medscrm.tags import service

        rule = _read_rule(rule_file) if rule_file else None
        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                service.define(
                    conn,
                    tenant_id=ws.tenant_id,
                    key=key,
                    rule=rule,
                    value_type=value_type,
                    category=category,
                    name_zh=name_zh,
                    name_en=name_en,
                    owner=owner,
                    description=description,
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"defined tag {key}")

    @tags_app.command("evaluate")
    def evaluate(tenant: TenantOpt = None) -> None:
        """Recompute every rule tag (full recompute, history kept)."""
        from medscrm.tags import service

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                res = service.evaluate(conn, tenant_id=ws.tenant_id)
        except MedscrmError as exc:
            _fail(exc)
        for k, s in res.items():
            console.print(f"{k}: {s['count']} person(s); +{s['added']} −{s['removed']}")

    @tags_app.command("import")
    def import_(csv_file: Path, tenant: TenantOpt = None) -> None:
        """Import third-party tags (person_id or id_type+id_value, tag_key, value)."""
        from medscrm.tags import service

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                res = service.import_csv(conn, tenant_id=ws.tenant_id, path=csv_file)
        except (MedscrmError, OSError) as exc:
            _fail(exc)
        console.print(f"matched {res['matched']} row(s); unmatched {len(res['unmatched'])}")
        for u in res["unmatched"][:20]:
            console.print(f"  row {u['row']}: {u['reason']} ({u['tag_key']})")
