"""Group-committed audit rows (the profile API's PIPL audit) and the API's token cache, on both engines."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.accounts.audit_writer import AuditFailed, AuditWriter, audit_committed, writer_for
from medscrm.db.schema import audit_log


def _count(engine: sa.Engine, tenant_id: str, action: str = "profile.read") -> int:
    with engine.connect() as c:
        return c.execute(
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(audit_log.c.tenant_id == tenant_id, audit_log.c.action == action)
        ).scalar_one()


def test_each_write_is_committed_before_it_returns(tenant):
    for i in range(3):
        audit_committed(
            tenant.engine,
            tenant_id=tenant.id,
            actor="token:t1",
            action="profile.read",
            object_type="person",
            object_id=f"per_{i}",
            detail={"role": "admin", "pii": True},
        )
        # visible to another connection at once: the row is durable when the call returns
        assert _count(tenant.engine, tenant.id) == i + 1
    with tenant.engine.connect() as c:
        row = c.execute(
            sa.select(audit_log).where(audit_log.c.tenant_id == tenant.id, audit_log.c.object_id == "per_2")
        ).one()
    assert (row.actor, row.object_type, row.detail) == ("token:t1", "person", {"role": "admin", "pii": True})


def test_concurrent_reads_share_commits_and_lose_no_row(tenant):
    writer = AuditWriter(tenant.engine)
    n_threads, per_thread = 16, 25
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def work(k: int) -> None:
        start.wait()
        for i in range(per_thread):
            try:
                writer.write(tenant_id=tenant.id, actor=f"a{k}", action="profile.read", object_id=f"{k}-{i}")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = n_threads * per_thread
    assert writer.rows == total == _count(tenant.engine, tenant.id)
    with tenant.engine.connect() as c:
        ids = c.execute(
            sa.select(audit_log.c.object_id).where(
                audit_log.c.tenant_id == tenant.id, audit_log.c.action == "profile.read"
            )
        ).scalars()
        assert set(ids) == {f"{k}-{i}" for k in range(n_threads) for i in range(per_thread)}
    # 16 writers at once: rows were grouped (far fewer commits than rows)
    assert writer.commits < total


def test_a_failed_commit_fails_every_caller_of_its_batch(tenant):
    writer = AuditWriter(tenant.engine)
    with pytest.raises(AuditFailed, match="could not be stored"):
        # actor is NOT NULL: the INSERT fails, so the read it records must fail too
        writer.write(tenant_id=tenant.id, actor=None, action="profile.read")  # type: ignore[arg-type]
    assert _count(tenant.engine, tenant.id) == 0
    # the writer keeps working after a failed batch
    writer.write(tenant_id=tenant.id, actor="a", action="profile.read")
    assert _count(tenant.engine, tenant.id) == 1


def test_one_writer_per_engine(tenant):
    assert writer_for(tenant.engine) is writer_for(tenant.engine)


def test_cached_token_is_forgotten_when_revoked(tenant):
    with tenant.engine.begin() as c:
        tok = accounts.create_token(conn=c, tenant_id=tenant.id, role="analyst", name="t")
    p = accounts.cached_token_principal(tenant.engine, tok.token)
    assert p is not None and p["role"] == "analyst" and p["tenant_id"] == tenant.id
    assert accounts.cached_token_principal(tenant.engine, tok.token) == p
    with tenant.engine.begin() as c:
        accounts.revoke_token(conn=c, tenant_id=tenant.id, token_id=tok.id)
    assert accounts.cached_token_principal(tenant.engine, tok.token) is None
    assert accounts.cached_token_principal(tenant.engine, "not-a-token") is None
