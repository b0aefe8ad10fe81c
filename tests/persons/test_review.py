"""Manual merge, unmerge, the review queue and constraints that later runs respect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from medscrm.common import MedscrmError
from medscrm.db.schema import audit_log, person_changes
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.persons import review
from medscrm.persons.constraints import constrained_clusters
from medscrm.persons.service import apply_clusters, load_records


def test_constrained_clusters_respect_cannot_and_must():
    links = [("a", "b", 0.99), ("b", "c", 0.98), ("d", "e", 0.97)]
    assert constrained_clusters("abcde", links) == {"a": ["a", "b", "c"], "d": ["d", "e"]}
    got = constrained_clusters("abcde", links, cannot=[("a", "c")])
    assert got == {"a": ["a", "b"], "c": ["c"], "d": ["d", "e"]}  # the weaker link is the one dropped
    got = constrained_clusters("abcde", links, must=[("c", "d")], cannot=[("a", "e")])
    assert got == {"a": ["a", "b", "c", "d"], "e": ["e"]}  # must first; d-e would put a with e


def test_one_weak_link_does_not_glue_two_big_clusters():
    left = [(f"l{i}", f"l{i + 1}", 0.9999) for i in range(25)]
    right = [(f"r{i}", f"r{i + 1}", 0.9999) for i in range(25)]
    recs = [f"l{i}" for i in range(26)] + [f"r{i}" for i in range(26)]
    got = constrained_clusters(recs, [*left, *right, ("l3", "r7", 0.95)], big=20)
    assert sorted(len(v) for v in got.values()) == [26, 26]
    got = constrained_clusters(recs, [*left, *right, ("l3", "r7", 0.9999)], big=20)
    assert [len(v) for v in got.values()] == [52]


@pytest.fixture
def three_people(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(
        "编号,姓名,手机\n1,张伟,13800138000\n2,张伟,13800138001\n3,李娜,13900139000\n4,王芳,13700137000\n",
        encoding="utf-8",
    )
    import_file(
        engine=tenant.engine, tenant_id=tenant.id, source="crm", path=f, mapping=Mapping(record_key="编号")
    )
    with tenant.engine.begin() as c:
        recs = load_records(c, tenant.id)
        key = {r["record_key"]: r["id"] for r in recs}
        apply_clusters(
            c,
            tenant_id=tenant.id,
            clusters={"a": [key["1"]], "b": [key["2"]], "c": [key["3"], key["4"]]},
            records=recs,
        )
        clusters = review.current_clusters(c, tenant.id)
    person = {rid: pid for pid, rs in clusters.items() for rid in rs}
    return tenant, key, person


def test_review_merge_then_unmerge_with_history_and_audit(three_people):
    tenant, key, person = three_people
    with tenant.engine.begin() as c:
        n = review.queue_pairs(
            c,
            tenant_id=tenant.id,
            pairs=[
                {
                    "record_a": key["1"],
                    "record_b": key["2"],
                    "probability": 0.8,
                    "match_weight": 3.1,
                    "detail": {"name": "exact", "phone": "different"},
                }
            ],
        )
        assert n == 1
        assert (
            review.queue_pairs(
                c,
                tenant_id=tenant.id,
                pairs=[{"record_a": key["2"], "record_b": key["1"], "probability": 0.8}],
            )
            == 0
        )  # already open
        (item,) = review.list_reviews(c, tenant_id=tenant.id)
        assert item["a"]["name"] == "张伟" and item["detail"]["phone"] == "different"
        res = review.decide(c, tenant_id=tenant.id, review_id=item["id"], decision="merge", actor="user:ops")
        with pytest.raises(MedscrmError, match="already decided"):
            review.decide(c, tenant_id=tenant.id, review_id=item["id"], decision="reject", actor="user:ops")
        clusters = review.current_clusters(c, tenant.id)
    merged = res["person_id"]
    assert sorted(clusters[merged]) == sorted([key["1"], key["2"]])
    # the wrong merge of 李娜 and 王芳 is undone; they may not be merged again
    pid_c = person[key["3"]]
    with tenant.engine.begin() as c:
        review.unmerge(
            c,
            tenant_id=tenant.id,
            person_id=pid_c,
            record_ids=[key["4"]],
            actor="user:ops",
            reason="different people",
        )
        clusters = review.current_clusters(c, tenant.id)
        assert clusters[pid_c] == [key["3"]]  # the person keeps its id, the split-off record gets a new one
        new_pid = next(p for p, rs in clusters.items() if rs == [key["4"]])
        with pytest.raises(MedscrmError, match="do-not-merge"):
            review.merge_persons(c, tenant_id=tenant.id, person_a=pid_c, person_b=new_pid, actor="user:ops")
        must, cannot = review.constraints(c, tenant.id)
        kinds = (
            c.execute(sa.select(person_changes.c.kind).where(person_changes.c.tenant_id == tenant.id))
            .scalars()
            .all()
        )
        actions = (
            c.execute(sa.select(audit_log.c.action).where(audit_log.c.tenant_id == tenant.id)).scalars().all()
        )
    assert (key["4"], key["3"]) in cannot and len(must) == 1
    assert "merged" in kinds and "split" in kinds
    assert {"identity.review.merge", "identity.merge", "identity.unmerge"} <= set(actions)


def test_reject_records_a_do_not_merge(three_people):
    tenant, key, _ = three_people
    with tenant.engine.begin() as c:
        review.queue_pairs(
            c, tenant_id=tenant.id, pairs=[{"record_a": key["1"], "record_b": key["2"], "probability": 0.7}]
        )
        (item,) = review.list_reviews(c, tenant_id=tenant.id)
        review.decide(c, tenant_id=tenant.id, review_id=item["id"], decision="reject", actor="user:ops")
        _, cannot = review.constraints(c, tenant.id)
        assert (
            review.queue_pairs(
                c,
                tenant_id=tenant.id,
                pairs=[{"record_a": key["1"], "record_b": key["2"], "probability": 0.7}],
            )
            == 0
        )
    assert sorted(cannot[0]) == sorted([key["1"], key["2"]])


def test_later_runs_respect_decisions():
    from medscrm.persons.run import EngineResult, respect_constraints

    res = EngineResult(
        clusters={"a": ["a", "b", "c"], "d": ["d"], "e": ["e"]},
        links=[("a", "b", 0.999), ("b", "c", 0.99)],
        review=[],
    )
    assert respect_constraints(res, [], []) == res.clusters
    got = respect_constraints(res, must=[("d", "e")], cannot=[("a", "c")])
    assert sorted(got.values()) == [["a", "b"], ["c"], ["d", "e"]]
    got = respect_constraints(res, must=[("c", "d")], cannot=[("b", "c")])
    assert sorted(got.values()) == [["a", "b"], ["c", "d"], ["e"]]
