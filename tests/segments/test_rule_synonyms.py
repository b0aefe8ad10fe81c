"""Rule values go through the import's dictionaries: a department or hospital written as any of its
synonyms selects the same persons as its canonical name (both engines)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db.schema import persons
from medscrm.rules import RuleContext, normalisations, parse
from medscrm.schema.person import department_forms, normalize_department
from medscrm.segments import service as segments
from medscrm.tags.synonyms import hospital_forms, rule_synonyms

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
DEPARTMENTS = ("心血管内科", "呼吸内科", "内分泌科", "肾内科")
HOSPITALS = tuple(hospital_forms(h)[0] for h in ("华西医院", "北京协和医院", "瑞金医院"))  # full names
DEPT_SYNONYMS = [(c, s) for c in DEPARTMENTS for s in department_forms(c)[1]]
HOSP_SYNONYMS = [(c, s) for c in HOSPITALS for s in hospital_forms(c)[1]]


def test_the_dictionaries_name_one_canonical_value_for_every_synonym():
    assert department_forms("心内科")[0] == "心血管内科"
    assert hospital_forms("华西医院")[0] == "四川大学华西医院"
    assert hospital_forms("协和医院") is None  # ambiguous without a city: the value stays as written
    for canonical, synonym in DEPT_SYNONYMS:
        assert department_forms(synonym)[0] == canonical
        assert normalize_department(synonym) == canonical  # what an import stores
    for canonical, synonym in HOSP_SYNONYMS:
        assert hospital_forms(synonym)[0] == canonical


def test_the_validator_widens_eq_and_ne_and_names_what_it_normalised():
    ctx = RuleContext(synonyms=rule_synonyms())
    node = parse({"attr": "department", "op": "eq", "value": "心内科"}, ctx)
    assert node.cmp.op == "in" and node.cmp.value[0] == "心血管内科" and "心内科" in node.cmp.value
    node = parse({"attr": "hospital", "op": "ne", "value": "华西医院"}, ctx)
    assert node.cmp.op == "not_in" and "四川大学华西医院" in node.cmp.value
    node = parse({"attr": "department", "op": "contains", "value": "心内"}, ctx)  # text search: as written
    assert (node.cmp.op, node.cmp.value) == ("contains", "心内")
    node = parse({"attr": "department", "op": "eq", "value": "不存在的科室"}, ctx)
    assert (node.cmp.op, node.cmp.value) == ("eq", "不存在的科室")
    rule = {
        "and": [
            {"attr": "department", "op": "in", "value": ["心血管内科", "呼吸科"]},
            {"not": {"attr": "hospital", "op": "eq", "value": "华西"}},
        ]
    }
    found = [(n.path, n.value, n.canonical) for n in normalisations(rule, ctx)]
    assert found == [
        ("and[0].value[1]", "呼吸科", "呼吸内科"),
        ("and[1].not.value", "华西", "四川大学华西医院"),
    ]
    assert parse(rule, RuleContext()).children[0].cmp.value == ("心血管内科", "呼吸科")  # no dictionary


@pytest.fixture
def stored(tenant):
    """Golden records whose departments are stored as imports store them (canonical) and whose
    hospitals carry the names the sources used (any alias)."""
    rows = []
    for i in range(24):
        canonical = HOSPITALS[i % len(HOSPITALS)]
        names = hospital_forms(canonical)[1]
        rows.append(
            {
                "id": f"per_{uuid.uuid4().hex}",
                "tenant_id": tenant.id,
                "person_type": "hcp",
                "status": "active",
                "attributes": {
                    "name": f"医生{i}",
                    "department": normalize_department(DEPT_SYNONYMS[(i * 7) % len(DEPT_SYNONYMS)][1]),
                    "hospital": names[i % len(names)],
                },
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    rows.append({**rows[0], "id": f"per_{uuid.uuid4().hex}", "attributes": {"name": "无科室"}})
    with tenant.engine.begin() as conn:
        conn.execute(sa.insert(persons), rows)

    def members(rule) -> set[str]:
        with tenant.engine.connect() as conn:
            q = segments._compiled(conn, tenant_id=tenant.id, rule=rule, now=NOW)
            return set(conn.execute(q).scalars())

    return members


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.one_of(
        st.sampled_from(DEPT_SYNONYMS).map(lambda p: ("department", *p)),
        st.sampled_from(HOSP_SYNONYMS).map(lambda p: ("hospital", *p)),
    ),
    op=st.sampled_from(["eq", "ne", "in", "not_in"]),
)
def test_a_synonym_selects_the_same_members_as_the_canonical_value(stored, pick, op):
    attr, canonical, synonym = pick
    wrap = (lambda v: [v, "某个不存在的值"]) if op in ("in", "not_in") else (lambda v: v)
    by_synonym = stored({"attr": attr, "op": op, "value": wrap(synonym)})
    by_canonical = stored({"attr": attr, "op": op, "value": wrap(canonical)})
    assert by_synonym == by_canonical
    if op == "eq":
        assert by_canonical  # every value in the strategies is held by someone


def test_the_console_preview_says_which_value_was_normalised(tenant, stored):
    from medscrm.tags.service import rule_context

    with tenant.engine.connect() as conn:
        ctx = rule_context(conn, tenant_id=tenant.id)
        res = segments.preview(
            conn, tenant_id=tenant.id, rule={"attr": "department", "op": "eq", "value": "心内科"}
        )
    assert res["count"] == len(stored({"attr": "department", "op": "eq", "value": "心血管内科"})) > 0
    assert [
        (n.value, n.canonical) for n in normalisations({"attr": "department", "value": "心内科"}, ctx)
    ] == [("心内科", "心血管内科")]
