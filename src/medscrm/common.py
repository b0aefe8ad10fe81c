"""Small helpers shared by every domain: ids, clocks, hashing, retry waits, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import secrets
from collections.abc import Callable
from typing import Literal, overload


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
