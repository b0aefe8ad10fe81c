"""Helpers shared by tests that run the real `medscrm` command."""

from __future__ import annotations

import os


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a `medscrm` subprocess: no MEDSCRM_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env.update({"COLUMNS": "200", **extra})
    return env


def last_line(stdout: str) -> str:
    return stdout.strip().splitlines()[-1]


def rep_token(
    conn,
    tenant_id: str,
    *,
    username: str = "LiuJun",
    display_name: str = "刘军",
    owns: tuple[str, ...] | list[str] = (),
) -> str:
    """A console user of role rep, an API token of role rep acting as that user, and the rep named as
    owner (``owner_rep``, what a CRM export's 负责代表 becomes) of the persons ``owns`` through one
    source record each; returns the token."""
    import sqlalchemy as sa

    from medscrm.accounts import service as accounts
    from medscrm.common import new_id, utcnow
    from medscrm.db.schema import person_records, source_records

    user = accounts.create_user(
        conn=conn, tenant_id=tenant_id, username=username, role="rep", display_name=display_name
    )
    src = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name="crm-owners")
    now = utcnow()
    for pid in owns:
        sr = new_id("sr")
        conn.execute(
            sa.insert(source_records).values(
                id=sr,
                tenant_id=tenant_id,
                source_id=src["id"],
                record_key=f"owner-{pid}",
                row_hash=sr,
                attributes={"owner_rep": display_name},
                raw={"负责代表": display_name},
                received_at=now,
            )
        )
        conn.execute(
            sa.insert(person_records).values(
                id=new_id("pr"),
                tenant_id=tenant_id,
                person_id=pid,
                source_record_id=sr,
                confidence=1.0,
                rule="manual",
                assigned_at=now,
            )
        )
    return accounts.create_token(conn=conn, tenant_id=tenant_id, role="rep", user_id=user["id"]).token
