"""Incremental `identity run` in the workspace (DuckDB and PostgreSQL): new imports are linked into
the existing persons without a full recompute; only touched persons change."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from medscrm.db.schema import (
    identities,
    identity_review,
    person_changes,
    person_records,
    persons,
    source_records,
)
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping
from medscrm.persons import review
from medscrm.persons.engine import resolve_with_engine
from medscrm.persons.incremental import FeatureStore, index_dir_for, new_records, run_incremental
from medscrm.persons.run import run_identity
from medscrm.synth import generate


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    generate(d, hcps=400, seed=21, progress=False)
    return d


def _import(tenant, d, name):
    import json

    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    src = next(s for s in manifest["sources"] if s["name"] == name)
    return import_file(
        engine=tenant.engine,
        tenant_id=tenant.id,
        source=name,
        path=d / src["file"],
        mapping=load_mapping(d / src["mapping"]),
    )


def _assignment(conn, tenant_id):
    return dict(
        conn.execute(
            sa.select(person_records.c.source_record_id, person_records.c.person_id).where(
                person_records.c.tenant_id == tenant_id
            )
        ).all()
    )


def _pairs(assign):
    groups = {}
    for r, p in assign.items():
        groups.setdefault(p, []).append(r)
    return {pr for g in groups.values() for pr in itertools.combinations(sorted(g), 2)}


def test_incremental_run_links_new_imports(tenant, synth_dir, tmp_path):
    model_file = tmp_path / "model.json"
    # no previous run: the caller must run in full
    with tenant.engine.begin() as c:
        assert run_incremental(c, tenant_id=tenant.id, model_file=model_file) is None
    for name in ("crm", "webinar"):
        _import(tenant, synth_dir, name)
    with tenant.engine.begin() as c:
        run_identity(c, tenant_id=tenant.id, resolve=lambda r: resolve_with_engine(r, model_file=model_file))
        before = _assignment(c, tenant.id)
        persons_before = dict(
            c.execute(
                sa.select(persons.c.id, persons.c.updated_at).where(persons.c.tenant_id == tenant.id)
            ).all()
        )
    assert model_file.exists() and FeatureStore(index_dir_for(model_file)).exists()

    _import(tenant, synth_dir, "wecom")
    with tenant.engine.begin() as c:
        fresh = new_records(c, tenant.id)
        assert fresh
        rep = run_incremental(c, tenant_id=tenant.id, model_file=model_file, actor="test")
    assert rep is not None and rep.new_records == len(fresh)
    assert rep.attached > 0 and rep.created > 0
    with tenant.engine.begin() as c:
        after = _assignment(c, tenant.id)
        # every new record has a person; old records stay where they were unless two persons merged
        assert set(after) == set(before) | {r["id"] for r in fresh}
        merged_away = {
            p
            for (p,) in c.execute(
                sa.select(persons.c.id).where(persons.c.tenant_id == tenant.id, persons.c.status == "merged")
            )
        }
        moved = [r for r, p in before.items() if after[r] != p]
        assert all(before[r] in merged_away for r in moved)
        # untouched persons keep their golden record untouched
        touched = set(rep.person_of.values())
        rows = dict(
            c.execute(
                sa.select(persons.c.id, persons.c.updated_at).where(persons.c.tenant_id == tenant.id)
            ).all()
        )
        untouched = [p for p in persons_before if p not in touched and p not in merged_away]
        assert untouched and all(rows[p] == persons_before[p] for p in untouched)
        # a new WeCom contact that joined a person: its identifiers point at that person
        joined = next(r for r in fresh if after[r["id"]] in persons_before and r["wecom_external_userid"])
        idn = c.execute(
            sa.select(identities.c.person_id).where(
                identities.c.tenant_id == tenant.id,
                identities.c.type == "wecom_external_userid",
                identities.c.value == joined["wecom_external_userid"],
            )
        ).scalar_one()
        assert idn == after[joined["id"]]
        golden = c.execute(sa.select(persons.c.lineage).where(persons.c.id == idn)).scalar_one()
        assert golden  # rebuilt with lineage
        kinds = {
            k
            for k, d in c.execute(
                sa.select(person_changes.c.kind, person_changes.c.detail).where(
                    person_changes.c.tenant_id == tenant.id, person_changes.c.actor == "test"
                )
            )
            if d.get("incremental")
        }
        assert {"created", "grown"} <= kinds
        # a second run has nothing to do
        again = run_incremental(c, tenant_id=tenant.id, model_file=model_file)
        assert again.new_records == 0

    # the same data resolved in full agrees with the incremental result
    with tenant.engine.begin() as c:
        inc = _assignment(c, tenant.id)
        run_identity(c, tenant_id=tenant.id, resolve=lambda r: resolve_with_engine(r, model_file=model_file))
        full = _assignment(c, tenant.id)
    pi, pf = _pairs(inc), _pairs(full)
    agree = 2 * len(pi & pf) / (len(pi) + len(pf))
    assert agree > 0.98


def test_incremental_run_respects_do_not_merge(tenant, synth_dir, tmp_path):
    model_file = tmp_path / "model.json"
    _import(tenant, synth_dir, "crm")
    with tenant.engine.begin() as c:
        run_identity(c, tenant_id=tenant.id, resolve=lambda r: resolve_with_engine(r, model_file=model_file))
    # the index is a cache: without it the run is a full one
    store = FeatureStore(index_dir_for(model_file))
    for p in store.path.glob("part-*.parquet"):
        p.unlink()
    _import(tenant, synth_dir, "webinar")
    with tenant.engine.begin() as c:
        fresh = {r["id"]: r for r in new_records(c, tenant.id)}
        before = _assignment(c, tenant.id)
        # find a new webinar row that would join an existing person on its phone, and forbid it
        by_phone = {}
        for rid, phone in c.execute(
            sa.select(source_records.c.id, source_records.c.phone)
            .where(source_records.c.tenant_id == tenant.id, source_records.c.phone.is_not(None))
            .order_by(source_records.c.id)
        ):
            if rid in before:
                by_phone.setdefault(phone, rid)
        target = next(r for r in fresh.values() if r["phone"] in by_phone)
        old = by_phone[target["phone"]]
        members = [r for r, p in before.items() if p == before[old]]
        review._constrain(c, tenant.id, "cannot_link", [(target["id"], m) for m in members], "test", "test")
        rep = run_incremental(c, tenant_id=tenant.id, model_file=model_file)
        assert rep is not None and rep.catch_up_features == len(before)  # features recomputed
        after = _assignment(c, tenant.id)
    assert after[target["id"]] != after[old]
    assert set(after) == set(before) | set(fresh)
    with tenant.engine.begin() as c:
        rows = c.execute(
            sa.select(identity_review.c.record_a, identity_review.c.record_b).where(
                identity_review.c.tenant_id == tenant.id, identity_review.c.status == "open"
            )
        ).all()
    # a decided pair is never queued again
    assert not any({a, b} == {target["id"], m} for a, b in rows for m in members)
