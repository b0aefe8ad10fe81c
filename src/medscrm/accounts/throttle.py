"""Login throttling: consecutive failed sign-ins per user and per client address, with exponential
backoff, stored in the database (``login_throttle``) so that every server process
(``serve --workers N`` on PostgreSQL) sees the same counts.

A key (one user of one tenant, or one client address) is locked for ``base_lock_s`` by its
``lock_after``-th failure in a row (5 for a user, 20 for an address), and each further failure after a
lock has expired doubles the lock, up to ``max_lock_s``. While a key is locked every attempt is refused without the password
being checked (even the right one) and without adding to the count. A successful sign-in clears the
user's count (not the address's: one valid account must not reset an address that guesses others).
Counts older than ``forget_after_s`` start over.

On PostgreSQL the user's row is locked (``SELECT … FOR UPDATE``) from the check to the update, so
parallel guesses at one user are counted one by one, and the address's row is locked while its
failure is counted; on DuckDB (one process) a process lock does it.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from medscrm.common import as_utc, backoff, sha256_hex, utcnow
from medscrm.db.schema import login_throttle

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Key:
    kind: str  # user, ip
    value: str

    @property
    def hash(self) -> str:
        return sha256_hex(f"{self.kind}:{self.value}")


def user_key(tenant_slug: str, username: str) -> Key:
    return Key("user", f"{tenant_slug}:{username}")


def ip_key(address: str) -> Key:
    return Key("ip", address)


@dataclass(frozen=True)
class Verdict:
    #: seconds until the attempt may be made again (0: not locked)
    retry_after: int
    #: the kinds of key that are locked (user, ip)
    locked: tuple[str, ...] = ()


class LoginThrottle:
    """One per app (``app.state.login_throttle``); ``clock`` is injectable for tests."""

    def __init__(
        self,
        *,
        clock: Clock = utcnow,
        lock_after: int = 5,
        ip_lock_after: int = 20,
        base_lock_s: float = 30.0,
        max_lock_s: float = 900.0,
        forget_after_s: float = 3600.0,
    ):
        self.clock = clock
        self.lock_after = {"user": lock_after, "ip": ip_lock_after}
        self.base_lock_s = base_lock_s
        self.max_lock_s = max_lock_s
        self.forget_after_s = forget_after_s
        self._local = threading.Lock()

    def lock_seconds(self, kind: str, failures: int) -> float:
        """How long ``failures`` consecutive failures lock a key of ``kind`` (0: not at all)."""
        over = failures - self.lock_after[kind]
        if over < 0:
            return 0.0
        # no jitter: a lockout the user is told about must last what it says
        return backoff(over + 1, self.base_lock_s, self.max_lock_s, jitter="none")

    @contextmanager
    def attempt(self, conn: sa.Connection, keys: list[Key]) -> Iterator[Attempt]:
        """Serialise the attempts on ``keys`` (the first is the user's) while the caller checks the
        password inside: ``with throttle.attempt(conn, keys) as a: if a.verdict.retry_after: …``."""
        pg = conn.dialect.name == "postgresql"
        if not pg:
            self._local.acquire()
        try:
            now = self.clock()
            rows = {}
            for i, k in enumerate(keys):
                q = sa.select(login_throttle).where(login_throttle.c.key_hash == k.hash)
                if pg and i == 0:
                    _ensure_row(conn, k, now)
                    q = q.with_for_update()
                row = conn.execute(q).mappings().first()
                rows[k] = dict(row) if row else None
            yield Attempt(self, conn, keys, rows, now)
        finally:
            if not pg:
                self._local.release()


def _ensure_row(conn: sa.Connection, k: Key, now: dt.datetime) -> None:
    conn.execute(
        pg_insert(login_throttle)
        .values(key_hash=k.hash, kind=k.kind, failures=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key_hash"])
    )


class Attempt:
    def __init__(self, t: LoginThrottle, conn: sa.Connection, keys: list[Key], rows: dict, now: dt.datetime):
        self.t, self.conn, self.keys, self.rows, self.now = t, conn, keys, rows, now
        self.verdict = self._verdict()

    def _verdict(self) -> Verdict:
        wait, locked = 0.0, []
        for k in self.keys:
            until = as_utc((self.rows.get(k) or {}).get("locked_until"))
            if until is not None and until > self.now:
                wait = max(wait, (until - self.now).total_seconds())
                locked.append(k.kind)
        return Verdict(math.ceil(wait), tuple(locked))

    def failed(self) -> Verdict:
        """Count a failure on every key; the verdict says which keys it locked, and for how long."""
        wait, locked = 0.0, []
        pg = self.conn.dialect.name == "postgresql"
        for k in self.keys:
            row = self.rows.get(k)
            if pg:  # count on the current row, locked (always the user's first: no deadlock)
                _ensure_row(self.conn, k, self.now)
                q = sa.select(login_throttle).where(login_throttle.c.key_hash == k.hash).with_for_update()
                row = dict(self.conn.execute(q).mappings().one())
            failures = row["failures"] if row else 0
            last = as_utc(row["last_failure_at"]) if row else None
            if last is not None and (self.now - last).total_seconds() > self.t.forget_after_s:
                failures = 0
            failures += 1
            secs = self.t.lock_seconds(k.kind, failures)
            until = self.now + dt.timedelta(seconds=secs) if secs else None
            values = {"failures": failures, "last_failure_at": self.now, "locked_until": until}
            self._store(k, row, values)
            if secs:
                wait = max(wait, secs)
                locked.append(k.kind)
        return Verdict(math.ceil(wait), tuple(locked))

    def succeeded(self) -> None:
        """Clear the user's count (the first key)."""
        k = self.keys[0]
        if self.rows.get(k) is not None:
            self.conn.execute(sa.delete(login_throttle).where(login_throttle.c.key_hash == k.hash))

    def _store(self, k: Key, row: dict | None, values: dict) -> None:
        t = login_throttle
        if row is None:
            self.conn.execute(t.insert().values(key_hash=k.hash, kind=k.kind, updated_at=self.now, **values))
        else:
            self.conn.execute(t.update().where(t.c.key_hash == k.hash).values(updated_at=self.now, **values))
