"""Reps' free-text remarks (WeCom 备注) fill a nickname contact's name / hospital / department."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.identity.features import build_features, parse_remark
from medscrm.identity.hospitals import HospitalIndex
from medscrm.identity.resolve import resolve_records


@pytest.fixture(scope="module")
def hidx():
    return HospitalIndex()


def test_remark_examples(hidx):
    r = parse_remark("协和 心内 张伟主任", hidx, "北京")
    assert r.name.full == "张伟" and not r.name.partial
    assert r.hospital.hospital_id == hidx.resolve("北京协和医院").hospital_id
    assert r.department == "心内"

    r = parse_remark("华西医院呼吸科李娜", hidx)
    assert r.name.full == "李娜"
    assert r.hospital.hospital_id == hidx.resolve("四川大学华西医院").hospital_id
    assert r.department == "呼吸科"

    r = parse_remark("瑞金 内分泌 王主任", hidx)  # 瑞金 → 瑞金医院; 王主任: surname only
    assert r.name.full is None and r.name.partial and r.name.surname == "王"
    assert r.hospital.hospital_id == hidx.resolve("瑞金医院").hospital_id
    assert r.department == "内分泌"


def test_remark_title_and_tail_name(hidx):
    assert parse_remark("华山医院孟梅青副主任护师", hidx).name.full == "孟梅青"
    assert parse_remark("冀医二院韩军主治医师", hidx).name.full == "韩军"
    assert parse_remark("张伟 13800138000", hidx).name.full == "张伟"


@pytest.mark.parametrize("text", ["协和 心内", "人民医院 内分泌", "主任好", "13800138000", "向日葵"])
def test_remark_without_name(hidx, text):
    assert parse_remark(text, hidx).name is None


def test_remark_city_ambiguous_hospital(hidx):
    # 协和 is 北京协和 / 武汉协和 / 福建协和: without a city no hospital (never a text id)
    assert parse_remark("协和 心内 张伟主任", hidx).hospital is None
    bj = parse_remark("协和 心内 张伟主任", hidx, "北京").hospital.hospital_id
    wh = parse_remark("协和 心内 张伟主任", hidx, "武汉").hospital.hospital_id
    assert bj and wh and bj != wh
    assert parse_remark("人民医院 心内 张伟", hidx).hospital is None


@pytest.mark.parametrize(
    "text", ["Dr. Wang, PUMCH cardiology", "wang wei MD", "", "   ", "!!", None, 42, "张伟的学生李娜"]
)
def test_remark_english_and_junk_ignored(hidx, text):
    r = parse_remark(text, hidx)
    assert r.name is None and r.hospital is None


def test_remark_fills_only_what_is_missing():
    df = pd.DataFrame(
        [
            {"record_id": "w1", "name": "静待花开", "remark": "北京协和医院 心内 张伟主任"},
            {"record_id": "w2", "name": "李娜", "hospital": "华山医院", "remark": "瑞金 内分泌 张伟主任"},
            {"record_id": "w3", "name": "Dr. Wang", "remark": "华西医院呼吸科王主任"},
            {"record_id": "w4", "name": "阳光", "remark": None},
        ]
    ).astype(object)
    f, rep = build_features(df)
    f = f.set_index("unique_id")
    assert f.at["w1", "name_full"] == "张伟" and f.at["w1", "name_from_remark"] == 1
    assert f.at["w1", "hospital_from_remark"] == 1 and f.at["w1", "dept_group"] is not None
    # a present full name and hospital are never overridden
    assert f.at["w2", "name_full"] == "李娜" and f.at["w2", "name_from_remark"] == 0
    assert f.at["w2", "hospital_id"] == HospitalIndex().resolve("华山医院").hospital_id
    assert f.at["w2", "hospital_from_remark"] == 0
    # a surname-only remark does not replace the record's own nickname; the hospital is filled
    assert f.at["w3", "surname_py"] == "wang" and f.at["w3", "name_from_remark"] == 0
    assert f.at["w3", "hospital_from_remark"] == 1
    assert f.at["w4", "name_py"] is None
    assert rep.names_from_remark == 1 and rep.hospitals_from_remark == 2


FILLER = [
    {"record_id": f"f{i}", "name": n, "hospital": h, "department": d, "phone": f"1390000{i:04d}", "city": c}
    for i, (n, h, d, c) in enumerate(
        itertools.product(
            ["王伟", "李娜", "刘洋", "陈静", "杨帆", "赵磊"],
            ["北京协和医院", "华山医院"],
            ["心内科", "呼吸科"],
            ["北京"],
        )
    )
]


def test_nickname_wecom_contact_links_through_remark():
    rows = [
        {
            "record_id": "crm:1",
            "name": "张志强",
            "hospital": "北京协和医院",
            "department": "心内科",
            "city": "北京",
            "phone": "13811112222",
        },
        {
            "record_id": "crm:2",
            "name": "周文斌",
            "hospital": "华山医院",
            "department": "呼吸科",
            "city": "上海",
        },
        # nickname contacts; the remark carries the real name + hospital (+ department)
        {
            "record_id": "wecom:a",
            "name": "静待花开",
            "phone": "138 1111 2222",  # the corroborating field
            "remark": "北京协和医院 心内 张志强主任",
        },
        # same name, other hospital: a namesake, stays apart
        {"record_id": "wecom:b", "name": "岁月静好", "remark": "华山医院 心内 张志强主任"},
    ]
    res = resolve_records(rows + FILLER)
    p = dict(zip(res.clusters["record_id"], res.clusters["person_id"], strict=True))
    assert p["wecom:a"] == p["crm:1"]
    assert p["wecom:b"] != p["crm:1"]
    assert p["wecom:b"] != p["wecom:a"]
    f = res.features.set_index("unique_id")
    assert f.at["wecom:a", "name_full"] == "张志强" and f.at["wecom:a", "name_from_remark"] == 1
    assert f.at["wecom:b", "hospital_id"] != f.at["crm:1", "hospital_id"]


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.sampled_from(["{}", "{0}-{1}-{2}", "{0} {1} {2}", "+86 {}", "86-{}"]),
    st.text(alphabet="张伟李娜协和心内主任医生 ，（）", max_size=8),
)
@settings(deadline=None, max_examples=60)
def test_remark_mobile_fills_a_missing_phone(mobile, fmt, around):
    text = fmt.format(mobile[:3], mobile[3:7], mobile[7:]) if "{0}" in fmt else fmt.format(mobile)
    df = pd.DataFrame([{"record_id": "r1", "name": "小鱼", "remark": f"{around}{text}{around}"}])
    feats, rep = build_features(df.astype(object))
    assert feats["phone"].iat[0] == "+86" + mobile
    assert rep.phones_from_remark == 1


def test_remark_mobile_never_overrides_and_needs_one_number():
    df = pd.DataFrame(
        [
            {"record_id": "a", "phone": "13700137000", "remark": "李娜 13800138000"},
            {"record_id": "b", "remark": "张伟 13800138000 / 13900139000"},
            {"record_id": "c", "remark": "工号 213800138000"},
        ]
    )
    feats, rep = build_features(df.astype(object))
    assert feats["phone"].tolist() == ["+8613700137000", None, None]
    assert rep.phones_from_remark == 0


def test_display_name_with_hospital_and_department_fills_what_is_missing():
    df = pd.DataFrame(
        [
            {"record_id": "a", "name": "张伟-协和心内", "city": "北京"},
            {"record_id": "b", "name": "李娜（华西呼吸）"},
            {"record_id": "c", "name": "王芳-瑞金内分泌", "hospital": "仁济医院", "department": "眼科"},
            {"record_id": "d", "name": "向日葵-阳光明媚"},
        ]
    )
    feats, rep = build_features(df.astype(object))
    f = feats.set_index("unique_id")
    assert f.loc["a", "name_full"] == "张伟" and f.loc["a", "hospital_id"] == "H0001"
    assert f.loc["a", "department"] == "心血管内科"
    assert f.loc["b", "hospital_id"] == "H0062" and f.loc["b", "city"] == "成都"
    # the record's own hospital and department are never overridden
    assert f.loc["c", "department"] == "眼科" and f.loc["c", "hospital_id"] != "H0025"
    assert f.loc["d", "hospital_id"] is None
    assert rep.hospitals_from_remark == 2
