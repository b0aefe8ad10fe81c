"""Backup and restore of the embedded DuckDB database, with the event API's spool.

A backup is a directory::

    PATH/medscrm.duckdb   the database file, copied after a CHECKPOINT (nothing left in the WAL)
    PATH/spool/           the event spool: events acknowledged by the API but not stored yet
    PATH/manifest.json    revision, row count of every table, SHA-256 of the file, versions

DuckDB lets one process open a file for writing, and ``medscrm serve`` / ``medscrm worker`` keep it
open, so a backup runs while they are stopped: it holds the file's lock for the whole copy, and a
file held by another process is refused with a message naming that process. Restoring checks the
file's hash and, once copied, that every table has the row count the manifest recorded.
PostgreSQL is backed up with ``pg_dump`` and WAL archiving instead (README, "Deploy").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlalchemy as sa

from medscrm.common import MedscrmError
from medscrm.db.engine import default_spool_dir

DB_FILE = "medscrm.duckdb"
SPOOL = "spool"
MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(MedscrmError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class Report:
    path: Path
    revision: str | None
    tables: dict[str, int]
    spool_files: int
    moved_aside: list[Path]


def duckdb_file(url: str) -> Path:
    """The database file of a ``duckdb:///`` URL; other backends are refused."""
    u = sa.make_url(url)
    if u.get_backend_name() != "duckdb":
        raise BackupError(
            f"MEDSCRM_DATABASE_URL: `medscrm db backup/restore` handle the embedded DuckDB file; "
            f"back up {u.get_backend_name()} with pg_dump and WAL archiving (README: Deploy)"
        )
    if not u.database or u.database == ":memory:":
        raise BackupError("MEDSCRM_DATABASE_URL: an in-memory DuckDB database has no file to back up")
    return Path(u.database).absolute()


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise BackupError(f"{path}: cannot open the database: {exc}") from None
        pid = re.search(r"PID (\d+)", str(exc))
        holder = f"process {pid.group(1)}" if pid else "another process"
        raise BackupError(
            f"{path} is in use by {holder} (a running `medscrm serve` or `medscrm worker`?): DuckDB "
            "allows one process per file; stop it, then run this again"
        ) from None


def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    ]
    return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def _revision(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> str | None:
    if "alembic_version" not in tables:
        return None
    row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _copy_spool(src: Path, dst: Path) -> int:
    """Copy a spool directory (segments, checkpoint, worker spools), without the slot locks."""
    if not src.is_dir():
        dst.mkdir(parents=True)
        return 0
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".slot-*.lock"))
    return sum(1 for p in dst.rglob("*") if p.is_file())


def backup(url: str, dest: Path) -> Report:
    """Copy the DuckDB database of ``url`` and its spool into the new directory ``dest``."""
    source = duckdb_file(url)
    if not source.is_file():
        raise BackupError(f"MEDSCRM_DATABASE_URL: {source} does not exist: nothing to back up")
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"PATH: {dest} already exists; a backup goes into a new or empty directory")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    con = _open(source)
    try:
        # everything into the main file, so the file alone is the database; the connection stays
        # open during the copies so that no other process can open the file (or spool) and write.
        # The file is copied last: closing the copy's descriptor drops this process's fcntl lock.
        con.execute("CHECKPOINT")
        tables = _table_counts(con)
        revision = _revision(con, tables)
        wal = Path(str(source) + ".wal")
        if wal.exists() and wal.stat().st_size:
            raise BackupError(f"{wal}: the write-ahead log is not empty after CHECKPOINT; try again")
        spool_files = _copy_spool(default_spool_dir(url), partial / SPOOL)
        shutil.copyfile(source, partial / DB_FILE)
    finally:
        con.close()
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": str(source),
        "duckdb_version": duckdb.__version__,
        "revision": revision,
        "sha256": _sha256(partial / DB_FILE),
        "tables": tables,
        "spool_files": spool_files,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if dest.exists():
        dest.rmdir()
    partial.rename(dest)
    return Report(dest, revision, tables, spool_files, [])


def read_manifest(path: Path) -> dict:
    f = path / MANIFEST
    try:
        manifest = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"PATH: {f} is missing; is {path} a directory made by `medscrm db backup`?"
        ) from None
    except ValueError as exc:
        raise BackupError(f"PATH: {f} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"PATH: {f} has format {manifest.get('format')!r}; this medscrm reads {FORMAT}")
    if not isinstance(manifest.get("tables"), dict) or not isinstance(manifest.get("sha256"), str):
        raise BackupError(f"PATH: {f} lacks 'tables' or 'sha256'")
    return manifest


def restore(url: str, src: Path, *, force: bool = False) -> Report:
    """Put the backup ``src`` in place of the DuckDB database of ``url`` and its spool.

    An existing database or non-empty spool is refused unless ``force``; then it is moved aside
    (renamed ``NAME.before-restore-TIMESTAMP``), never deleted."""
    target = duckdb_file(url)
    src = src.absolute()
    manifest = read_manifest(src)
    backup_file = src / DB_FILE
    if not backup_file.is_file():
        raise BackupError(f"PATH: {backup_file} is missing")
    if _sha256(backup_file) != manifest["sha256"]:
        raise BackupError(f"PATH: {backup_file} does not match the SHA-256 in its manifest (damaged copy?)")
    spool = default_spool_dir(url)
    wal = Path(str(target) + ".wal")
    present = [p for p in (target, wal) if p.exists()]
    if spool.is_dir() and any(spool.iterdir()):
        present.append(spool)
    if present and not force:
        raise BackupError(
            f"{', '.join(map(str, present))} already exist(s); pass --force to move them aside and restore"
        )
    if target.exists():
        _open(target).close()  # refuses while a serving process holds the file
        # opening checkpoints: the WAL may be gone now, folded into the file it belonged to
        present = [p for p in present if p.exists()]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for p in present:
        if p == wal:  # beside its database file's new name, so that the two still open together
            aside = target.with_name(f"{target.name}.before-restore-{stamp}.wal")
        else:
            aside = p.with_name(f"{p.name}.before-restore-{stamp}")
        p.rename(aside)
        moved.append(aside)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(backup_file, tmp)
    os.replace(tmp, target)
    spool_src = src / SPOOL
    spool_files = 0
    if spool_src.is_dir() and any(spool_src.iterdir()):
        spool.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(spool_src, spool, dirs_exist_ok=True)
        spool_files = sum(1 for p in spool.rglob("*") if p.is_file())
    con = _open(target)
    try:
        tables = _table_counts(con)
        revision = _revision(con, tables)
    finally:
        con.close()
    if tables != manifest["tables"]:
        diff = sorted(
            f"{t}: {manifest['tables'].get(t)} in the manifest, {tables.get(t)} restored"
            for t in set(tables) | set(manifest["tables"])
            if tables.get(t) != manifest["tables"].get(t)
        )
        raise BackupError(f"{target}: restored row counts differ from the backup: {'; '.join(diff)}")
    return Report(target, revision, tables, spool_files, moved)
