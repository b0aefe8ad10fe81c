"""What every command module of the ``medscrm`` command line shares: consoles, the tenant option,
opening the workspace, failing with a user-facing message."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medscrm.accounts.service import UnknownTenant
from medscrm.cli._ids import resolve_id
from medscrm.common import MedscrmError
from medscrm.config import get_settings
from medscrm.workspace import open_workspace, running_server

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

WideOpt = Annotated[
    bool, typer.Option("--wide", help="Full values in every column (ids never cut), however wide the table.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON array of the rows, full values.")]

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Tenant slug (default: $MEDSCRM_TENANT or 'default'). It must exist: `medscrm tenants "
        "create SLUG` creates one.",
    ),
]


def _ws(tenant: str | None):
    server = running_server()
    if server is not None:  # it holds the embedded file's lock: say so in one line, no traceback
        _fail(MedscrmError(held_message(server)))
    try:
        return open_workspace(tenant)
    except MedscrmError as exc:  # an unknown tenant: one line naming it and the known ones
        _fail(exc)


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


def _transact(tenant: str | None, fn, *, errors: tuple[type[Exception], ...] = (MedscrmError,)):
    """Run ``fn(conn, ws)`` in one transaction on the workspace; a user-facing error exits with 2."""
    ws = _ws(tenant)
    try:
        with ws.engine.begin() as conn:
            return fn(conn, ws)
    except errors as exc:
        _fail(exc)


def _rid(ws, kind: str, value: str) -> str:
    """The full id of a ``kind`` given as an id or a unique prefix (see :mod:`medscrm.cli._ids`)."""

    try:
        with ws.engine.connect() as conn:
            return resolve_id(conn, ws.tenant_id, kind, value)
    except MedscrmError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def _rids(ws, kind: str, values: list[str]) -> list[str]:
    return [_rid(ws, kind, v) for v in values]


def print_rows(
    rows: list[dict],
    columns: list[tuple[str, Any]],
    *,
    wide: bool = False,
    as_json: bool = False,
    id_columns: tuple[str, ...] = ("id",),
    title: str | None = None,
) -> None:
    """A list command's output. ``columns``: (header, key or function of the row). Id columns are
    never cut (other columns give way); ``wide`` prints every value in full, ``as_json`` the rows as
    one JSON array (every field, full values)."""

    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    t = Table(title=title, title_justify="left")
    for header, _ in columns:
        if header in id_columns:
            longest = max((len(str(_cell(r, columns, header))) for r in rows), default=len(header))
            t.add_column(header, no_wrap=True, min_width=max(longest, len(header)))
        else:
            t.add_column(header, no_wrap=wide)
    for r in rows:
        t.add_row(*[_cell(r, columns, h) for h, _ in columns])
    if wide:
        Console(width=100_000).print(t, crop=False)
    else:
        console.print(t)


def _cell(row: dict, columns: list[tuple[str, Any]], header: str) -> str:
    get = dict(columns)[header]
    v = get(row) if callable(get) else row.get(get)
    return "" if v is None else str(v)


# --- beside a running `medscrm serve` ---------------------------------------------------------------
def held_message(server, hint: str | None = None) -> str:
    """One line: the database is held by a running server, and what to do."""
    via = hint or f"{server.url}/docs (REST API) or {server.url}/ (console)"
    return (
        f"the database is held by `medscrm serve` (pid {server.pid}, {server.url}); "
        f"stop it, or run this through the API: {via}"
    )


class ServerApi:
    """Reads through the API of the `medscrm serve` that holds the embedded database."""

    def __init__(self, server, token: str, slug: str):
        self.server, self.token, self.slug = server, token, slug

    def get(self, path: str, *, params: dict | None = None, missing: str | None = None) -> Any:
        import httpx

        deadline = time.monotonic() + 30  # a server that is still starting has written its file already
        while True:
            try:
                r = httpx.get(
                    self.server.url + path,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=30,
                )
                break
            except httpx.ConnectError as exc:
                if time.monotonic() > deadline:
                    _fail(MedscrmError(f"{held_message(self.server)} (the API did not answer: {exc})"))
                time.sleep(0.5)
            except httpx.HTTPError as exc:
                _fail(MedscrmError(f"{held_message(self.server)} (the API did not answer: {exc})"))
        if r.status_code == 404 and missing:
            _fail(MedscrmError(missing))
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text[:200]
            _fail(MedscrmError(f"the server answered {r.status_code} on {path}: {detail}"))
        return r.json()


def via_server(tenant: str | None, hint: str | None = None) -> ServerApi | None:
    """When `medscrm serve` holds the embedded database: a reader of its API, authenticated with
    MEDSCRM_API_TOKEN or the token serve left in the server file for the tenant (else one line saying
    what to do). None when no server holds it (read the database directly)."""

    server = running_server()
    if server is None:
        return None
    settings = get_settings()
    slug = tenant or settings.tenant
    token = settings.api_token or server.tokens.get(slug)
    if not token:
        if server.tokens:  # the server made a token for every tenant: this slug is none of them
            _fail(UnknownTenant(slug, sorted(server.tokens)))
        err.print(
            held_message(server, hint) + " (set MEDSCRM_API_TOKEN to read through it)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    return ServerApi(server, token, slug)
