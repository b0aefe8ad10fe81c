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
            "outreach.send",
            "consent.manage",
            "content.write",
            "content.withdraw",
            "webhooks.manage",
            "privacy.manage",
        }
    ),
    "marketer": frozenset(
        {
            "pii.read",
            "data.import",
            "data.read",
            "quarantine.manage",
            "outreach.send",
            "consent.manage",
            "content.write",
            "content.withdraw",
        }
    ),
    # Analysts read; they do not message HCPs or change what HCPs agreed to.
    "analyst": frozenset({"data.read", "prescriptions.read"}),
    # Reps may not see per-HCP prescription volume (医药代表备案管理办法, 2020). They message and record
    # the consents of their own HCPs only (the API scopes every person a rep names to the rep's own).
    "rep": frozenset({"data.read", "pii.read.own", "outreach.send", "consent.manage"}),
    # Marketers and admins write content (content.write: create, edit a draft, submit for review);
    # compliance reviews it (MLR: approve, reject) and may pull it; it neither writes nor sends. The DPO sits here: data-subject
    # requests (export, correct, erase, restrict, legal hold) need privacy.manage.
    "compliance": frozenset(
        {
            "data.read",
            "audit.read",
            "quarantine.manage",
            "pii.read",
            "consent.manage",
            "content.review",
            "content.withdraw",
            "privacy.manage",
        }
    ),
}


def can(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    return role
