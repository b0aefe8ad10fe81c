"""Suppression of erased persons: what ingestion refuses to store again.

When a person is erased (PIPL Art. 47, ``medscrm.privacy``), the keyed hashes of their identifiers
are kept in ``dsr_tombstones``: ``HMAC-SHA256(MEDSCRM_SECRET_KEY, tenant | type | value)`` of the
normalised value. An imported row, an ``identify`` message or an event carrying one of them is not
stored; the tombstone's ``suppressed`` counter goes up instead, so the DPO can see that the source
still sends them. Nothing here keeps the identifier in clear.

Hashes are checked under the current key and every old key (``MEDSCRM_OLD_SECRET_KEYS``), so a key
rotation does not reopen the door; new tombstones use the current key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from medscrm.common import utcnow
from medscrm.config import get_settings
from medscrm.db.schema import dsr_tombstones
from medscrm.schema import person as schema

#: identifier types a tombstone covers, and the normaliser of each (None: the value as given, stripped)
IDENTIFIER_TYPES: dict[str, Any] = {
    "phone": schema.normalize_phone,
    "email": schema.normalize_email,
    "license_no": schema.normalize_license_no,
    "wechat_unionid": None,
    "wecom_external_userid": None,
    "wechat_openid": None,
    "user_id": None,
    "anonymous_id": None,
    "record_key": None,  # "<source_id>:<record key>" of an erased source record
}
#: standard person fields that are identifiers (their type has the same name)
IDENTIFIER_FIELDS = ("phone", "email", "license_no", "wechat_unionid", "wecom_external_userid")


def normalise(type_: str, value: Any) -> str | None:
    """The value as stored (phone in E.164, e-mail lower case, …), or None when it is no such value."""
    if value is None:
        return None
    norm = IDENTIFIER_TYPES.get(type_)
    try:
        v = norm(value) if norm else str(value).strip()
    except ValueError:
        return None
    return v or None


def _mac(key: str, tenant_id: str, type_: str, value: str) -> str:
    msg = f"{tenant_id}\x00{type_}\x00{value}".encode()
    return hmac.new(("medscrm-dsr:" + key).encode(), msg, hashlib.sha256).hexdigest()


def key_hash(tenant_id: str, type_: str, value: str) -> str:
    """The tombstone key of a normalised identifier, under the current secret key."""
    return _mac(get_settings().secret_key, tenant_id, type_, value)


def _all_hashes(tenant_id: str, type_: str, value: str) -> list[str]:
    s = get_settings()
    keys = [s.secret_key] + [k for k in s.old_keys if k != s.secret_key]
    return [_mac(k, tenant_id, type_, value) for k in keys]


_has: dict[str, tuple[float, bool]] = {}


def tenant_has_tombstones(conn: sa.Connection, tenant_id: str) -> bool:
    """Cached for a few seconds per process (an erasure in this process forgets the cache at once)."""
    now = time.monotonic()
    hit = _has.get(tenant_id)
    if hit and hit[0] > now:
        return hit[1]
    t = dsr_tombstones
    has = conn.execute(sa.select(t.c.key_hash).where(t.c.tenant_id == tenant_id).limit(1)).first() is not None
    _has[tenant_id] = (now + 5.0, has)
    return has


def forget_cache(tenant_id: str | None = None) -> None:
    if tenant_id is None:
        _has.clear()
    else:
        _has.pop(tenant_id, None)


def pairs_of_record(rec: Mapping[str, Any], *, source_id: str | None = None) -> list[tuple[str, str]]:
    """The identifiers of a normalised source record (its standard fields, WeChat openid among the
    custom attributes, its record key)."""
    out = [(f, str(rec[f])) for f in IDENTIFIER_FIELDS if rec.get(f)]
    attrs = rec.get("attributes") or {}
    if attrs.get("wechat_openid"):
        out.append(("wechat_openid", str(attrs["wechat_openid"]).strip()))
    if source_id and rec.get("record_key"):
        out.append(("record_key", f"{source_id}:{rec['record_key']}"))
    return out


def pairs_of_values(values: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Identifiers found in free values (raw rows, traits, quarantine payloads): a column named like
    an identifier field, and any text that normalises as a phone number or e-mail address."""
    from medscrm.ingest.mapping import guess_field

    out: list[tuple[str, str]] = []
    for k, v in (values or {}).items():
        if isinstance(v, dict):
            out.extend(pairs_of_values(v))
            continue
        if v is None or isinstance(v, list | bool):
            continue
        f = guess_field(str(k))
        if f in IDENTIFIER_FIELDS:
            n = normalise(f, v)
            if n:
                out.append((f, n))
        elif str(k) in ("userId", "user_id"):
            out.append(("user_id", str(v).strip()))
        elif str(k) in ("anonymousId", "anonymous_id"):
            out.append(("anonymous_id", str(v).strip()))
        elif str(k) in ("openid", "wechat_openid"):
            out.append(("wechat_openid", str(v).strip()))
        text = str(v)
        if "@" in text:
            n = normalise("email", text)
            if n:
                out.append(("email", n))
        elif sum(ch.isdigit() for ch in text) >= 11:
            n = normalise("phone", text)
            if n:
                out.append(("phone", n))
    return out


class Suppressor:
    """Checks identifiers against one tenant's tombstones (read once: a tenant has a few per erased
    person); counts what it suppressed. ``check`` answers whether any of the pairs is erased;
    ``record`` adds the counts to the tombstones in the caller's transaction."""

    def __init__(self, conn: sa.Connection, tenant_id: str):
        self.tenant_id = tenant_id
        self.active = tenant_has_tombstones(conn, tenant_id)
        self.keys: set[str] = set()
        if self.active:
            ts = dsr_tombstones
            self.keys = set(
                conn.execute(sa.select(ts.c.key_hash).where(ts.c.tenant_id == tenant_id)).scalars()
            )
            self.active = bool(self.keys)
        self._known: dict[tuple[str, str], str | None] = {}
        self.hits: Counter[str] = Counter()

    def _hit(self, pair: tuple[str, str]) -> str | None:
        if pair not in self._known:
            self._known[pair] = next((h for h in _all_hashes(self.tenant_id, *pair) if h in self.keys), None)
        return self._known[pair]

    def check(self, pairs: Iterable[tuple[str, str]]) -> bool:
        """True (and counted) when one of the pairs belongs to an erased person."""
        if not self.active:
            return False
        for p in pairs:
            if p[1]:
                h = self._hit(p)
                if h:
                    self.hits[h] += 1
                    return True
        return False

    @property
    def suppressed(self) -> int:
        return sum(self.hits.values())

    def record(self, conn: sa.Connection) -> int:
        """Add the suppressed counts to the tombstones; returns how many records were suppressed."""
        if not self.hits:
            return 0
        ts = dsr_tombstones
        now = utcnow()
        for h, n in self.hits.items():
            conn.execute(
                sa.update(ts)
                .where(ts.c.tenant_id == self.tenant_id, ts.c.key_hash == h)
                .values(suppressed=ts.c.suppressed + n, last_suppressed_at=now)
            )
        n = self.suppressed
        self.hits.clear()
        return n
