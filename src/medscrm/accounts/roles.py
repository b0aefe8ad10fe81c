"""Roles and what each may do. PII = phone/e-mail/licence/WeChat ids in clear."""

from __future__ import annotations

ROLES = ("admin", "marketer", "analyst", "rep", "compliance")

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "pii.read",
            "data.import",
            "data.read",
            "quarantine.manage",
            "accounts.manage",
            "audit.read",
            "identity.manage",
            "prescriptions.read",
        }
    ),
    "marketer": frozenset({"pii.read", "data.import", "data.read", "quarantine.manage"}),
    "analyst": frozenset({"data.read", "prescriptions.read"}),
    # Reps may not see per-HCP prescription volume (医药代表备案管理办法, 2020).
    "rep": frozenset({"data.read", "pii.read.own"}),
    "compliance": frozenset({"data.read", "audit.read", "quarantine.manage", "pii.read"}),
}


def can(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    return role


def mask_phone(value: str | None) -> str | None:
    """+8613800138000 -> +86138****8000."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:-8] + "****" + value[-4:]


def mask_email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return value
    local, _, domain = value.partition("@")
    return (local[:1] + "***@" + domain) if local else "***@" + domain
