"""Golden records with lineage, stable ids across runs, and applying clusters on both engines."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from medscrm.db.schema import identities, person_changes, person_records, persons, source_records
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.persons.service import apply_clusters, load_records
from medscrm.persons.stable_ids import assign_ids
from medscrm.persons.survivorship import Survivorship, golden_record, load_survivorship

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def rec(i, source, days, **f):
    return {
        "id": f"sr{i}",
        "source": source,
        "received_at": T0 + dt.timedelta(days=days),
        "attributes": {},
        **f,
    }


def test_golden_record_rules_and_lineage():
    cfg = load_survivorship()
    recs = [
        rec(1, "crm", 0, name="张伟", phone="+8613800138000", hospital="北京协和医院", title="主治医师"),
        rec(
            2, "webinar", 10, name="张伟", phone="+8613911112222", hospital="北京协和医院", title="副主任医师"
        ),
        rec(3, "wechat", 20, name="张医生", phone=None, hospital=None, title=None),
    ]
    g = golden_record(recs, cfg)
    assert g.attributes["name"] == "张伟"  # verified crm + most frequent beats the newer nickname
    assert g.attributes["phone"] == "+8613800138000"  # verified beats more recent
    assert g.lineage["phone"]["rule"] == "verified" and g.lineage["phone"]["conflicts"] == ["+8613911112222"]
    assert g.attributes["title"] == "副主任医师" and g.lineage["title"]["rule"] == "most_recent"
    assert g.lineage["hospital"]["rule"] == "unanimous" and g.lineage["hospital"]["candidates"] == 2
    assert g.lineage["title"]["source_record_id"] == "sr2" and g.lineage["title"]["source"] == "webinar"
    assert set(g.conflicts) >= {"phone", "title", "name"}


def test_configurable_rules():
    cfg = Survivorship(source_priority={"webinar": 1, "crm": 9}, default=["source_priority"])
    recs = [rec(1, "crm", 0, phone="+8613800138000"), rec(2, "webinar", 0, phone="+8613911112222")]
    assert golden_record(recs, cfg).attributes["phone"] == "+8613911112222"


def test_stable_ids_grow_merge_split():
    ids = iter(f"new{i}" for i in range(100))
    first = assign_ids({"a": ["r1", "r2"], "b": ["r3"]}, {}, mint=lambda: next(ids))
    prev = {r: first.person_of[k] for k, rs in {"a": ["r1", "r2"], "b": ["r3"]}.items() for r in rs}
    assert sorted(first.created) == ["new0", "new1"]
    grown = assign_ids({"x": ["r1", "r2", "r4"], "y": ["r3"]}, prev, mint=lambda: next(ids))
    assert grown.person_of["x"] == prev["r1"] and grown.person_of["y"] == prev["r3"]
    assert grown.grown == {prev["r1"]: 1} and not grown.created
    merged = assign_ids({"m": ["r1", "r2", "r3"]}, prev, mint=lambda: next(ids))
    assert merged.person_of["m"] == prev["r1"]  # the bigger one keeps its id
    assert merged.merged == {prev["r1"]: [prev["r3"]]} and merged.retired == [prev["r3"]]
    split = assign_ids({"s1": ["r1"], "s2": ["r2"], "s3": ["r3"]}, prev, mint=lambda: next(ids))
    assert prev["r1"] in split.split and len(split.created) == 1


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_stable_ids_are_a_function_of_the_clustering(labels):
    clusters: dict[str, list[str]] = {}
    for i, lab in enumerate(labels):
        clusters.setdefault(f"c{lab}", []).append(f"r{i}")
    a = assign_ids(clusters, {}, mint=iter(range(1000)).__next__)
    prev = {r: a.person_of[k] for k, rs in clusters.items() for r in rs}
    again = assign_ids(clusters, prev, mint=iter(range(1000, 2000)).__next__)
    assert again.person_of == a.person_of and not again.created and not again.merged
    assert len(set(a.person_of.values())) == len(clusters)


def test_apply_clusters_builds_persons_identities_and_history(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(
        "编号,姓名,手机,医院\n1,张伟,13800138000,北京协和医院\n2,張偉,138 0013 8000,协和医院\n"
        "3,李娜,13900139000,华西医院\n",
        encoding="utf-8",
    )
    import_file(
        engine=tenant.engine, tenant_id=tenant.id, source="crm", path=f, mapping=Mapping(record_key="编号")
    )
    with tenant.engine.begin() as c:
        recs = load_records(c, tenant.id)
        by_key = {r["record_key"]: r["id"] for r in recs}
        rep = apply_clusters(
            c,
            tenant_id=tenant.id,
            clusters={"a": [by_key["1"], by_key["2"]], "b": [by_key["3"]]},
            records=recs,
        )
    assert (rep.persons, rep.created) == (2, 2)
    with tenant.engine.connect() as c:
        ps = {
            r["id"]: dict(r)
            for r in c.execute(sa.select(persons).where(persons.c.tenant_id == tenant.id)).mappings()
        }
        pid_zhang = c.execute(
            sa.select(person_records.c.person_id).where(person_records.c.source_record_id == by_key["1"])
        ).scalar()
        ids = c.execute(
            sa.select(identities.c.type, identities.c.value).where(
                identities.c.tenant_id == tenant.id, identities.c.person_id == pid_zhang
            )
        ).all()
    assert ps[pid_zhang]["attributes"]["name"] == "张伟"
    assert ps[pid_zhang]["lineage"]["phone"]["rule"] == "unanimous"
    assert ("phone", "+8613800138000") in ids
    # a later run that merges everyone keeps the bigger person's id and records the merge
    with tenant.engine.begin() as c:
        rep2 = apply_clusters(c, tenant_id=tenant.id, clusters={"z": list(by_key.values())})
    assert rep2.merged == 1 and rep2.retired == 1
    with tenant.engine.connect() as c:
        statuses = dict(
            c.execute(sa.select(persons.c.id, persons.c.status).where(persons.c.tenant_id == tenant.id)).all()
        )
        kinds = (
            c.execute(sa.select(person_changes.c.kind).where(person_changes.c.tenant_id == tenant.id))
            .scalars()
            .all()
        )
        n_src = c.execute(
            sa.select(sa.func.count())
            .select_from(source_records)
            .where(source_records.c.tenant_id == tenant.id)
        ).scalar()
    assert statuses[pid_zhang] == "active" and sorted(statuses.values()) == ["active", "merged"]
    assert sorted(kinds) == ["created", "created", "grown", "merged"] and n_src == 3
