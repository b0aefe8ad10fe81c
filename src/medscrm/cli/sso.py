"""``medscrm sso configure|show|disable``: console single sign-on (OpenID Connect) per tenant."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from medscrm.cli._common import _ws
from medscrm.common import MedscrmError

# The commands import their services when they run, so that `medscrm --help` stays light.

console = Console()
err = Console(stderr=True, soft_wrap=True)
app = typer.Typer(
    help=(
        "Single sign-on to the console with the tenant's OpenID Connect provider: its groups map to "
        "roles (the most privileged mapped role wins: admin > compliance > marketer > analyst > rep)."
    ),
    no_args_is_help=True,
)
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Tenant slug (default: $MEDSCRM_TENANT or 'default').")
]


def _run(tenant: str | None, fn, *, write: bool = True):
    try:
        ws = _ws(tenant)  # one line, no traceback, when a running server holds the file
        with ws.engine.begin() if write else ws.engine.connect() as conn:
            return fn(conn, ws)
    except MedscrmError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _print(cfg: dict | None) -> None:
    from medscrm.accounts.sso import format_role_map

    if cfg is None:
        console.print("single sign-on: not configured")
        return
    console.print(f"single sign-on: {'on' if cfg['enabled'] else 'off'}")
    for key in ("issuer", "client_id", "display_name", "groups_claim", "username_claim"):
        console.print(f"  {key}: {cfg[key]}")
    console.print(f"  scopes: {' '.join(cfg['scopes'])}")
    console.print(
        f"  client_secret: {'set (never shown)' if cfg['client_secret_set'] else 'none (public client)'}"
    )
    console.print(f"  role_map: {format_role_map(cfg['role_map'])}")
    console.print(f"  jit: {'yes' if cfg['jit'] else 'no'}")
    console.print(f"  local_passwords: {'yes' if cfg['local_passwords'] else 'admins only (break-glass)'}")
    console.print(f"  updated: {cfg['updated_at']} by {cfg['updated_by']}")


@app.command("configure")
def configure(
    issuer: Annotated[
        str | None,
        typer.Option(help="The provider's issuer URL (its /.well-known/openid-configuration is read)."),
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="The client id the provider gave medscrm.")] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read the client secret from standard input (it is sealed, never shown).",
        ),
    ] = False,
    public_client: Annotated[
        bool, typer.Option("--public-client", help="Remove the client secret (a public client: PKCE only).")
    ] = False,
    role_map: Annotated[
        str | None,
        typer.Option(help="IdP group to role, e.g. 'pharma-admins=admin,pharma-marketing=marketer'."),
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="The name on the login button.")] = None,
    scopes: Annotated[str | None, typer.Option(help="Space-separated scopes (must include openid).")] = None,
    groups_claim: Annotated[str | None, typer.Option(help="The ID-token claim listing the groups.")] = None,
    username_claim: Annotated[
        str | None, typer.Option(help="The claim giving the username (then email, then sub).")
    ] = None,
    jit: Annotated[
        bool | None, typer.Option("--jit/--no-jit", help="Create users at their first sign-in.")
    ] = None,
    local_passwords: Annotated[
        bool | None,
        typer.Option(
            "--local-passwords/--no-local-passwords",
            help="Whether local passwords still sign in (when off, admins with a password still may).",
        ),
    ] = None,
    tenant: TenantOpt = None,
    actor: Annotated[str, typer.Option(help="Who changes it (audited).")] = "cli",
) -> None:
    """Set (or change) the tenant's single sign-on and turn it on. Unset options keep their value."""
    from medscrm.accounts import sso

    secret: str | None = None
    if client_secret_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            err.print("[bold red]error:[/] client_secret: standard input was empty")
            raise typer.Exit(2)
    if public_client:
        secret = ""
    try:
        mapping = sso.parse_role_map(role_map) if role_map is not None else None
    except MedscrmError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    cfg = _run(
        tenant,
        lambda c, ws: sso.configure(
            c,
            ws.tenant_id,
            actor=actor,
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            role_map=mapping,
            display_name=display_name,
            scopes=scopes.replace(",", " ").split() if scopes is not None else None,
            groups_claim=groups_claim,
            username_claim=username_claim,
            jit=jit,
            local_passwords=local_passwords,
        ),
    )
    _print(cfg)


@app.command("show")
def show(tenant: TenantOpt = None) -> None:
    """The tenant's single sign-on settings (the client secret is never shown)."""
    from medscrm.accounts import sso

    _print(_run(tenant, lambda c, ws: sso.show(c, ws.tenant_id), write=False))


@app.command("disable")
def disable(
    tenant: TenantOpt = None, actor: Annotated[str, typer.Option(help="Who turns it off (audited).")] = "cli"
) -> None:
    """Turn single sign-on off (settings kept; local passwords sign in again for everyone)."""
    from medscrm.accounts import sso

    _run(tenant, lambda c, ws: sso.disable(c, ws.tenant_id, actor=actor))
    console.print("single sign-on: off")
