"""The ``medscrm`` command line (Typer). Every command explains itself with ``--help``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medscrm.common import MedscrmError

app = typer.Typer(
    name="medscrm",
    help="medscrm — SCRM + HCP360 for pharma and medtech in China. 医药 SCRM + HCP360：统一身份、"
    "360° 画像、分群与合规旅程。\n\nState lives in MEDSCRM_DATABASE_URL (default: ./medscrm.duckdb).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
sources_app = typer.Typer(help="Data sources and their write keys (for the event API).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Bearer) for /api/v1, each with a role.", no_args_is_help=True)
users_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Rejected input: list, inspect, fix, replay or discard.", no_args_is_help=True
)
imports_app = typer.Typer(help="History of file imports.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Sealed credentials (channel secrets, source configs, webhook signing secrets): re-seal them with a new MEDSCRM_SECRET_KEY (key rotation).",
    no_args_is_help=True,
)
app.add_typer(sources_app, name="sources")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_app, name="users")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(imports_app, name="imports")
app.add_typer(audit_app, name="audit")
app.add_typer(secrets_app, name="secrets")

console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant", help="Tenant slug (default: $MEDSCRM_TENANT or 'default'). Created on first use."
    ),
]


def _ws(tenant: str | None):
    from medscrm.workspace import open_workspace

    return open_workspace(tenant)


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code)


def _transact(tenant: str | None, fn, *, errors: tuple[type[Exception], ...] = (MedscrmError,)):
    """Run ``fn(conn, ws)`` in one transaction on the workspace; a user-facing error exits with 2."""
    ws = _ws(tenant)
    try:
        with ws.engine.begin() as conn:
            return fn(conn, ws)
    except errors as exc:
        _fail(exc)


# --- secrets -------------------------------------------------------------------------------------
@secrets_app.command("rotate")
def secrets_rotate(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's values (default: every tenant).")
    ] = None,
) -> None:
    """Re-seal every sealed credential (channel settings, source configs) of every tenant with the
    current MEDSCRM_SECRET_KEY; values sealed with a key in MEDSCRM_OLD_SECRET_KEYS are opened with it.
    Prints the counts; exits 1 if some value opens with none of the keys (it is left unchanged).

    Rotation: set MEDSCRM_SECRET_KEY=NEW and MEDSCRM_OLD_SECRET_KEYS=OLD, run this, then drop OLD."""
    from medscrm.accounts import secrets as sealing
    from medscrm.accounts import service as accounts
    from medscrm.db import get_engine, upgrade_to_head

    engine = get_engine()
    upgrade_to_head(engine)
    with engine.begin() as conn:
        tenant_id = None
        if tenant:
            t = accounts.get_tenant(conn=conn, slug=tenant)
            if not t:
                _fail(MedscrmError(f"--tenant: no tenant {tenant!r}"))
            tenant_id = t["id"]  # type: ignore[index]
        report = sealing.rotate(conn, tenant_id=tenant_id)
        for tid, n in sorted(report.by_tenant.items()):
            accounts.audit(
                conn=conn,
                tenant_id=tid,
                actor="cli",
                action="secrets.rotate",
                detail={"resealed": n},
            )
    for table, n in report.resealed.items():
        console.print(f"{table}: {n} re-sealed")
    console.print(f"tenants: {len(report.by_tenant)}")
    for table, tid, key in report.unreadable:
        err.print(f"[bold red]unreadable:[/] {table} {key} (tenant {tid}): no configured key opens it")
    print(f"resealed={report.total} unreadable={len(report.unreadable)}")
    if report.unreadable:
        raise typer.Exit(1)


# --- sources -------------------------------------------------------------------------------------
@sources_app.command("create")
def sources_create(
    name: Annotated[
        str, typer.Option("--name", help="Source name, unique in the tenant (e.g. crm, webinar).")
    ],
    kind: Annotated[str, typer.Option(help="file, segment, wecom, wechat, ...")] = "segment",
    tenant: TenantOpt = None,
) -> None:
    """Create a source. Prints its write key (HTTP Basic user for /v1/*) as the last line."""
    from medscrm.accounts import service as accounts

    created = _transact(
        tenant,
        lambda conn, ws: accounts.create_source(conn=conn, tenant_id=ws.tenant_id, name=name, kind=kind),
    )
    console.print(f"source [bold]{created.name}[/] created ({created.id}). Its write key is shown once:")
    print(created.write_key)


@sources_app.command("configure")
def sources_configure(
    name: Annotated[str, typer.Argument(help="Source name.")],
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="KEY=VALUE; repeat. WeCom/WeChat callbacks: token, "
            "encoding_aes_key, receive_id (CorpID or AppID), "
            "max_age_seconds; any source: rate_limit (events/s). "
            "KEY= (empty) removes a setting.",
        ),
    ],
    tenant: TenantOpt = None,
) -> None:
    """Set a source's settings and credentials (stored encrypted; values are never printed)."""
    from medscrm.accounts import service as accounts

    changes: dict[str, str | None] = {}
    for kv in set_:
        if "=" not in kv:
            _fail(MedscrmError(f"--set {kv!r}: use KEY=VALUE"))
        k, v = kv.split("=", 1)
        changes[k.strip()] = v or None
    ws = _ws(tenant)
    try:
        with ws.engine.begin() as conn:
            shown = accounts.configure_source(conn=conn, tenant_id=ws.tenant_id, name=name, changes=changes)
            src = accounts.get_source(conn=conn, tenant_id=ws.tenant_id, name=name)
    except MedscrmError as exc:
        _fail(exc)
    console.print(f"source {name} settings: {shown}")
    if src and src["kind"] in ("wecom", "wechat"):
        console.print(f"callback URL: http(s)://YOUR-HOST/callbacks/{src['kind']}/{src['id']}")


@sources_app.command("list")
def sources_list(tenant: TenantOpt = None) -> None:
    """List sources with their kind and key hint."""
    from medscrm.accounts import service as accounts

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = accounts.list_sources(conn=conn, tenant_id=ws.tenant_id)
    t = Table("name", "kind", "id", "write key", "created")
    for r in rows:
        t.add_row(r["name"], r["kind"], r["id"], r["write_key_hint"] + "…", str(r["created_at"])[:19])
    console.print(t)


# --- tokens --------------------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="admin, marketer, analyst, rep or compliance.")],
    name: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    user: Annotated[
        str | None,
        typer.Option(
            help="Username the token acts as (optional). A rep token sees only the HCPs this user owns "
            "(none without a user)."
        ),
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """Create an API token. Prints the token (Authorization: Bearer …) as the last line."""
    from medscrm.accounts import service as accounts

    ws = _ws(tenant)
    try:
        with ws.engine.begin() as conn:
            user_id = None
            if user:
                u = accounts.get_user(conn=conn, tenant_id=ws.tenant_id, username=user)
                if not u:
                    raise MedscrmError(f"user: no user {user!r} in this tenant")
                user_id = u["id"]
            tok = accounts.create_token(
                conn=conn, tenant_id=ws.tenant_id, role=role, name=name, user_id=user_id
            )
    except (MedscrmError, ValueError) as exc:
        _fail(exc)
    console.print(f"token {tok.id} created with role [bold]{tok.role}[/]. It is shown once:")
    print(tok.token)


@tokens_app.command("list")
def tokens_list(tenant: TenantOpt = None) -> None:
    """List tokens (hints only; the secret is never stored)."""
    from medscrm.accounts import service as accounts

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = accounts.list_tokens(conn=conn, tenant_id=ws.tenant_id)
    t = Table("id", "role", "name", "hint", "created", "revoked")
    for r in rows:
        t.add_row(
            r["id"],
            r["role"],
            r["name"] or "",
            r["token_hint"] + "…",
            str(r["created_at"])[:19],
            str(r["revoked_at"] or "")[:19],
        )
    console.print(t)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, tenant: TenantOpt = None) -> None:
    """Revoke a token by id; it stops working at once."""
    from medscrm.accounts import service as accounts

    _transact(
        tenant, lambda conn, ws: accounts.revoke_token(conn=conn, tenant_id=ws.tenant_id, token_id=token_id)
    )
    console.print(f"revoked {token_id}")


# --- users ---------------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option("--username")],
    role: Annotated[str, typer.Option("--role", help="admin, marketer, analyst, rep or compliance.")],
    password: Annotated[str | None, typer.Option(help="Console password (omit for API-only users).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the console.")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Create a user with a role."""
    from medscrm.accounts import service as accounts

    u = _transact(
        tenant,
        lambda conn, ws: accounts.create_user(
            conn=conn,
            tenant_id=ws.tenant_id,
            username=username,
            role=role,
            password=password,
            display_name=display_name,
        ),
        errors=(MedscrmError, ValueError),
    )
    console.print(f"user {u['username']} ({u['role']}) created: {u['id']}")


# --- import --------------------------------------------------------------------------------------
def print_report(report, *, show: int = 20) -> None:
    from rich.panel import Panel

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


@app.command("import")
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
    from medscrm.ingest.importer import import_file
    from medscrm.ingest.mapping import load_mapping

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
def imports_list(limit: int = 20, tenant: TenantOpt = None) -> None:
    """Recent imports with their counts."""
    import sqlalchemy as sa

    from medscrm.db.schema import imports, sources

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
    t = Table("id", "file", "source", "status", "rows", "imported", "dup", "rejected", "started")
    for r in rows:
        t.add_row(
            r["id"],
            r["file_name"],
            r["source"] or "",
            r["status"],
            f"{r['rows_total']:,}",
            f"{r['rows_accepted']:,}",
            f"{r['rows_duplicate']:,}",
            f"{r['rows_rejected']:,}",
            str(r["started_at"])[:19],
        )
    console.print(t)


# --- quarantine ----------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    status: Annotated[str, typer.Option(help="open, replayed, discarded or all.")] = "open",
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: int = 50,
    tenant: TenantOpt = None,
) -> None:
    """List quarantined input with the reason."""
    from medscrm.ingest import quarantine as qs

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = qs.list_entries(
            conn=conn,
            tenant_id=ws.tenant_id,
            status=None if status == "all" else status,
            source=source,
            limit=limit,
        )
    t = Table("id", "source", "file", "row", "field", "reason", "status")
    for r in rows:
        t.add_row(
            r["id"],
            r["source_name"] or "",
            r["file_name"] or "",
            str(r["row_number"] or ""),
            r["field"] or "",
            r["reason"],
            r["status"],
        )
    console.print(t)


@quarantine_app.command("show")
def quarantine_show(entry_id: str, tenant: TenantOpt = None) -> None:
    """Show one entry: every problem and the payload as sent (and as fixed)."""
    from medscrm.ingest import quarantine as qs

    ws = _ws(tenant)
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
    from medscrm.ingest import quarantine as qs

    changes = {}
    for kv in set_:
        if "=" not in kv:
            _fail(MedscrmError(f"--set {kv!r}: use COLUMN=VALUE"))
        k, v = kv.split("=", 1)
        changes[k] = v
    fixed = _transact(
        tenant, lambda conn, ws: qs.fix(conn=conn, tenant_id=ws.tenant_id, entry_id=entry_id, changes=changes)
    )
    console.print_json(json.dumps(fixed, ensure_ascii=False, default=str))


@quarantine_app.command("replay")
def quarantine_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Entry ids (default: with --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every open entry.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Validate entries again; those that pass become source records. Exit 1 if any still fail."""
    from medscrm.ingest import quarantine as qs

    if not entry_ids and not all_:
        _fail(MedscrmError("give entry ids or --all"))
    res = _transact(
        tenant,
        lambda conn, ws: qs.replay(
            conn=conn, tenant_id=ws.tenant_id, entry_ids=None if all_ else list(entry_ids or [])
        ),
    )
    console.print(f"replayed {len(res['replayed'])}; still failing {len(res['still_bad'])}")
    for s in res["still_bad"][:20]:
        console.print(f"  {s['id']}: " + "; ".join(f"{i['field']}: {i['reason']}" for i in s["issues"]))
    raise typer.Exit(1 if res["still_bad"] else 0)


@quarantine_app.command("discard")
def quarantine_discard(
    entry_id: str, reason: Annotated[str, typer.Option(help="Why.")], tenant: TenantOpt = None
) -> None:
    """Mark an entry discarded (kept for the record, never imported)."""
    from medscrm.ingest import quarantine as qs

    _transact(
        tenant,
        lambda conn, ws: qs.discard(conn=conn, tenant_id=ws.tenant_id, entry_id=entry_id, reason=reason),
    )
    console.print(f"discarded {entry_id}")


# --- events ------------------------------------------------------------------------------------
events_app = typer.Typer(help="Stored events: tail them live.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("tail")
def events_tail(
    user_id: Annotated[str | None, typer.Option(help="Only this userId.")] = None,
    person_id: Annotated[str | None, typer.Option(help="Only this person.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="track, identify, page, ...")] = None,
    last: Annotated[int, typer.Option(help="Show the last N events first.")] = 10,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep polling for new events.")] = True,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    url: Annotated[
        str | None,
        typer.Option(
            help="Read through a running server's API instead of the database "
            "(needed while `medscrm serve` holds an embedded DuckDB file)."
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="MEDSCRM_TOKEN", help="API token for --url.")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Show stored events, newest last, and keep showing new ones (Ctrl-C to stop)."""
    import time

    from medscrm.api.events import query_events

    if url:
        import datetime as _dt

        import httpx

        def fetch(limit: int) -> list[dict]:
            params = {
                k: v
                for k, v in {
                    "user_id": user_id,
                    "person_id": person_id,
                    "type": type_,
                    "limit": limit,
                }.items()
                if v
            }
            r = httpx.get(
                url.rstrip("/") + "/api/v1/events",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            if r.status_code != 200:
                _fail(MedscrmError(f"{url}: HTTP {r.status_code}: {r.text[:200]}"))
            rows = r.json()["events"]
            for row in rows:
                for k in ("received_at", "timestamp"):
                    row[k] = _dt.datetime.fromisoformat(row[k])
            return rows
    else:
        try:
            ws = _ws(tenant)
        except Exception as exc:  # DuckDB refuses a second process while the server writes
            _fail(
                MedscrmError(
                    f"cannot open the database ({exc}); while `medscrm serve` runs on an embedded "
                    "DuckDB file, use --url http://HOST:PORT --token TOKEN"
                )
            )

        def fetch(limit: int) -> list[dict]:
            with ws.engine.connect() as conn:
                return query_events(
                    conn,
                    tenant_id=ws.tenant_id,
                    person_id=person_id,
                    user_id=user_id,
                    type_=type_,
                    limit=limit,
                )

    seen: set[str] = set()
    since = None

    def show(rows: list[dict]) -> None:
        for r in sorted(rows, key=lambda r: (r["received_at"], r["id"])):
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            who = r["user_id"] or f"anon:{r['anonymous_id']}"
            what = r["event"] or r["name"] or ""
            props = json.dumps(r["properties"] or {}, ensure_ascii=False, default=str)[:100]
            console.print(f"{str(r['timestamp'])[:19]}  [bold]{r['type']:<8}[/] {what:<28} {who:<20} {props}")

    try:
        while True:
            with ws.engine.connect() as conn:
                rows = query_events(
                    conn,
                    tenant_id=ws.tenant_id,
                    person_id=person_id,
                    user_id=user_id,
                    type_=type_,
                    limit=last if since is None else 1000,
                )
            if rows:
                since = max(r["received_at"] for r in rows)
            show(rows)
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


# --- identity (OneID) ---------------------------------------------------------------------------
identity_app = typer.Typer(
    help="OneID: resolve records into persons, review uncertain pairs, merge and "
    "unmerge. 统一身份：合并、拆分与人工复核。",
    no_args_is_help=True,
)
review_app = typer.Typer(help="The review queue of uncertain pairs.", no_args_is_help=True)
identity_app.add_typer(review_app, name="review")
app.add_typer(identity_app, name="identity")
persons_app = typer.Typer(help="Golden records: show a person with lineage.", no_args_is_help=True)
app.add_typer(persons_app, name="persons")


@identity_app.command("run")
def identity_run(
    survivorship: Annotated[
        Path | None, typer.Option(help="Survivorship rules YAML (default: shipped).")
    ] = None,
    settings: Annotated[
        Path | None, typer.Option(help="Match settings YAML (default: the HCP settings).")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Resolve every record again and retrain the model (default: link only the new "
            "records when a previous run exists). 全量重算。",
        ),
    ] = False,
    tenant: TenantOpt = None,
) -> None:
    """Resolve source records into persons (OneID) and rebuild golden records.

    After a first full run, new records (imports, identify calls) are linked incrementally into
    the existing persons with the saved model; `--full` resolves everything again. People's
    decisions (merges, unmerges, rejections) are respected; uncertain pairs go to the review
    queue; person ids stay stable across runs. 增量关联新记录；--full 全量重算。
    """
    from medscrm.persons.engine import resolve_with_engine
    from medscrm.persons.incremental import run_incremental
    from medscrm.persons.run import run_identity
    from medscrm.persons.survivorship import load_survivorship

    try:
        cfg = load_survivorship(survivorship)
    except MedscrmError as exc:
        _fail(exc)
    from medscrm.identity.cli import model_path

    ws = _ws(tenant)
    model_file = model_path(ws.engine, ws.tenant_slug)
    t = Table.grid(padding=(0, 2))
    inc = None
    with console.status("resolving identities…"), ws.engine.begin() as conn:
        if not full and settings is None:
            inc = run_incremental(
                conn, tenant_id=ws.tenant_id, model_file=model_file, survivorship=cfg, actor="cli"
            )
        if inc is None:
            rep, result, queued = run_identity(
                conn,
                tenant_id=ws.tenant_id,
                survivorship=cfg,
                actor="cli",
                resolve=lambda recs: resolve_with_engine(recs, settings_path=settings, model_file=model_file),
            )
    if inc is not None:
        for k, v in (
            ("mode", "incremental (new records only; --full to resolve everything)"),
            ("new source records", f"{inc.new_records:,}"),
            ("joined an existing person", f"{inc.attached:,}"),
            ("new persons", f"{inc.created:,}"),
            ("persons that grew", f"{inc.grown:,}"),
            ("merges", f"{inc.merged:,}"),
            ("pairs queued for review", f"{inc.review_pairs:,}"),
            ("persons", f"{inc.persons:,}"),
            ("seconds", ", ".join(f"{k} {v}" for k, v in inc.seconds.items())),
        ):
            t.add_row(k, v)
        console.print(t)
        return
    for k, v in (
        ("source records", rep.records),
        ("persons", rep.persons),
        ("new persons", rep.created),
        ("persons that grew", rep.grown),
        ("merges", rep.merged),
        ("splits", rep.split),
        ("persons with conflicting values", rep.conflicts),
        ("pairs queued for review", queued),
    ):
        t.add_row(k, f"{v:,}")
    for k, v in result.summary.items():
        t.add_row(k, str(v))
    console.print(t)


@identity_app.command("explain")
def identity_explain(
    record_a: Annotated[str, typer.Argument(help="Source record id (sr_…).")],
    record_b: Annotated[str, typer.Argument(help="Source record id (sr_…).")],
    tenant: TenantOpt = None,
) -> None:
    """Why two records did or did not match: every comparison, its level and weight, the decision."""
    from medscrm.identity.cli import explain_command

    try:
        explain_command(record_a, record_b, tenant)
    except MedscrmError as exc:
        _fail(exc)


@review_app.command("list")
def review_list(limit: int = 20, tenant: TenantOpt = None) -> None:
    """Open uncertain pairs, most likely first, side by side with the reasons."""
    from medscrm.persons import review

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = review.list_reviews(conn=conn, tenant_id=ws.tenant_id, limit=limit)
    for r in rows:
        t = Table("field", "A", "B", title=f"{r['id']}  p={r['probability']:.3f}", title_justify="left")
        for f in (
            "source",
            "name",
            "hospital",
            "department",
            "title",
            "city",
            "phone",
            "email",
            "license_no",
        ):
            t.add_row(f, str((r["a"] or {}).get(f) or ""), str((r["b"] or {}).get(f) or ""))
        console.print(t)
        if r["detail"]:
            console.print("  why: " + json.dumps(r["detail"], ensure_ascii=False, default=str)[:300])


@review_app.command("decide")
def review_decide(
    review_id: str,
    decision: Annotated[str, typer.Argument(help="merge or reject")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Decide a pair: merge (same person) or reject (never merge these two)."""
    from medscrm.persons import review

    res = _transact(
        tenant,
        lambda conn, ws: review.decide(
            conn,
            tenant_id=ws.tenant_id,
            review_id=review_id,
            decision=decision,
            actor="cli",
            reason=reason,
        ),
    )
    console.print(res)


@identity_app.command("merge")
def identity_merge(
    person_a: str,
    person_b: str,
    reason: Annotated[str | None, typer.Option()] = None,
    tenant: TenantOpt = None,
) -> None:
    """Merge person B into person A (kept together by later runs)."""
    from medscrm.persons import review

    rep = _transact(
        tenant,
        lambda conn, ws: review.merge_persons(
            conn, tenant_id=ws.tenant_id, person_a=person_a, person_b=person_b, actor="cli", reason=reason
        ),
    )
    console.print(f"merged into {rep.person_of.get(person_a, person_a)}")


@identity_app.command("unmerge")
def identity_unmerge(
    person_id: str,
    records: Annotated[list[str], typer.Option("--record", help="Source record id to split off; repeat.")],
    reason: Annotated[str | None, typer.Option()] = None,
    tenant: TenantOpt = None,
) -> None:
    """Split records off a person into a new one (kept apart by later runs)."""
    from medscrm.persons import review

    rep = _transact(
        tenant,
        lambda conn, ws: review.unmerge(
            conn,
            tenant_id=ws.tenant_id,
            person_id=person_id,
            record_ids=records,
            actor="cli",
            reason=reason,
        ),
    )
    new = [p for k, p in rep.person_of.items() if k.startswith("split:")]
    console.print(f"split off into {', '.join(new)}")


@persons_app.command("search")
def persons_search(
    q: Annotated[str | None, typer.Argument(help="Part of the name.")] = None,
    hospital: Annotated[str | None, typer.Option(help="Part of the hospital name.")] = None,
    department: Annotated[str | None, typer.Option(help="Part of the department.")] = None,
    role: Annotated[
        str, typer.Option(help="Show as this role (PII masked for roles without PII rights).")
    ] = "analyst",
    limit: int = 20,
    tenant: TenantOpt = None,
) -> None:
    """Search golden records by name, hospital or department."""
    from medscrm.profiles import service as profiles

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = profiles.search(
            conn,
            tenant_id=ws.tenant_id,
            q=q,
            hospital=hospital,
            department=department,
            role=role,
            limit=limit,
        )
    t = Table("person", "name", "hospital", "department", "title", "city", "phone")
    for r in rows:
        t.add_row(
            r["person_id"],
            *[str(r.get(k) or "") for k in ("name", "hospital", "department", "title", "city", "phone")],
        )
    console.print(t)


@persons_app.command("show")
def persons_show(person_id: str, tenant: TenantOpt = None) -> None:
    """A person's golden record: each attribute with the source record and rule it came from."""
    import sqlalchemy as sa

    from medscrm.db.schema import identities, persons
    from medscrm.persons import review

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        p = (
            conn.execute(
                sa.select(persons).where(persons.c.tenant_id == ws.tenant_id, persons.c.id == person_id)
            )
            .mappings()
            .first()
        )
        if not p:
            _fail(MedscrmError(f"person {person_id!r} not found"))
        ids = conn.execute(
            sa.select(identities.c.type, identities.c.value).where(
                identities.c.tenant_id == ws.tenant_id, identities.c.person_id == person_id
            )
        ).all()
        recs = review.current_clusters(conn, ws.tenant_id).get(person_id, [])
    if p["status"] == "merged":
        console.print(f"[yellow]{person_id} was merged into {p['merged_into']}[/]")
    t = Table("attribute", "value", "source", "rule", "conflicts", title=f"{person_id} ({p['person_type']})")
    for k, v in (p["attributes"] or {}).items():
        lin = (p["lineage"] or {}).get(k, {})
        t.add_row(
            k, str(v), lin.get("source", ""), lin.get("rule", ""), ", ".join(lin.get("conflicts", []))[:60]
        )
    console.print(t)
    console.print("identities: " + ", ".join(f"{a}={b}" for a, b in ids))
    console.print(f"source records: {len(recs)}")


# --- audit ---------------------------------------------------------------------------------------
@audit_app.command("list")
def audit_list(limit: int = 50, tenant: TenantOpt = None) -> None:
    """Newest audit entries first."""
    from medscrm.accounts import service as accounts

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = accounts.list_audit(conn=conn, tenant_id=ws.tenant_id, limit=limit)
    t = Table("when", "actor", "action", "object", "detail")
    for r in rows:
        t.add_row(
            str(r["occurred_at"])[:19],
            r["actor"],
            r["action"],
            f"{r['object_type'] or ''} {r['object_id'] or ''}",
            json.dumps(r["detail"], ensure_ascii=False, default=str)[:80],
        )
    console.print(t)


# --- synth, demo, serve --------------------------------------------------------------------------
@app.command()
def synth(
    hcps: Annotated[int, typer.Option("--hcps", help="Number of distinct HCPs.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    patients: Annotated[
        int | None, typer.Option(help="Patients in the patient programme (default hcps/5).")
    ] = None,
) -> None:
    """Write realistic synthetic source files for one tenant, with a ground-truth file."""
    from medscrm.synth import generate

    manifest = generate(out, hcps=hcps, seed=seed, patients=patients, progress=True)
    t = Table("source", "file", "rows")
    for s in manifest.sources:
        t.add_row(s["name"], s["file"], f"{s['rows']:,}")
    console.print(t)
    console.print(f"ground truth: {out / manifest.ground_truth}")


@app.command()
def demo(
    hcps: Annotated[int, typer.Option(help="HCPs in the demo tenant.")] = 2000,
    data_dir: Annotated[Path, typer.Option(help="Where the synthetic files go.")] = Path("demo-data"),
    seed: int = 42,
    tenant: Annotated[str, typer.Option(help="Demo tenant slug.")] = "demo",
) -> None:
    """Build a demo tenant end to end from synthetic data and print what happened."""
    from medscrm.demo import run_demo

    try:
        code = run_demo(hcps=hcps, data_dir=data_dir, seed=seed, tenant=tenant, console=console)
    except MedscrmError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (PostgreSQL only; DuckDB allows one process). One Python process "
            "uses one core: on a machine with C cores, C workers serve up to C times the requests. "
            "Each keeps its own event spool; the segment refresher runs in one of them.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /openapi.json) and the web console (/)."""
    import os

    import uvicorn

    from medscrm.app import create_app
    from medscrm.config import get_settings
    from medscrm.db import get_engine, upgrade_to_head
    from medscrm.workers import WORKERS_ENV

    get_settings()  # a bad MEDSCRM_ENV or a weak production key stops here, before anything starts
    engine = get_engine()
    upgrade_to_head(engine)
    # --- operability: log format, access log, multiprocess metrics (medscrm.api.observe) ---
    from medscrm.api.observe import serve_options
    from medscrm.app import default_spool_dir

    options = serve_options(workers, engine, default_spool_dir(engine.url))
    if workers > 1:
        if engine.dialect.name != "postgresql":
            _fail(
                MedscrmError(
                    f"--workers: {workers} processes need PostgreSQL; the embedded DuckDB database "
                    "can be opened by one process only (use --workers 1)"
                )
            )
        engine.dispose()
        os.environ[WORKERS_ENV] = str(workers)
        uvicorn.run(
            "medscrm.app:create_served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **options,
        )
        return
    uvicorn.run(create_app(), host=host, port=port, **options)


from medscrm.identity.cli import register as _register_identity  # noqa: E402

_register_identity(app)


from medscrm.segments.cli import register as register_segments  # noqa: E402

register_segments(app)

# --- CLI registrations of later modules (one line each): scores (issue 5), content/outreach,
# journeys/worker (issue 6), web console (issue 7) ---
from medscrm.journeys.cli import register as _register_journeys  # noqa: E402
from medscrm.outreach.cli import register as _register_outreach  # noqa: E402
from medscrm.scores.cli import register as _register_scores  # noqa: E402

_register_scores(app)  # scores, behaviour tags, micro-segments (issue 5)
_register_journeys(app)  # journeys + worker (issue 6)
_register_outreach(app)  # content, consents, sends (issue 6)
from medscrm.db.cli import app as _db_app  # noqa: E402
from medscrm.webhooks.cli import app as _webhooks_app  # noqa: E402

app.add_typer(_db_app, name="db")  # upgrade, current, backup, restore
app.add_typer(_webhooks_app, name="webhooks")  # outbound event subscriptions


def main() -> None:  # pragma: no cover
    try:
        app()
    except MedscrmError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
