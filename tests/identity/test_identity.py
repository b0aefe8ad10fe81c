"""OneID matching engine: names, hospitals, guards, scoring, clustering, resolve."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.identity.cluster import cluster_links
from medscrm.identity.explain import Scorer
from medscrm.identity.features import build_features
from medscrm.identity.hospitals import HospitalIndex
from medscrm.identity.names import parse_name
from medscrm.identity.resolve import resolve_file, resolve_records
from medscrm.identity.settings import jaro_winkler, level_of, load_settings


@pytest.mark.parametrize(
    ("name", "surname_py"),
    [
        ("曾小明", "zeng"),
        ("单雄信", "shan"),
        ("仇晓", "qiu"),
        ("解放", "xie"),
        ("区伟", "ou"),
        ("查良镛", "zha"),
        ("乐嘉", "yue"),
        ("朴树", "piao"),
        ("盖伟", "ge"),
        ("尉迟恭", "yuchi"),
    ],
)
def test_polyphonic_surnames(name, surname_py):
    assert parse_name(name).surname_py == surname_py


def test_compound_surnames_and_english_order():
    p = parse_name("欧阳娜娜")
    assert (p.surname, p.given) == ("欧阳", "娜娜")
    assert parse_name("司马光").surname == "司马"
    keys = {
        parse_name(n).py_key
        for n in ["张伟", "張偉", "Wei Zhang", "ZHANG Wei", "zhang wei", "zhangwei", "张 伟"]
    }
    assert keys == {"wei zhang"}
    assert parse_name("张威").py_key == parse_name("张伟").py_key  # homophone


@pytest.mark.parametrize("nick", ["张医生", "李主任", "王大夫", "Dr. Wang", "张教授", "🎈孙主任🎈", "老王"])
def test_nicknames_are_partial(nick):
    p = parse_name(nick)
    assert p.partial and p.full is None and p.py_key is None and p.surname_py


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_parse_name_never_raises(s):
    parse_name(s)


@given(
    st.sampled_from(["zhang", "wang", "li", "ouyang"]),
    st.sampled_from(["wei", "xiaoming", "na", "jing"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([" ", "  ", "\u3000"]),
)
def test_pinyin_key_invariant(sur, given_, swap, upper, ws):
    a, b = (given_, sur) if swap else (sur, given_)
    text = f"{a}{ws}{b}"
    if upper:
        text = text.upper()
    full_width = "".join(chr(ord(c) + 0xFEE0) if "a" <= c.lower() <= "z" else c for c in text)
    assert parse_name(text).py_key == parse_name(full_width).py_key == " ".join(sorted([sur, given_]))


def test_hospital_alias_keyed_by_city():
    h = HospitalIndex()
    bj = h.resolve("北京协和医院").hospital_id
    assert h.resolve("协和医院", "北京").hospital_id == bj
    assert h.resolve("PUMCH").hospital_id == bj
    wh = h.resolve("协和医院", "武汉").hospital_id
    fz = h.resolve("协和医院", "福州").hospital_id
    assert len({bj, wh, fz}) == 3 and not wh.startswith("x:")
    assert h.resolve("协和医院").hospital_id.startswith("x:")  # ambiguous without a city
    assert h.resolve("广州 孙逸仙纪念医院").hospital_id == h.resolve("中山大学孙逸仙纪念医院").hospital_id


def test_hospital_campus_is_the_hospital():
    h = HospitalIndex()
    pumch = h.resolve("北京协和医院").hospital_id
    assert h.resolve("北京协和医院(西单院区)").hospital_id == pumch
    assert h.resolve("协和医院东院", "北京").hospital_id == pumch
    wc = h.resolve("四川大学华西医院").hospital_id
    assert h.resolve("华西医院 温江院区", "成都").hospital_id == wc
    assert h.resolve("瑞金医院分院", "上海").method == "exact"
    # "中山大学…" does not start with the city 中山 once the campus is dropped
    assert h.resolve("中山大学附属第一医院东院").city == "广州"
    # an unknown hospital's campus still agrees with the hospital itself
    assert h.resolve("某某医院东院", "成都").hospital_id == h.resolve("某某医院", "成都").hospital_id
    # a campus of 协和 in 武汉 stays in 武汉
    assert h.resolve("协和医院西院", "武汉").hospital_id == h.resolve("协和医院", "武汉").hospital_id != pumch


def test_tenant_aliases(tmp_path):
    f = tmp_path / "aliases.csv"
    f.write_text("hospital_id,alias\nH0001,老协和\n", encoding="utf-8")
    from medscrm.identity.hospitals import load_extra_aliases

    assert HospitalIndex(load_extra_aliases(f)).resolve("老协和").hospital_id == "H0001"


def _doctor(rid, name, **kw):
    return {"record_id": rid, "name": name, **kw}


def _persons(res):
    return dict(zip(res.clusters["record_id"], res.clusters["person_id"], strict=True))


FILLER = [
    _doctor(f"f{i}", n, hospital=h, department=d, phone=f"1390000{i:04d}", city=c)
    for i, (n, h, d, c) in enumerate(
        itertools.product(
            ["王伟", "李娜", "刘洋", "陈静", "杨帆", "赵磊"],
            ["北京协和医院", "华山医院"],
            ["心内科", "呼吸科"],
            ["北京"],
        )
    )
]


def test_shared_clinic_phone_does_not_merge_ten_doctors():
    names = [
        "王建国",
        "李秀英",
        "张志强",
        "刘桂芳",
        "陈德明",
        "杨丽娟",
        "赵海涛",
        "黄晓燕",
        "周文斌",
        "吴红梅",
    ]
    rows = [
        _doctor(f"d{i}", n, hospital="北京协和医院", phone="010-69156114", department="心内科")
        for i, n in enumerate(names)
    ]
    res = resolve_records(rows + FILLER)
    p = _persons(res)
    assert len({p[f"d{i}"] for i in range(10)}) == 10
    assert res.report["shared_identifier_values"] >= 1


def test_homophone_typo_with_same_phone_merges_and_nickname_alone_does_not():
    rows = [
        _doctor("a1", "张伟", hospital="北京协和医院", phone="13811112222", department="心内科"),
        _doctor("a2", "张威", hospital="协和医院", city="北京", phone="138 1111 2222"),
        _doctor("n1", "张医生", hospital="华山医院", city="上海"),
        _doctor("n2", "张晓明", hospital="华山医院", city="上海", department="呼吸科"),
        _doctor("n3", "张晓红", hospital="华山医院", city="上海", department="心内科"),
    ]
    p = _persons(resolve_records(rows + FILLER))
    assert p["a1"] == p["a2"]
    assert p["n1"] not in (p["n2"], p["n3"])


def test_same_hospital_namesakes_kept_apart():
    rows = [
        _doctor(
            "s1",
            "王伟",
            hospital="北京协和医院",
            department="心内科",
            phone="13811110001",
            license_no="111172010000001",
        ),
        _doctor(
            "s2",
            "王伟",
            hospital="北京协和医院",
            department="骨科",
            phone="13911110002",
            license_no="111172010000999",
        ),
        _doctor("s3", "王伟", hospital="北京协和医院", department="眼科", phone="13711110003"),
    ]
    p = _persons(resolve_records(rows + FILLER))
    assert len({p["s1"], p["s2"], p["s3"]}) == 3


def test_cluster_conflicting_licences_and_big_cluster_glue():
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    links = pd.DataFrame(
        [
            ("a", "b", 1.0),
            ("b", "c", 0.99),
            ("d", "e", 1.0),
            ("e", "f", 1.0),
            ("c", "d", 0.98),
            ("f", "g", 0.99),
        ],
        columns=["unique_id_l", "unique_id_r", "match_probability"],
    )
    res = cluster_links(ids, links, {"license_no": {"a": "111", "g": "999", "f": "111"}}, big_cluster_min=3)
    pid = dict(zip(res.assignments.unique_id, res.assignments.person_id, strict=True))
    assert pid["a"] == pid["c"] and pid["d"] == pid["f"]
    assert pid["c"] != pid["d"]  # one weak link does not glue two clusters of 3
    assert pid["g"] != pid["f"]  # conflicting licence


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    subprocess.run(
        [sys.executable, "-m", "medscrm", "synth", "--hcps", "1500", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _pairwise(clusters, truth):
    m = clusters.merge(truth, on="record_id")

    def pairs(col):
        s = set()
        for _, g in m.groupby(col):
            s.update(itertools.combinations(sorted(g.record_id), 2))
        return s

    pred, true = pairs("person_id"), pairs("person_key")
    tp = len(pred & true)
    return tp / max(1, len(pred)), tp / max(1, len(true))


def test_resolve_synth_precision_and_stable_ids(synth, tmp_path):
    out1, out2 = tmp_path / "o1.csv", tmp_path / "o2.csv"
    resolve_file(synth / "all_records.csv", out1)
    resolve_file(synth / "all_records.csv", out2)
    a, b = pd.read_csv(out1), pd.read_csv(out2)
    assert a.equals(b)
    assert list(a.columns[:3]) == ["record_id", "person_id", "confidence"]
    truth = pd.read_csv(synth / "ground_truth.csv", dtype=str)[["record_id", "person_key"]]
    precision, recall = _pairwise(a, truth)
    assert precision >= 0.98
    assert recall >= 0.5


def test_explain_agrees_with_splink(synth):
    df = pd.read_csv(synth / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
    res = resolve_records(df[df.person_type == "hcp"])
    model = res.models["hcp"]
    feats = res.features.set_index("unique_id")
    pairs = res.pairs[res.pairs["source"] == "probabilistic"].sample(n=200, random_state=1, replace=True)
    scorer = Scorer(model)
    s = load_settings()
    for row in pairs.itertuples():
        left = {"unique_id": row.record_id_l, **feats.loc[row.record_id_l].to_dict()}
        right = {"unique_id": row.record_id_r, **feats.loc[row.record_id_r].to_dict()}
        ex = scorer.score(left, right)
        for comp, fr in zip(s["comparisons"], ex.fields, strict=True):
            assert fr.level == getattr(row, f"gamma_{comp['name']}") == level_of(comp, left, right)
        assert ex.total_weight == pytest.approx(row.match_weight, abs=1e-6)
        assert ex.probability == pytest.approx(row.match_probability, abs=1e-6)


def test_scorer_is_fast(synth):
    import time

    df = pd.read_csv(synth / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
    res = resolve_records(df.head(2000))
    scorer = Scorer(res.models["hcp"])
    rows = res.features.head(6).to_dict("records")
    t = time.perf_counter()
    for r in rows[1:]:
        scorer.score(rows[0], r)
    assert (time.perf_counter() - t) < 0.005


def test_bad_input_reported_not_dropped():
    rows = [
        {"record_id": "x", "name": "张伟", "phone": "139****1234"},
        {"record_id": "x", "name": "张伟"},
        {"record_id": "y"},
        {"record_id": "z", "name": "李娜", "license_no": "12345"},
    ]
    res = resolve_records(rows)
    assert len(res.clusters) == 4
    assert res.report["duplicate_record_ids"] == 1
    assert res.report["features"]["unusable_records"] == 1
    assert res.report["features"]["malformed"] == {"phone": 1, "license_no": 1}


def test_jaro_winkler_reference_values():
    assert jaro_winkler("martha", "marhta") == pytest.approx(0.9611, abs=1e-4)
    assert jaro_winkler("dwayne", "duane") == pytest.approx(0.84, abs=1e-4)


def test_features_carry_hospital_city():
    f, _ = build_features(pd.DataFrame([{"record_id": "1", "name": "王伟", "hospital": "北京协和医院"}]))
    assert f.loc[0, "city"] == "北京" and f.loc[0, "hospital_id"] == "H0001"


def test_spark_gives_same_clusters(synth):
    # same trained parameters on both engines (training samples pairs at random, differently per
    # engine): blocking, scoring, guards and clustering must then agree exactly (~20 s, default run)
    pytest.importorskip("pyspark")
    df = pd.read_csv(synth / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
    df = df.sample(1500, random_state=7)
    ra = resolve_records(df)
    a = ra.clusters
    rb = resolve_records(df, engine="spark", model=ra.models, train=False)
    assert not any("hcp:" in e for e in rb.report.get("errors", [])), rb.report.get("errors")
    b = rb.clusters
    assert (a["cluster_size"] > 1).sum() > 100
    assert _pairwise(a, b.rename(columns={"person_id": "person_key"})[["record_id", "person_key"]]) == (
        1.0,
        1.0,
    )


@pytest.mark.parametrize(
    ("raw", "full", "key"),
    [
        ("韩东子医生", "韩东子", "dongzi han"),
        ("许帅医生", "许帅", "shuai xu"),
        ("张伟主任医师", "张伟", "wei zhang"),
        ("王芳 副主任医师", "王芳", "fang wang"),
        ("欧阳娜娜教授", "欧阳娜娜", "nana ouyang"),
        ("许帅(医生)", "许帅", "shuai xu"),
        ("Wang Wei, MD", "Wang Wei", "wang wei"),
        ("Dr. Wei Zhang", "Wei Zhang", "wei zhang"),
    ],
)
def test_full_name_with_honorific_is_full(raw, full, key):
    p = parse_name(raw)
    assert not p.partial and p.full == full and p.py_key == key


@pytest.mark.parametrize("nick", ["欧阳医生", "张老师", "王院长", "李护士长", "Wang MD", "小张老师"])
def test_surname_with_honorific_is_partial(nick):
    p = parse_name(nick)
    assert p.partial and p.full is None and p.surname_py


def test_full_name_with_honorific_links_on_phone_and_email():
    recs = [
        _doctor(
            "c1",
            "韩东子",
            hospital="北京协和医院",
            city="北京",
            phone="13800138000",
            email="hdz@pumch.cn",
            department="心内科",
            title="主治医师",
        ),
        _doctor(
            "w1",
            "韩东子医生",
            hospital="协和医院",
            phone="13800138000",
            email="hdz@pumch.cn",
            department="心内科",
            title="主治医师",
        ),
        _doctor("c2", "许帅", hospital="北京协和医院", city="北京", phone="13900139000"),
        _doctor("w2", "许帅医生", phone="13900139000"),
    ]
    res = resolve_records(pd.DataFrame(recs))
    pid = dict(zip(res.clusters["record_id"], res.clusters["person_id"], strict=True))
    assert pid["c1"] == pid["w1"] and pid["c2"] == pid["w2"] and pid["c1"] != pid["c2"]


def test_nickname_of_the_same_person_does_not_block_a_phone_link():
    recs = [
        _doctor("c1", "戚萍梅", hospital="东南大学附属中大医院", city="南京", phone="18324640724"),
        _doctor("q1", "小梅", phone="+86 183 2464 0724"),
        _doctor("c2", "刘伟", hospital="南京鼓楼医院", city="南京", phone="13199688381"),
        _doctor("q2", "伟伟", phone="13199688381"),
        _doctor("c3", "张伟", hospital="南京鼓楼医院", city="南京", phone="13199688999"),
        _doctor("q3", "Dr. Zhang", phone="13199688999"),
    ]
    res = resolve_records(pd.DataFrame(recs))
    pid = dict(zip(res.clusters["record_id"], res.clusters["person_id"], strict=True))
    assert pid["c1"] == pid["q1"] and pid["c2"] == pid["q2"] and pid["c3"] == pid["q3"]


def test_two_different_full_names_on_one_phone_are_not_linked():
    recs = [
        _doctor("a", "张伟", hospital="北京协和医院", city="北京", phone="13800138000"),
        _doctor("b", "李娜", hospital="北京协和医院", city="北京", phone="13800138000"),
    ]
    res = resolve_records(pd.DataFrame(recs))
    assert res.clusters["person_id"].nunique() == 2


def test_unionid_links_despite_a_nickname():
    recs = [
        _doctor("w", "qian40", city="深圳", wechat_unionid="oid3Rct4jb52Y_MoQb_Y9YZqpqUn"),
        _doctor("m", "张倩-北大深圳心内", wechat_unionid="oid3Rct4jb52Y_MoQb_Y9YZqpqUn"),
    ]
    res = resolve_records(pd.DataFrame(recs))
    assert res.clusters["person_id"].nunique() == 1


def test_explain_pair_shows_fields_and_decision(tmp_path):
    from rich.console import Console

    from medscrm.cli.identity import print_explanation
    from medscrm.identity.explain import explain_pair
    from medscrm.identity.model import MatchModel

    recs = [
        _doctor(f"r{i}", n, hospital=h, city="北京", phone=ph)
        for i, (n, h, ph) in enumerate(
            [
                ("王伟", "北京协和医院", "13800000001"),
                ("王伟", "协和医院", "13800000001"),
                ("李娜", "北京大学第一医院", "13800000002"),
                ("李娜", "北大医院", "13800000002"),
                ("张敏", "北京协和医院", "13800000003"),
                ("赵磊", "北京同仁医院", "13800000004"),
            ]
        )
    ]
    res = resolve_records(pd.DataFrame(recs))
    mdl = res.models["hcp"]
    mdl.save(tmp_path / "m.json")
    mdl = MatchModel.load(tmp_path / "m.json")
    _l, _r, exp, shared = explain_pair(recs[0], recs[1], mdl)
    assert shared == ["phone"] and {f.comparison for f in exp.fields} >= {"name", "hospital", "phone"}
    console = Console(record=True, width=160)
    print_explanation("r0", "r1", recs[0], recs[1], mdl, console=console)
    out = console.export_text()
    assert "total" in out and "probability" in out and "decision" in out and "hospital" in out
