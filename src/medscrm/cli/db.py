"""``medscrm db``: schema migrations, and backup/restore of the embedded DuckDB database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head
from medscrm.db.migrate import current_revision, head_revision

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

app = typer.Typer(
    help="Database: schema migrations (upgrade, current); backup and restore of the embedded DuckDB file.",
    no_args_is_help=True,
)
console = Console()


@app.command("upgrade")
def upgrade() -> None:
    """Migrate the configured database to the newest schema (commands also do this on start).

    On PostgreSQL several processes may run it at once: they queue on an advisory lock and only the
    first migrates."""

    ran = upgrade_to_head(get_engine())
    console.print(
        f"schema at {head_revision()} ({'migrated' if ran else 'already current'}) "
        f"on {get_settings().backend}"
    )


@app.command("current")
def current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless the database is at the newest revision.")
    ] = False,
) -> None:
    """Show the database's schema revision and the newest one (does not migrate).

    Exit 1 with --check when they differ (e.g. a readiness step before serving)."""

    rev, head = current_revision(get_engine()), head_revision()
    state = "up to date" if rev == head else "behind: run `medscrm db upgrade`"
    console.print(
        f"revision {rev or 'none (empty database)'}, head {head} ({state}) on {get_settings().backend}"
    )
    if check and rev != head:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="New (or empty) directory to write the backup into.")],
) -> None:
    """Back up the embedded DuckDB database and its event spool into the directory PATH.

    PATH gets the database file (after a CHECKPOINT), the spool (events acknowledged but not stored
    yet) and a manifest with every table's row count. Stop `medscrm serve` / `medscrm worker` first:
    DuckDB lets one process open the file, and a file in use is refused. PostgreSQL: use pg_dump
    and WAL archiving (README: Deploy)."""
    from medscrm.db import backup as backups

    r = backups.backup(get_settings().database_url, path)
    console.print(
        f"backup in {r.path}: revision {r.revision}, {len(r.tables)} tables, "
        f"{sum(r.tables.values()):,} rows, {r.spool_files} spool file(s)"
    )


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A directory written by `medscrm db backup`.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Move an existing database and spool aside (renamed, not deleted)."),
    ] = False,
) -> None:
    """Restore a backup made by `medscrm db backup` as the configured DuckDB database and spool.

    Checks the file's SHA-256 and every table's row count against the backup's manifest, then
    migrates to the newest schema. An existing database is refused unless --force."""
    from medscrm.db import backup as backups

    r = backups.restore(get_settings().database_url, path, force=force)
    for p in r.moved_aside:
        console.print(f"moved aside: {p}")
    migrated = upgrade_to_head(get_engine())
    console.print(
        f"restored {r.path}: revision {r.revision}{' (then migrated to head)' if migrated else ''}, "
        f"{len(r.tables)} tables, {sum(r.tables.values()):,} rows (as in the backup), "
        f"{r.spool_files} spool file(s)"
    )
