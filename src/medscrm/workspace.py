"""Opening the workspace: the configured database, migrated, and the tenant to act on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import utcnow
from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head
from medscrm.db.schema import api_tokens

#: the tenant a brand-new workspace starts with, so that `medscrm import …` works in an empty folder
BOOTSTRAP_TENANT = "default"


@dataclass
class Workspace:
    engine: sa.Engine
    tenant_id: str
    tenant_slug: str


def open_workspace(tenant: str | None = None, url: str | None = None) -> Workspace:
    """The workspace at ``url`` (default: the configured database) acting on tenant ``tenant``
    (default: MEDSCRM_TENANT). The tenant must exist (`medscrm tenants create`): an unknown slug is
    an error naming the known ones, so a typo never creates a tenant. The one exception is a
    workspace without any tenant, which gets the tenant ``default`` on first use."""
    settings = get_settings()
    engine = get_engine(url or settings.database_url)
    upgrade_to_head(engine)
    slug = tenant or settings.tenant
    with engine.begin() as conn:
        if slug == BOOTSTRAP_TENANT and not accounts.list_tenants(conn=conn):
            t = accounts.ensure_tenant(conn=conn, slug=slug)
        else:
            t = accounts.require_tenant(conn=conn, slug=slug)
    return Workspace(engine=engine, tenant_id=t["id"], tenant_slug=slug)


# --- the running server ----------------------------------------------------------------------------
# `medscrm serve` on the embedded DuckDB file holds the file's lock: no other process may open it.
# So that the command line can say so in one line (or go through the server's API instead), serve
# writes a small server file beside the database (``FILE.server.json``: pid, url, and an API token
# per tenant for the command line, readable by the file's owner only) and removes it on exit.

#: the name of the API tokens serve makes for the command line (revoked when serve stops)
CLI_TOKEN_NAME = "medscrm-cli (serve)"


@dataclass
class RunningServer:
    pid: int
    url: str
    database: str
    tokens: dict[str, str]  # tenant slug -> API token (role admin) for the command line
    path: Path


def server_file(database_url: str | None = None) -> Path | None:
    """Where `medscrm serve` announces itself for this database (None: not an embedded file)."""
    url = sa.make_url(database_url or get_settings().database_url)
    if url.get_backend_name() != "duckdb" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database + ".server.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def running_server(database_url: str | None = None) -> RunningServer | None:
    """The `medscrm serve` process holding this database, if one is running (a server file left by
    a process that died is ignored)."""
    path = server_file(database_url)
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
    return RunningServer(
        pid=pid,
        url=str(data.get("url") or ""),
        database=str(data.get("database") or ""),
        tokens=dict(data.get("tokens") or {}),
        path=path,
    )


def announce_server(engine: sa.Engine, *, url: str) -> Path | None:
    """Write the server file for ``engine``'s DuckDB file, with a fresh command-line API token per
    tenant (tokens left by an earlier serve that died are revoked first). Returns its path."""
    path = server_file(engine.url.render_as_string(hide_password=False))
    if path is None:
        return None
    tokens: dict[str, str] = {}
    with engine.begin() as conn:
        revoke_cli_tokens(conn)
        for t in accounts.list_tenants(conn=conn):
            tok = accounts.create_token(
                conn=conn, tenant_id=t["id"], role="admin", name=CLI_TOKEN_NAME, actor="serve"
            )
            tokens[t["slug"]] = tok.token
    data = {"pid": os.getpid(), "url": url, "database": str(engine.url.database), "tokens": tokens}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return path


def revoke_cli_tokens(conn: sa.Connection) -> int:
    return conn.execute(
        api_tokens.update()
        .where(api_tokens.c.name == CLI_TOKEN_NAME, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount


def withdraw_server(engine: sa.Engine, path: Path | None) -> None:
    """Remove the server file and revoke the command line's tokens (serve is stopping)."""
    if path is None:
        return
    path.unlink(missing_ok=True)
    try:
        with engine.begin() as conn:
            revoke_cli_tokens(conn)
    except Exception:  # noqa: BLE001 - stopping anyway; the next serve revokes them
        pass
