"""Small helpers shared by every domain: ids, clocks, hashing, retry waits, the background worker
loop, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import secrets
import threading
from collections.abc import Callable
from typing import Literal, Self, overload


def new_id(prefix: str) -> str:
    """A random, URL-safe, prefixed id such as ``sr_4f1c…`` (prefix says what it is)."""
    return f"{prefix}_{os.urandom(16).hex()}"  # 128 random bits, like uuid4, at a fraction of the cost


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@overload
def as_utc(t: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(t: None) -> None: ...
def as_utc(t: dt.datetime | None) -> dt.datetime | None:
    """``t`` as an aware datetime in ``datetime.UTC``: a naive value is taken as UTC (the database
    stores UTC, and some read paths hand it back naive), an aware one is converted; ``None`` stays
    ``None``."""
    if t is None:
        return None
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    return t if t.tzinfo is dt.UTC else t.astimezone(dt.UTC)


Jitter = Literal["full", "equal", "none"]


def backoff(
    attempt: int,
    base: float,
    cap: float,
    *,
    factor: float = 2.0,
    jitter: Jitter = "equal",
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure).

    The ceiling grows exponentially, ``base · factor^(attempt-1)``, and never passes ``cap``. Jitter
    spreads many clients that failed together, so they do not retry in lockstep (the schemes of the
    AWS Architecture Blog's "Exponential Backoff and Jitter"):

    * ``"equal"``: half the ceiling plus a random part of the other half, in ``[ceiling/2, ceiling]``;
    * ``"full"``: anywhere in ``[0, ceiling]``;
    * ``"none"``: exactly the ceiling (a lockout that must be predictable).

    ``rand`` returns a float in ``[0, 1)``; tests pass a fixed one."""
    if base <= 0 or cap <= 0:
        return 0.0
    try:
        ceiling = min(cap, base * float(factor) ** max(attempt - 1, 0))
    except OverflowError:  # factor^attempt past a float's range: long since at the cap
        ceiling = cap
    if jitter == "none":
        return ceiling
    r = rand()
    if jitter == "full":
        return ceiling * r
    if jitter == "equal":
        return ceiling / 2 + ceiling / 2 * r
    raise ValueError(f"jitter: {jitter!r} is not one of full, equal, none")


def run_until_stopped(
    step: Callable[[], bool],
    stop: threading.Event,
    *,
    idle: float | Callable[[], None],
    retry_wait: Callable[[int], float],
    on_error: Callable[[Exception], None],
    once: bool = False,
) -> None:
    """The loop of every background worker (journey runner, send and webhook dispatch, event
    flusher, segment refresher): call ``step`` until ``stop`` is set.

    ``step`` returns True when it found work, and is called again at once; otherwise the loop idles:
    waits ``idle`` seconds (cut short by ``stop``), or calls ``idle`` when it is a function. A step
    (or its idling) that raises is reported to ``on_error`` (which logs it and keeps the error for
    health checks), then the loop waits ``retry_wait(n)`` seconds, ``n`` being the consecutive
    failures so far (1 for the first); a step that succeeds resets ``n``. The state lives in the
    database, so the next step simply retries. ``once``: one successful step; a failure is raised
    (after ``on_error``) instead of retried."""
    failures = 0
    while not stop.is_set():
        try:
            busy = step()
            failures = 0
            if once:
                return
            if not busy:
                if callable(idle):
                    idle()
                else:
                    stop.wait(idle)
        except Exception as exc:
            on_error(exc)
            if once:
                raise
            failures += 1
            stop.wait(retry_wait(failures))


class PollingThread:
    """A daemon thread running :func:`run_until_stopped` over :meth:`step` every ``interval`` seconds
    while idle, and again ``interval`` seconds after a failure (kept in ``last_error`` and logged by
    :meth:`failed`). Subclasses name the thread and implement :meth:`step`."""

    thread_name = "medscrm-worker"

    def __init__(self, *, interval: float = 1.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def step(self) -> bool:
        """One round; True when it found work (the next round starts at once)."""
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _step(self) -> bool:
        busy = self.step()
        self.last_error = None
        return busy

    def _run(self) -> None:
        run_until_stopped(
            self._step,
            self._stop,
            idle=self.interval,
            retry_wait=lambda _n: self.interval,
            on_error=self.failed,
        )

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


class MedscrmError(Exception):
    """A user-facing error: its message says what is wrong and, where it can, how to fix it.
    ``field`` names the input at fault where the raiser knows it (the API's answer names it)."""

    field: str | None = None


class NotFound(MedscrmError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class Conflict(MedscrmError):
    """The request is valid but the current state refuses it (e.g. the same refresh already runs)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidInput(MedscrmError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_daily_time(text: str | None, setting: str, example: str) -> dt.time | None:
    """A daily job's time from its setting: ``HH:MM`` (China time) → a time; ``off``, ``none`` or empty →
    None (not scheduled). A malformed value is an error naming the setting, in English and Chinese."""
    t = (text or "").strip().lower()
    if t in ("", "off", "none", "0", "false", "no"):
        return None
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", t)
    if not m:
        raise MedscrmError(
            f"{setting}={text!r}: expected HH:MM in China time (e.g. {example}) or 'off' · "
            f"应为北京时间 HH:MM（如 {example}）或 off"
        )
    return dt.time(int(m.group(1)), int(m.group(2)))
