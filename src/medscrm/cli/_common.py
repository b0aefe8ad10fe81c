"""What every command module of the ``medscrm`` command line shares: consoles, the tenant option,
opening the workspace, failing with a user-facing message."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from medscrm.common import MedscrmError
from medscrm.workspace import open_workspace

console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant", help="Tenant slug (default: $MEDSCRM_TENANT or 'default'). Created on first use."
    ),
]


def _ws(tenant: str | None):
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
