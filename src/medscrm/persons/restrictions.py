"""Which persons' processing is restricted (PIPL Art. 44) or under legal hold.

``medscrm.privacy`` sets and lifts them; the layers that act on persons ask here: outreach refuses a
send (reason ``processing_restricted``), the journey engine holds the enrollment where it is, and
the rule compiler (``rules.compile``) keeps restricted persons out of every segment.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from medscrm.db.schema import person_restrictions

RESTRICTED = "restricted"
LEGAL_HOLD = "legal_hold"
#: the reason code of a send or step refused for a restricted person
REASON = "processing_restricted"


def restricted(
    conn: sa.Connection, *, tenant_id: str, person_ids: Iterable[str], kind: str = RESTRICTED
) -> set[str]:
    """Those of ``person_ids`` that carry the restriction ``kind``."""
    ids = sorted(set(person_ids))
    r = person_restrictions
    out: set[str] = set()
    for i in range(0, len(ids), 1000):
        out |= set(
            conn.execute(
                sa.select(r.c.person_id).where(
                    r.c.tenant_id == tenant_id, r.c.kind == kind, r.c.person_id.in_(ids[i : i + 1000])
                )
            ).scalars()
        )
    return out


def is_restricted(conn: sa.Connection, *, tenant_id: str, person_id: str, kind: str = RESTRICTED) -> bool:
    return bool(restricted(conn, tenant_id=tenant_id, person_ids=[person_id], kind=kind))
