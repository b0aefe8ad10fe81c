"""Encrypting per-tenant credentials at rest (Fernet, key derived from MEDSCRM_SECRET_KEY)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from medscrm.common import MedscrmError
from medscrm.config import get_settings


def _fernet() -> Fernet:
    key = hashlib.sha256(("medscrm-config:" + get_settings().secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(config: dict[str, Any]) -> str:
    return _fernet().encrypt(orjson.dumps(config)).decode()


def unseal(blob: str | None) -> dict[str, Any]:
    if not blob:
        return {}
    try:
        return orjson.loads(_fernet().decrypt(blob.encode()))
    except InvalidToken as exc:
        raise MedscrmError("source config cannot be decrypted: was MEDSCRM_SECRET_KEY changed?") from exc


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """What may be shown or logged: names of the settings, never their values."""
    return {k: ("***" if v else v) for k, v in config.items()}
