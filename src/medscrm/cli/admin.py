"""Administration: sealed secrets, sources, API tokens, users, the audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from medscrm.accounts import service as accounts
from medscrm.cli._common import JsonOpt, TenantOpt, WideOpt, _fail, _transact, _ws, console, err, print_rows
from medscrm.cli._ids import resolve_id
from medscrm.common import MedscrmError
from medscrm.db import get_engine, upgrade_to_head

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

tenants_app = typer.Typer(
    help="Tenants (one per company or brand team). A tenant is only ever created here: an unknown "
    "--tenant is an error. 租户：只能用 `medscrm tenants create` 显式创建。",
    no_args_is_help=True,
)
sources_app = typer.Typer(help="Data sources and their write keys (for the event API).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Bearer) for /api/v1, each with a role.", no_args_is_help=True)
users_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Sealed credentials (channel secrets, source configs, webhook signing secrets): re-seal them "
    "with a new MEDSCRM_SECRET_KEY (key rotation).",
    no_args_is_help=True,
)


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


# --- tenants -------------------------------------------------------------------------------------
@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Tenant slug: letters, digits, - and _ (at most 64).")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the slug).")] = None,
) -> None:
    """Create a tenant. Other commands then act on it with --tenant SLUG (or MEDSCRM_TENANT=SLUG)."""

    engine = get_engine()
    upgrade_to_head(engine)
    try:
        with engine.begin() as conn:
            t = accounts.create_tenant(conn=conn, slug=slug, name=name, actor="cli")
    except MedscrmError as exc:
        _fail(exc)
    console.print(f"tenant [bold]{t['slug']}[/] created ({t['id']})")


@tenants_app.command("list")
def tenants_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, full values.")] = False,
) -> None:
    """List the tenants of this workspace."""

    engine = get_engine()
    upgrade_to_head(engine)
    with engine.connect() as conn:
        rows = accounts.list_tenants(conn=conn)
    if as_json:
        print(json.dumps([{k: r[k] for k in ("id", "slug", "name")} for r in rows], ensure_ascii=False))
        return
    t = Table("slug", "name", "id", "created")
    for r in rows:
        t.add_row(r["slug"], r["name"], r["id"], str(r["created_at"])[:19])
    console.print(t)


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
def tokens_list(wide: WideOpt = False, as_json: JsonOpt = False, tenant: TenantOpt = None) -> None:
    """List tokens (hints only; the secret is never stored)."""

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = accounts.list_tokens(conn=conn, tenant_id=ws.tenant_id)
    print_rows(
        [{k: v for k, v in dict(r).items() if k != "token_hash"} for r in rows],
        [
            ("id", "id"),
            ("role", "role"),
            ("name", "name"),
            ("hint", lambda r: r["token_hint"] + "…"),
            ("created", lambda r: str(r["created_at"])[:19]),
            ("revoked", lambda r: str(r["revoked_at"] or "")[:19]),
        ],
        wide=wide,
        as_json=as_json,
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, tenant: TenantOpt = None) -> None:
    """Revoke a token by id; it stops working at once."""

    _transact(
        tenant,
        lambda conn, ws: accounts.revoke_token(
            conn=conn, tenant_id=ws.tenant_id, token_id=resolve_id(conn, ws.tenant_id, "token", token_id)
        ),
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


# --- audit ---------------------------------------------------------------------------------------
@audit_app.command("list")
def audit_list(limit: int = 50, tenant: TenantOpt = None) -> None:
    """Newest audit entries first."""

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
