"""Encrypting per-tenant credentials at rest (Fernet, keys derived from MEDSCRM_SECRET_KEY).

Values are sealed with the key derived from ``MEDSCRM_SECRET_KEY``; they are opened with that key or
any of ``MEDSCRM_OLD_SECRET_KEYS`` (Fernet's MultiFernet), so a key can be rotated without downtime:
start with the new key and the old one listed as old, run ``medscrm secrets rotate`` (re-seals every
sealed value of every tenant with the new key), then drop the old key.

In production the development key never seals or opens anything (the settings refuse it too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from medscrm.common import MedscrmError
from medscrm.config import get_settings, secret_key_problem
from medscrm.db.schema import channel_configs, sources, sso_configs, webhook_subscriptions


def _derive(secret_key: str) -> Fernet:
    key = hashlib.sha256(("medscrm-config:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet() -> MultiFernet:
    """The current key first (it seals), then the old keys (they only open)."""
    s = get_settings()
    if s.is_production:
        problem = secret_key_problem(s.secret_key)
        if problem:
            raise MedscrmError(f"MEDSCRM_SECRET_KEY: may not seal credentials in production: {problem}")
    keys = [s.secret_key] + [k for k in s.old_keys if k != s.secret_key]
    return MultiFernet([_derive(k) for k in keys])


def seal(config: dict[str, Any]) -> str:
    return _fernet().encrypt(orjson.dumps(config)).decode()


def unseal(blob: str | None) -> dict[str, Any]:
    if not blob:
        return {}
    try:
        return orjson.loads(_fernet().decrypt(blob.encode()))
    except InvalidToken as exc:
        raise MedscrmError(
            "source config cannot be decrypted: was MEDSCRM_SECRET_KEY changed? "
            "(list the previous key in MEDSCRM_OLD_SECRET_KEYS)"
        ) from exc


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """What may be shown or logged: names of the settings, never their values."""
    return {k: ("***" if v else v) for k, v in config.items()}


# --- callback tokens ---------------------------------------------------------------------------------
def _callback_token(secret_key: str, purpose: str, tenant_id: str) -> str:
    mac = hmac.new(secret_key.encode(), f"medscrm.callback:{purpose}:{tenant_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def callback_token(tenant_id: str, purpose: str) -> str:
    """The secret that a provider's callback URL for ``tenant_id`` carries (providers do not sign
    their callbacks, so the URL itself is the credential). Derived from MEDSCRM_SECRET_KEY: nothing to
    store; a rotated key gives new URLs, and the old keys' URLs keep working until they are dropped."""
    return _callback_token(get_settings().secret_key, purpose, tenant_id)


def check_callback_token(tenant_id: str, purpose: str, token: str | None) -> bool:
    """Whether ``token`` is the callback token of ``tenant_id`` under the current or an old key
    (compared in constant time)."""
    if not token:
        return False
    s = get_settings()
    ok = False
    for key in [s.secret_key, *s.old_keys]:
        ok |= hmac.compare_digest(_callback_token(key, purpose, tenant_id).encode(), token.encode())
    return ok


# --- key rotation ----------------------------------------------------------------------------------
@dataclass
class RotationReport:
    #: re-sealed values per table
    resealed: dict[str, int] = field(default_factory=dict)
    #: re-sealed values per tenant id
    by_tenant: dict[str, int] = field(default_factory=dict)
    #: values no configured key opens: (table, tenant id, row key); left as they are
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


#: every sealed column: (table, column, the columns that name a row)
SEALED_COLUMNS = (
    (channel_configs, "secrets", ("tenant_id", "channel")),
    (sources, "config", ("id",)),
    (webhook_subscriptions, "secret", ("id",)),
    (sso_configs, "client_secret", ("tenant_id",)),
)


def rotate(conn: sa.Connection, *, tenant_id: str | None = None) -> RotationReport:
    """Re-seal every sealed value (of every tenant, or of ``tenant_id``) with the current key.

    A value that no configured key opens is left unchanged and listed in the report. Runs in the
    caller's transaction; re-running it is harmless (values already under the current key are simply
    sealed again)."""
    f = _fernet()
    report = RotationReport()
    for table, column, key_cols in SEALED_COLUMNS:
        col = table.c[column]
        q = sa.select(table.c.tenant_id, col, *[table.c[k] for k in key_cols]).where(
            col.is_not(None), col != ""
        )
        if tenant_id is not None:
            q = q.where(table.c.tenant_id == tenant_id)
        report.resealed.setdefault(table.name, 0)
        for row in conn.execute(q).mappings().all():
            try:
                new = f.rotate(row[column].encode()).decode()
            except InvalidToken:
                report.unreadable.append(
                    (table.name, row["tenant_id"], "/".join(str(row[k]) for k in key_cols))
                )
                continue
            where = [table.c[k] == row[k] for k in key_cols]
            conn.execute(table.update().where(*where).values({column: new}))
            report.resealed[table.name] += 1
            report.by_tenant[row["tenant_id"]] = report.by_tenant.get(row["tenant_id"], 0) + 1
    return report
