"""One way to read an id on the command line: the full id, or any unique prefix of it.

Lists print ids that a narrow terminal may cut (``q_c768e08b…``); a user copies what they see. Every
command that takes an id resolves it here: an exact id is taken as it is, otherwise the tenant's ids
that start with what was given (a trailing ``…`` or ``...`` is ignored); none is "not found", several
are an error listing the candidates."""

from __future__ import annotations

import sqlalchemy as sa

from medscrm.common import MedscrmError, NotFound
from medscrm.db import schema

#: what a command calls it → the table holding it
KINDS: dict[str, sa.Table] = {
    "quarantine entry": schema.quarantine,
    "person": schema.persons,
    "source record": schema.source_records,
    "review item": schema.identity_review,
    "content item": schema.content_items,
    "send": schema.sends,
    "journey": schema.journeys,
    "enrollment": schema.journey_enrollments,
    "token": schema.api_tokens,
    "webhook subscription": schema.webhook_subscriptions,
    "webhook delivery": schema.webhook_deliveries,
    "import": schema.imports,
    "segment": schema.segments,
    "task": schema.tasks,
}

#: candidates listed in an "ambiguous" error
_SHOWN = 10


class AmbiguousId(MedscrmError):
    def __init__(self, kind: str, given: str, candidates: list[str]):
        self.candidates = candidates
        more = "" if len(candidates) <= _SHOWN else f" and {len(candidates) - _SHOWN} more"
        super().__init__(
            f"{kind} id {given!r} is ambiguous: it starts {len(candidates)} ids "
            f"({', '.join(candidates[:_SHOWN])}{more}); give more characters"
        )


def resolve_id(conn: sa.Connection, tenant_id: str, kind: str, given: str) -> str:
    """The full id of the ``kind`` that ``given`` is, or a prefix of, in the tenant."""
    table = KINDS[kind]
    value = given.strip().removesuffix("…").removesuffix("...").strip()
    if not value:
        raise MedscrmError(f"{kind} id: empty")
    scope = table.c.tenant_id == tenant_id
    if conn.execute(sa.select(table.c.id).where(scope, table.c.id == value)).first():
        return value
    if "key" in table.c and conn.execute(sa.select(table.c.id).where(scope, table.c.key == value)).first():
        return value  # things that also go by a key (content items, journeys, segments): the key as given
    found = [
        r[0]
        for r in conn.execute(
            sa.select(table.c.id)
            .where(scope, table.c.id.startswith(value, autoescape=True))
            .order_by(table.c.id)
            .limit(_SHOWN + 50)
        )
    ]
    if not found:
        raise NotFound(f"{kind} {given!r} not found (no id starts with it)")
    if len(found) > 1:
        raise AmbiguousId(kind, given, found)
    return found[0]


def resolve_ids(conn: sa.Connection, tenant_id: str, kind: str, given: list[str]) -> list[str]:
    return [resolve_id(conn, tenant_id, kind, g) for g in given]
