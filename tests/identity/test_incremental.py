"""Incremental linking (library level): new records into resolved persons without a full run."""

from __future__ import annotations

import copy
import itertools
import random

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medscrm.identity.incremental import IncrementalLinker, parse_blocking_rule
from medscrm.identity.resolve import resolve_records
from medscrm.synth import generate

COL = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True)


@given(
    st.lists(COL, min_size=1, max_size=4),
    st.sampled_from([" and ", " AND ", "  and  "]),
    st.one_of(st.none(), COL),
    st.integers(0, 4),
    st.lists(st.tuples(COL, st.integers(0, 100)), max_size=2),
)
def test_blocking_rule_parser_round_trip(cols, sep, flag, at, sims):
    parts = [f"l.{c} = r.{c}" for c in cols]
    if flag is not None:  # "(l.f = 1 or r.f = 1)": a 0/1 flag set on either side, anywhere in the rule
        parts.insert(min(at, len(parts)), f"(l.{flag} = 1 or r.{flag} = 1)")
    similar = tuple((c, t / 100) for c, t in sims)
    parts += [f"jaro_winkler(l.{c}, r.{c}) >= {t}" for c, t in similar]
    assert parse_blocking_rule(sep.join(parts)) == (tuple(cols), flag, similar)


@pytest.mark.parametrize(
    "rule",
    [
        "l.phone = r.email",
        "levenshtein(l.name, r.name) < 2",
        "jaro_winkler(l.name, r.name) >= 0.9",  # a filter alone blocks nothing
        "l.a = r.a and jaro_winkler(l.b, r.c) >= 0.9",
        "l.a = r.a and jaro_winkler(l.b, r.b) > 0.9",
        "l.a = r.a or l.b = r.b",
        "",
        "(l.f = 1 or r.f = 1)",  # a flag alone blocks nothing
        "l.a = r.a and (l.f = 1 or r.g = 1)",
        "l.a = r.a and (l.f = 1 or r.f = 1) and (l.g = 1 or r.g = 1)",
    ],
)
def test_blocking_rule_parser_refuses_other_shapes(rule):
    with pytest.raises(ValueError, match="blocking rule"):
        parse_blocking_rule(rule)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    generate(d, hcps=800, seed=11, progress=False)
    df = pd.read_csv(d / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
    truth = pd.read_csv(d / "ground_truth.csv", dtype=str)
    return df, dict(zip(truth["record_id"], truth["person_key"], strict=True))


def _pairs(assign: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for r, p in assign.items():
        groups.setdefault(p, []).append(r)
    return {pair for g in groups.values() for pair in itertools.combinations(sorted(g), 2)}


def _f1(pred: set, true: set) -> float:
    tp = len(pred & true)
    p, r = tp / max(1, len(pred)), tp / max(1, len(true))
    return 2 * p * r / (p + r) if p + r else 0.0


@pytest.fixture(scope="module")
def base(synth):
    df, _truth = synth
    held = random.Random(3).sample(range(len(df)), 150)
    res = resolve_records(df.drop(index=held).reset_index(drop=True))
    return res, df.iloc[held].reset_index(drop=True)


def test_incremental_clusters_match_a_full_rerun(synth, base):
    df, truth = synth
    res, new = base
    linker = IncrementalLinker.from_resolve(res)
    n_before = len(linker)
    out = linker.link(new.iloc[:100])
    out2 = linker.link(new.iloc[100:])
    assert len(linker) == n_before + len(new)
    assert set(out.person_of) | set(out2.person_of) == set(new["record_id"])
    # attached to existing persons where the evidence is there, new persons otherwise
    assert sum(out.grown.values()) > 50 and out.created
    inc = {r: p for p, rs in linker.persons().items() for r in rs}
    full = resolve_records(df)
    ref = dict(zip(full.clusters["record_id"], full.clusters["person_id"], strict=True))
    true_pairs = _pairs({r: truth[r] for r in df["record_id"]})
    assert abs(_f1(_pairs(inc), true_pairs) - _f1(_pairs(ref), true_pairs)) < 0.003
    assert _f1(_pairs(inc), _pairs(ref)) > 0.995


def _tiny_linker(**guards):
    rows = [
        # person A: three records sharing a phone
        {
            "record_id": "a1",
            "name": "张伟",
            "phone": "13800000001",
            "hospital": "北京协和医院",
            "city": "北京",
        },
        {"record_id": "a2", "name": "张伟", "phone": "13800000001", "email": "zw@pumch.cn", "city": "北京"},
        {"record_id": "a3", "name": "张伟", "phone": "13800000001", "license_no": "110101198001011234"},
        # person B: three records sharing an e-mail
        {"record_id": "b1", "name": "李娜", "email": "lina@rj.cn", "hospital": "瑞金医院", "city": "上海"},
        {"record_id": "b2", "name": "李娜", "email": "lina@rj.cn", "phone": "13900000002"},
        {"record_id": "b3", "name": "李娜", "email": "lina@rj.cn", "title": "主任医师"},
        {"record_id": "c1", "name": "王芳", "phone": "13700000003", "hospital": "华西医院", "city": "成都"},
    ]
    filler = [
        {
            "record_id": f"f{i}",
            "name": n,
            "phone": f"135{i:08d}",
            "hospital": h,
            "city": c,
            "department": "心内科",
        }
        for i, (n, (h, c)) in enumerate(
            itertools.product(
                ["陈静", "刘洋", "杨帆", "赵磊", "黄敏", "周杰", "吴昊", "徐丽"],
                [("北京协和医院", "北京"), ("瑞金医院", "上海"), ("华西医院", "成都")],
            )
        )
    ]
    res = resolve_records(rows + filler + [dict(r, record_id=r["record_id"] + "x") for r in filler])
    if guards:
        for m in res.models.values():
            m.settings = copy.deepcopy(m.settings)
            m.settings["guards"].update(guards)
    return res, IncrementalLinker.from_resolve(res)


def test_deterministic_attach_new_person_and_constraints():
    res, lk = _tiny_linker()
    a = lk.person_of("a1")
    assert lk.person_of("a2") == a == lk.person_of("a3")
    out = lk.link(
        [
            {"record_id": "n1", "name": "张伟", "phone": "138-0000-0001"},  # A's phone, formatted
            {"record_id": "n2", "name": "欧阳娜娜", "phone": "13611112222"},  # nobody
            {"record_id": "n3", "name": "王芳", "phone": "13700000003"},  # C's phone
        ],
        cannot=[("n3", "c1")],
    )
    assert out.person_of["n1"] == a and out.grown[a] == 1
    assert any("n1" in x[:2] and x[2] == 1.0 and x[3] == "deterministic:phone" for x in out.links)
    assert out.person_of["n2"] in out.created
    assert out.person_of["n3"] != lk.person_of("c1")  # a do-not-merge decision holds
    assert any(r["reason"] == "cannot_link constraint" for r in out.refused)


def test_shared_value_is_not_an_identity():
    _res, lk = _tiny_linker()
    a = lk.person_of("a1")
    # a third name on A's phone: the phone now has more persons than max_persons_per_value (2)
    lk.link([{"record_id": "m1", "name": "孙强", "phone": "13800000001"}])
    out = lk.link([{"record_id": "m2", "name": "钱进", "phone": "13800000001"}])
    assert out.person_of["m2"] != a
    assert lk.person_of("m1") != a
    assert not any(x[3] == "deterministic:phone" for x in out.links)


def test_bridging_record_does_not_glue_two_big_persons_on_a_weak_link():
    # every link weaker than 1.01 (deterministic ones too) counts as weak between clusters of >= 3
    _res, lk = _tiny_linker(big_cluster_link=1.01, big_cluster_min=3)
    a, b = lk.person_of("a1"), lk.person_of("b1")
    assert a != b
    out = lk.link([{"record_id": "x1", "phone": "13800000001", "email": "lina@rj.cn"}])
    assert not out.merged
    assert out.person_of["x1"] in (a, b)
    assert lk.person_of("a1") != lk.person_of("b1")
    assert any(r["detail"]["reason"] == "weak link between big clusters" for r in out.review)
    # with the default guards a record carrying both strong identifiers merges the two persons
    _res, lk = _tiny_linker()
    a, b = lk.person_of("a1"), lk.person_of("b1")
    out = lk.link([{"record_id": "x1", "name": "张伟", "phone": "13800000001", "email": "lina@rj.cn"}])
    # 张伟 ≠ 李娜: the e-mail holder group differs by name, so only A's phone links
    assert out.person_of["x1"] == a and not out.merged


def test_bad_input_is_refused_with_the_field_named():
    _res, lk = _tiny_linker()
    with pytest.raises(ValueError, match="record_id"):
        lk.link([{"name": "张伟"}])
    with pytest.raises(ValueError, match="already linked"):
        lk.link([{"record_id": "a1", "name": "张伟"}])
    out = lk.link([{"record_id": "z1", "phone": "not a phone"}, {"record_id": "z1", "name": "重复"}])
    assert out.stats["duplicate_record_ids"] == 1
    assert out.stats["features"]["malformed"].get("phone") == 1
    assert "z1" in out.person_of
