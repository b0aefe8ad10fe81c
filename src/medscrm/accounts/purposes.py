"""Why an audit row was written: the purpose of the processing it records (PIPL Arts. 6 and 55).

Every audit row carries one purpose. A caller may name it (``audit(..., purpose=...)``; the API takes
an ``X-Purpose`` header on reads of personal data); otherwise it follows from the action's prefix
through :data:`PURPOSE_BY_PREFIX`, longest prefix first. An action no prefix covers gets
``unspecified``, which ``tests/accounts/test_audit_purpose.py`` refuses for every action the code
writes, so a new kind of audit row must say why it exists.
"""

from __future__ import annotations

#: the purposes an audit row may name
PURPOSES = (
    "service",  # serving HCPs and patients: profiles, timelines, searches, segments (reads of personal data)
    "data_management",  # imports, quarantine, identity resolution: keeping one correct record per person
    "marketing",  # segments, journeys, sends, content: compliant engagement
    "content_review",  # medical/legal/regulatory review of promotional content
    "consent_management",  # consents and do-not-contact
    "data_subject_rights",  # access, correction, erasure, restriction, legal hold (PIPL Arts. 44-47)
    "compliance_audit",  # reading the proof of sends and the audit trail
    "security",  # accounts, tokens, sign-in, secrets, tenants
    "integration",  # webhooks, channels, sources: data leaving or entering through configured links
    "unspecified",
)

#: action prefix -> purpose (the longest matching prefix wins)
PURPOSE_BY_PREFIX: dict[str, str] = {
    "profile.": "service",
    "person.": "service",
    "persons.": "service",
    "tags.": "service",
    "events.": "service",
    "scores.": "service",
    "segment.export": "marketing",
    "segment.": "marketing",
    "journey.": "marketing",
    "send.": "marketing",
    "outreach.": "marketing",
    "content.": "content_review",
    "consent.": "consent_management",
    "dnc.": "consent_management",
    "dsr.": "data_subject_rights",
    "retention.": "data_subject_rights",
    "compliance.": "compliance_audit",
    "audit.": "compliance_audit",
    "import.": "data_management",
    "quarantine.": "data_management",
    "identity.": "data_management",
    "source.": "integration",
    "channel.": "integration",
    "webhook.": "integration",
    "callback.": "integration",
    "user.": "security",
    "token.": "security",
    "tenant.": "security",
    "secrets.": "security",
    "console.": "security",
    "auth.": "security",
    "sso.": "security",
    "task.": "marketing",
}


def purpose_of(action: str) -> str:
    """The purpose an action serves (``unspecified`` when no prefix covers it)."""
    best = ""
    for prefix in PURPOSE_BY_PREFIX:
        if action.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return PURPOSE_BY_PREFIX[best] if best else "unspecified"


def check_purpose(purpose: str) -> str:
    """``purpose`` if it is one of :data:`PURPOSES` (else ValueError naming them)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; choose one of: {', '.join(PURPOSES[:-1])}")
    return purpose
