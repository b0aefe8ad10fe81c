"""Per-tenant outreach settings: the sending policy (caps, quiet hours, retries) and each
channel's provider configuration. Secrets are sealed with Fernet (``accounts.secrets``) and never
returned, printed or logged — only their names."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.accounts.secrets import callback_token, redact, seal, unseal
from medscrm.common import InvalidInput, utcnow
from medscrm.db.schema import channel_configs, outreach_policies

SEND_CHANNELS = ("email", "sms", "wecom", "wechat_template", "webhook")
PROVIDERS = {
    "email": ("smtp",),
    "sms": ("aliyun", "tencent"),
    "wecom": ("wecom",),
    "wechat_template": ("wechat",),
    "webhook": ("hmac",),
}
#: which settings are secrets (sealed) per provider
SECRET_KEYS = {
    "smtp": ("password",),
    "aliyun": ("access_key_secret",),
    "tencent": ("secret_key",),
    "wecom": ("corp_secret",),
    "wechat": ("app_secret",),
    "hmac": ("secret",),
}

DEFAULT_POLICY: dict[str, Any] = {
    # per person, per channel, over rolling windows; shared by every origin (journeys and reps)
    "frequency_caps": {
        "email": [{"max": 2, "hours": 24}, {"max": 5, "hours": 168}],
        "sms": [{"max": 1, "hours": 24}, {"max": 3, "hours": 168}],
        "wecom": [{"max": 3, "hours": 24}, {"max": 10, "hours": 168}],
        "wechat_template": [{"max": 2, "hours": 24}, {"max": 6, "hours": 168}],
        "webhook": [],
    },
    # Asia/Shanghai wall clock; a send requested inside is deferred (not_before = end), not dropped
    "quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Asia/Shanghai"},
    # purposes exempt from caps (transactional service messages)
    "cap_exempt_purposes": ["service"],
    "max_attempts": 5,
    "backoff_seconds": 30,  # attempt n waits backoff * 2**(n-1), capped, jittered into its upper half
    "backoff_max_seconds": 3600,
    "lease_seconds": 120,
    # what to do with a send whose dispatcher died after handing it to the provider:
    # "retry" (resend with the same provider idempotency id: at-least-once, exactly-once where the
    # provider de-duplicates) or "hold" (mark it unknown for a person to reconcile: at-most-once)
    "inflight_policy": {
        "email": "retry",
        "sms": "hold",
        "wecom": "hold",
        "wechat_template": "retry",
        "webhook": "retry",
    },
}


#: per-process cache of policies and configured channels: a change made in this process applies at
#: once; one made by another process within CACHE_SECONDS
CACHE_SECONDS = 5.0
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def _cached(key: tuple[str, str], load):
    hit = _cache.get(key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return copy.deepcopy(hit[1])
    value = load()
    _cache[key] = (now + CACHE_SECONDS, value)
    return copy.deepcopy(value)


def forget(tenant_id: str) -> None:
    for k in [k for k in _cache if k[0] == tenant_id]:
        _cache.pop(k, None)


def get_policy(conn: sa.Connection, *, tenant_id: str) -> dict[str, Any]:
    return _cached((tenant_id, "policy"), lambda: _load_policy(conn, tenant_id))


def configured_channels(conn: sa.Connection, *, tenant_id: str) -> set[str]:
    t = channel_configs
    return _cached(
        (tenant_id, "channels"),
        lambda: set(conn.execute(sa.select(t.c.channel).where(t.c.tenant_id == tenant_id)).scalars()),
    )


def _load_policy(conn: sa.Connection, tenant_id: str) -> dict[str, Any]:
    row = conn.execute(
        sa.select(outreach_policies.c.policy).where(outreach_policies.c.tenant_id == tenant_id)
    ).scalar()
    policy = copy.deepcopy(DEFAULT_POLICY)
    for k, v in (row or {}).items():
        if isinstance(v, dict) and isinstance(policy.get(k), dict):
            policy[k].update(v)
        else:
            policy[k] = v
    return policy


def _validate_policy(p: dict[str, Any]) -> None:
    for ch, caps in (p.get("frequency_caps") or {}).items():
        if ch not in SEND_CHANNELS:
            raise InvalidInput(f"frequency_caps.{ch}", f"unknown channel; one of {', '.join(SEND_CHANNELS)}")
        if not isinstance(caps, list):
            raise InvalidInput(f"frequency_caps.{ch}", "a list of {max, hours}")
        for i, cap in enumerate(caps):
            if not (isinstance(cap, dict) and isinstance(cap.get("max"), int) and cap["max"] >= 0):
                raise InvalidInput(f"frequency_caps.{ch}[{i}].max", "a whole number ≥ 0")
            if not (isinstance(cap.get("hours"), int | float) and cap["hours"] > 0):
                raise InvalidInput(f"frequency_caps.{ch}[{i}].hours", "a number of hours > 0")
    qh = p.get("quiet_hours")
    if qh is not None and qh != {}:
        for f in ("start", "end"):
            if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", str(qh.get(f, ""))):
                raise InvalidInput(f"quiet_hours.{f}", "HH:MM (24-hour, China time)")
    for f in ("max_attempts", "backoff_seconds", "lease_seconds"):
        if f in p and not (isinstance(p[f], int) and p[f] > 0):
            raise InvalidInput(f, "a whole number > 0")


def set_policy(conn: sa.Connection, *, tenant_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
    _validate_policy(changes)
    t = outreach_policies
    current = conn.execute(sa.select(t.c.policy).where(t.c.tenant_id == tenant_id)).scalar()
    merged = {**(current or {}), **changes}
    now = utcnow()
    forget(tenant_id)
    if current is None:
        conn.execute(t.insert().values(tenant_id=tenant_id, policy=merged, updated_at=now, updated_by=actor))
    else:
        conn.execute(
            t.update()
            .where(t.c.tenant_id == tenant_id)
            .values(policy=merged, updated_at=now, updated_by=actor)
        )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="outreach.policy",
        object_type="tenant",
        object_id=tenant_id,
        detail={"changes": changes},
    )
    return get_policy(conn, tenant_id=tenant_id)


# --- channel configurations ------------------------------------------------------------------
def configure_channel(
    conn: sa.Connection,
    *,
    tenant_id: str,
    channel: str,
    provider: str,
    settings: dict[str, Any],
    actor: str,
) -> dict[str, Any]:
    """Set a channel's provider and settings. Keys named in ``SECRET_KEYS`` are sealed; a ``None``
    value removes a setting. Returns the configuration with secrets redacted."""
    if channel not in SEND_CHANNELS:
        raise InvalidInput("channel", f"{channel!r} is not one of {', '.join(SEND_CHANNELS)}")
    if provider not in PROVIDERS[channel]:
        raise InvalidInput("provider", f"channel {channel} uses one of {', '.join(PROVIDERS[channel])}")
    t = channel_configs
    row = (
        conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id, t.c.channel == channel))
        .mappings()
        .first()
    )
    plain = dict(row["settings"] or {}) if row and row["provider"] == provider else {}
    secret = unseal(row["secrets"]) if row and row["provider"] == provider else {}
    for k, v in settings.items():
        target = secret if k in SECRET_KEYS[provider] else plain
        if v is None:
            target.pop(k, None)
        else:
            target[k] = v
    values = {
        "provider": provider,
        "settings": plain,
        "secrets": seal(secret),
        "updated_at": utcnow(),
        "updated_by": actor,
    }
    if row:
        conn.execute(t.update().where(t.c.tenant_id == tenant_id, t.c.channel == channel).values(**values))
    else:
        conn.execute(t.insert().values(tenant_id=tenant_id, channel=channel, **values))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="channel.configure",
        object_type="channel",
        object_id=channel,
        detail={"provider": provider, "settings": redact(settings)},
    )
    return {"channel": channel, "provider": provider, "settings": plain, "secrets": redact(secret)}


def channel_config(conn: sa.Connection, *, tenant_id: str, channel: str) -> dict[str, Any] | None:
    """The full configuration (secrets unsealed) for a dispatcher; None if not configured."""
    t = channel_configs
    row = (
        conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id, t.c.channel == channel))
        .mappings()
        .first()
    )
    if not row:
        return None
    return {
        "channel": channel,
        "provider": row["provider"],
        **(row["settings"] or {}),
        **unseal(row["secrets"]),
    }


def list_channels(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    t = channel_configs
    out = []
    for row in conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.channel)).mappings():
        out.append(
            {
                "channel": row["channel"],
                "provider": row["provider"],
                "settings": row["settings"] or {},
                "secrets": redact(unseal(row["secrets"])),
                "updated_at": row["updated_at"],
            }
        )
    return out


# --- callback URLs ---------------------------------------------------------------------------------
#: providers whose SMS replies (upstream messages) are pushed to us
REPLY_PROVIDERS = ("aliyun", "tencent")
#: the purpose under which their callback tokens are derived (``accounts.secrets.callback_token``)
SMS_REPLIES = "sms-replies"


def reply_callback_urls(tenant_id: str, base_url: str) -> dict[str, str]:
    """The URL to give each SMS provider for the tenant's replies, with its callback token (a secret:
    whoever holds it can withdraw the SMS consent of the tenant's contacts)."""
    token = callback_token(tenant_id, SMS_REPLIES)
    base = base_url.rstrip("/")
    return {p: f"{base}/callbacks/sms/{p}/replies/{tenant_id}/{token}" for p in REPLY_PROVIDERS}
