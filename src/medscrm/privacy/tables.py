"""Where a person's data lives: every table of ``db.schema`` is either listed here with how its rows
about one person are found, or in :data:`NO_PERSONAL_DATA` with the reason it holds none. A test
walks the metadata and fails on a table in neither, so a new table cannot be forgotten by export
and erasure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm.db import schema as s

#: a JSON column as text (to search a payload for an identifier value)
_TEXT = sa.String()


def as_text(col: sa.ColumnElement) -> sa.ColumnElement[str]:
    return sa.cast(col, _TEXT)


@dataclass
class Subject:
    """What identifies one person's rows: their person ids (the survivor and every person merged
    into it), source records, identifier values (normalised, as stored), event user/anonymous ids,
    and the ids of their sends, enrollments and webhook deliveries (filled as tables are read)."""

    tenant_id: str
    person_id: str
    person_ids: list[str]
    record_ids: list[str] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (type, value)
    user_ids: list[str] = field(default_factory=list)
    anonymous_ids: list[str] = field(default_factory=list)
    send_ids: list[str] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def values(self) -> list[str]:
        """Every identifier value, in the forms a payload may hold it (a mobile without +86 too)."""
        out = {v for _t, v in self.identifiers if v}
        for t, v in self.identifiers:
            if t == "phone" and v.startswith("+86"):
                out.add(v[3:])
        return sorted(out)

    def mentions(self, col: sa.ColumnElement) -> sa.ColumnElement[bool]:
        """``col`` (JSON or text) contains one of the person's ids or identifier values."""
        needles = [*self.person_ids, *self.values]
        if not needles:
            return sa.false()
        text = as_text(col)
        return sa.or_(*[text.contains(n, autoescape=True) for n in needles])


@dataclass(frozen=True)
class PersonTable:
    """How to find the rows of ``table`` about a subject; ``erase``: ``delete`` the rows, or
    ``anonymise`` them (audit rows keep who did what when, not the personal data)."""

    table: sa.Table
    where: Callable[[Subject], sa.ColumnElement[bool]]
    erase: str = "delete"
    note: str = ""


def _in(col: sa.ColumnElement, values: list[str]) -> sa.ColumnElement[bool]:
    return col.in_(values) if values else sa.false()


def _by_person(t: sa.Table) -> Callable[[Subject], sa.ColumnElement[bool]]:
    return lambda sub: sa.and_(t.c.tenant_id == sub.tenant_id, _in(t.c.person_id, sub.person_ids))


def _events(sub: Subject) -> sa.ColumnElement[bool]:
    e = s.events
    return sa.and_(
        e.c.tenant_id == sub.tenant_id,
        sa.or_(
            _in(e.c.person_id, sub.person_ids),
            _in(e.c.user_id, sub.user_ids),
            _in(e.c.anonymous_id, sub.anonymous_ids),
        ),
    )


def _links(sub: Subject) -> sa.ColumnElement[bool]:
    lk = s.identity_links
    vals = sorted({v for _t, v in sub.identifiers} | set(sub.user_ids) | set(sub.anonymous_ids))
    return sa.and_(lk.c.tenant_id == sub.tenant_id, sa.or_(_in(lk.c.value_a, vals), _in(lk.c.value_b, vals)))


def _quarantine(sub: Subject) -> sa.ColumnElement[bool]:
    q = s.quarantine
    return sa.and_(
        q.c.tenant_id == sub.tenant_id,
        sa.or_(
            _in(q.c.source_record_id, sub.record_ids),
            sub.mentions(q.c.payload),
            sub.mentions(q.c.fixed_payload),
        ),
    )


def _review(sub: Subject) -> sa.ColumnElement[bool]:
    r = s.identity_review
    return sa.and_(
        r.c.tenant_id == sub.tenant_id,
        sa.or_(_in(r.c.record_a, sub.record_ids), _in(r.c.record_b, sub.record_ids)),
    )


def _constraints(sub: Subject) -> sa.ColumnElement[bool]:
    r = s.identity_constraints
    return sa.and_(
        r.c.tenant_id == sub.tenant_id,
        sa.or_(_in(r.c.record_a, sub.record_ids), _in(r.c.record_b, sub.record_ids)),
    )


def _audit(sub: Subject) -> sa.ColumnElement[bool]:
    a = s.audit_log
    return sa.and_(
        a.c.tenant_id == sub.tenant_id,
        sa.or_(_in(a.c.object_id, sub.person_ids + sub.record_ids), sub.mentions(a.c.detail)),
    )


def _deliveries(sub: Subject) -> sa.ColumnElement[bool]:
    d = s.webhook_deliveries
    return sa.and_(d.c.tenant_id == sub.tenant_id, sub.mentions(d.c.payload))


def _attempts(sub: Subject) -> sa.ColumnElement[bool]:
    a = s.webhook_attempts
    return sa.and_(a.c.tenant_id == sub.tenant_id, _in(a.c.delivery_id, sub.delivery_ids))


def _source_records(sub: Subject) -> sa.ColumnElement[bool]:
    sr = s.source_records
    return sa.and_(sr.c.tenant_id == sub.tenant_id, _in(sr.c.id, sub.record_ids))


def _persons(sub: Subject) -> sa.ColumnElement[bool]:
    p = s.persons
    return sa.and_(p.c.tenant_id == sub.tenant_id, _in(p.c.id, sub.person_ids))


def _person_records(sub: Subject) -> sa.ColumnElement[bool]:
    pr = s.person_records
    return sa.and_(
        pr.c.tenant_id == sub.tenant_id,
        sa.or_(_in(pr.c.person_id, sub.person_ids), _in(pr.c.source_record_id, sub.record_ids)),
    )


def _tracked(sub: Subject) -> sa.ColumnElement[bool]:
    t = s.tracked_links
    return sa.and_(
        t.c.tenant_id == sub.tenant_id,
        sa.or_(_in(t.c.person_id, sub.person_ids), _in(t.c.send_id, sub.send_ids)),
    )


#: The tables that hold personal data, in the order an export lists them and an erasure clears them
#: (rows that other rows are found through — sends, deliveries — are read before they are deleted).
PERSON_TABLES: dict[str, PersonTable] = {
    t.table.name: t
    for t in (
        PersonTable(s.persons, _persons, note="the golden record, its lineage"),
        PersonTable(s.source_records, _source_records, note="every source row, with its raw payload"),
        PersonTable(s.identities, _by_person(s.identities), note="the identity index (lookup, search)"),
        PersonTable(s.person_records, _person_records),
        PersonTable(s.person_changes, _by_person(s.person_changes)),
        PersonTable(s.identity_review, _review, note="uncertain pairs with per-field values"),
        PersonTable(s.identity_constraints, _constraints),
        PersonTable(s.identity_links, _links, note="alias / WeCom / WeChat links of their identifiers"),
        PersonTable(s.events, _events),
        PersonTable(s.quarantine, _quarantine, note="quarantined rows whose payload holds their identifiers"),
        PersonTable(s.person_tags, _by_person(s.person_tags)),
        PersonTable(s.tag_history, _by_person(s.tag_history)),
        PersonTable(s.person_scores, _by_person(s.person_scores)),
        PersonTable(s.segment_members, _by_person(s.segment_members)),
        PersonTable(s.segment_history, _by_person(s.segment_history)),
        PersonTable(s.consents, _by_person(s.consents)),
        PersonTable(s.consent_history, _by_person(s.consent_history)),
        PersonTable(s.persons_dnc, _by_person(s.persons_dnc)),
        PersonTable(s.sends, _by_person(s.sends)),
        PersonTable(s.tracked_links, _tracked),
        PersonTable(s.journey_enrollments, _by_person(s.journey_enrollments)),
        PersonTable(s.journey_step_runs, _by_person(s.journey_step_runs)),
        PersonTable(s.tasks, _by_person(s.tasks)),
        PersonTable(s.webhook_deliveries, _deliveries, note="event payloads naming the person"),
        PersonTable(s.webhook_attempts, _attempts),
        PersonTable(s.person_restrictions, _by_person(s.person_restrictions)),
        PersonTable(s.audit_log, _audit, erase="anonymise", note="kept: action, actor, time; detail removed"),
    )
}

#: Tables that hold no personal data of a data subject, with the reason.
NO_PERSONAL_DATA: dict[str, str] = {
    "tenants": "the customer companies themselves",
    "sources": "data sources and their write keys (no persons)",
    "users": "console users: the company's staff, not data subjects of the CRM",
    "login_throttle": "hashed sign-in failure counters of staff",
    "api_tokens": "hashed API tokens of staff",
    "sso_configs": "per-tenant single sign-on settings and the sealed client secret",
    "sso_identities": "which identity-provider subject signs in as which staff user",
    "imports": "file-level import records (file name, counts); rows live in source_records",
    "tag_definitions": "what tags mean (definitions, rules)",
    "segments": "segment definitions and member counts (aggregates)",
    "micro_segments": "cluster descriptions and centroids (aggregates of many persons)",
    "content_items": "the approved-content library",
    "channel_configs": "per-tenant channel settings and sealed credentials",
    "outreach_policies": "per-tenant caps and quiet hours",
    "journeys": "journey definitions",
    "journey_versions": "journey definitions (versions)",
    "journey_triggers": "trigger watermarks and schedule times",
    "webhook_subscriptions": "endpoints of the company's own systems",
    "dsr_requests": "the request log: a pseudonymous person id and keyed hashes only (accountability, Art. 54)",
    "dsr_tombstones": "keyed hashes (HMAC) of erased identifiers, kept so the person is not re-imported",
    "retention_policies": "per-tenant retention settings per data category",
    "retention_runs": "the log of retention runs: counts per category, who ran it",
}


def unclassified(table_names: list[str]) -> list[str]:
    """Tables neither handled nor declared free of personal data."""
    return sorted(n for n in table_names if n not in PERSON_TABLES and n not in NO_PERSONAL_DATA)


def jsonable(v: Any) -> Any:
    import datetime as dt

    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v
