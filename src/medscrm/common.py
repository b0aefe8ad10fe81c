"""Small helpers shared by every domain: ids, clocks, hashing, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets


def new_id(prefix: str) -> str:
    """A random, URL-safe, prefixed id such as ``sr_4f1c…`` (prefix says what it is)."""
    return f"{prefix}_{os.urandom(16).hex()}"  # 128 random bits, like uuid4, at a fraction of the cost


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


class MedscrmError(Exception):
    """A user-facing error: its message says what is wrong and, where it can, how to fix it."""


class NotFound(MedscrmError):
    pass


class InvalidInput(MedscrmError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
