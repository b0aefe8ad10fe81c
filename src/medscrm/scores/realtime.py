"""Per-person refresh of tags and scores: called when events arrive for some persons.

Same features, same rules and the same writer as the batch (:func:`medscrm.scores.service.refresh_all`),
limited to the given persons: the results for those persons are identical. Micro-segments are not
touched (they are re-clustered on schedule).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from medscrm.common import utcnow
from medscrm.scores.config import get_config
from medscrm.scores.service import apply, compute_outcomes, lock_tenant

CHUNK = 2000


def refresh_persons(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_ids: list[str],
    now: dt.datetime | None = None,
    config: str | Path | None = None,
) -> int:
    """Re-compute the real-time behaviour tags and scores of just these persons; returns how many of
    them changed (a tag value or a score). Unknown, merged or unscored ids are ignored."""
    ids = sorted({p for p in person_ids if p})
    if not ids:
        return 0
    now = now or utcnow()
    cfg = get_config(config)
    lock_tenant(conn, tenant_id=tenant_id)  # waits for a running batch of the tenant (PostgreSQL)
    changed = 0
    for i in range(0, len(ids), CHUNK):  # bounded IN lists
        outcomes = compute_outcomes(
            conn, tenant_id=tenant_id, now=now, cfg=cfg, person_ids=ids[i : i + CHUNK]
        )
        if outcomes:
            res = apply(
                conn, tenant_id=tenant_id, outcomes=outcomes, now=now, mode="realtime", whole_tenant=False
            )
            changed += int(res["changed"])
    return changed
