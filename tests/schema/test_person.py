"""Tests for the standard person schema (medscrm.schema.person)."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.schema import (
    IDENTIFYING_FIELDS,
    STANDARD_FIELDS,
    FieldIssue,
    FieldValueError,
    NormalizeResult,
    department_info,
    normalize_city,
    normalize_department,
    normalize_email,
    normalize_gender,
    normalize_hospital,
    normalize_license_no,
    normalize_name,
    normalize_person_type,
    normalize_phone,
    normalize_province,
    normalize_record,
    normalize_text,
    normalize_title,
    normalize_unionid,
    normalize_wecom_external_userid,
    parse_title,
    province_info,
    to_simplified,
)
from medscrm.schema.person import _PROVINCES


def fullwidth(s: str) -> str:
    """ASCII → full-width forms (space → U+3000)."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def raises_code(fn, value, code: str) -> FieldValueError:
    with pytest.raises(FieldValueError) as ei:
        fn(value)
    assert ei.value.code == code, ei.value
    return ei.value


# ------------------------------------------------------------------------------------ constants


def test_field_constants():
    assert STANDARD_FIELDS == (
        "person_type",
        "name",
        "gender",
        "hospital",
        "department",
        "title",
        "city",
        "province",
        "phone",
        "email",
        "license_no",
        "wechat_unionid",
        "wecom_external_userid",
    )
    assert IDENTIFYING_FIELDS == (
        "name",
        "phone",
        "email",
        "license_no",
        "wechat_unionid",
        "wecom_external_userid",
    )
    assert set(IDENTIFYING_FIELDS) <= set(STANDARD_FIELDS)


def test_field_issue_is_frozen():
    issue = FieldIssue("phone", "bad", "1", "invalid_phone")
    with pytest.raises(AttributeError):
        issue.code = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------------------ empties


@pytest.mark.parametrize(
    "fn",
    [
        normalize_phone,
        normalize_email,
        normalize_name,
        normalize_text,
        normalize_license_no,
        normalize_gender,
        normalize_person_type,
        normalize_title,
        normalize_department,
        normalize_hospital,
        normalize_city,
        normalize_province,
        normalize_unionid,
        normalize_wecom_external_userid,
    ],
)
@pytest.mark.parametrize("empty", [None, "", "   ", "\u3000\t\n", float("nan")])
def test_empty_is_none(fn, empty):
    assert fn(empty) is None


# ------------------------------------------------------------------------------------ text


def test_normalize_text():
    assert normalize_text("  Ｈｅｌｌｏ　　ｗｏｒｌｄ  ") == "Hello world"
    assert normalize_text("a\u200bb") == "ab"  # zero-width space removed
    assert normalize_text(12) == "12"
    assert normalize_text(12.0) == "12"
    assert normalize_text(1.5) == "1.5"
    assert normalize_text("x" * 200) == "x" * 200
    err = raises_code(normalize_text, "x" * 201, "too_long")
    assert "200" in err.reason


def test_wrong_type():
    raises_code(normalize_text, ["a"], "wrong_type")
    raises_code(normalize_phone, True, "wrong_type")
    raises_code(normalize_name, {"a": 1}, "wrong_type")


def test_to_simplified():
    assert to_simplified("北京協和醫院") == "北京协和医院"
    assert to_simplified("Peking Union") == "Peking Union"
    assert to_simplified("呼吸與危重症醫學科") == "呼吸与危重症医学科"


# ------------------------------------------------------------------------------------ phone

MOBILE = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "0086 138 0013 8000",
        "008613800138000",
        "86-13800138000",
        "(+86)13800138000",
        "(+86) 138-0013-8000",
        "１３８ ００１３ ８０００",
        "＋８６ １３８００１３８０００",
        " 13800138000 ",
        13800138000,
        13800138000.0,
    ],
)
def test_phone_mobile_forms(raw):
    assert normalize_phone(raw) == MOBILE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "+861012345678"),
        ("(021)12345678", "+862112345678"),
        ("021 1234 5678", "+862112345678"),
        ("0755-12345678", "+8675512345678"),
        ("0931-1234567", "+869311234567"),  # 7-digit local number (Lanzhou)
        ("+86 10 12345678", "+861012345678"),
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0016502530000", "+16502530000"),  # 00 = international prefix from China
    ],
)
def test_phone_landline_and_foreign(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "1381234",
        "12345678901",  # 12x is not a mobile prefix
        "13800138000-123",  # trailing extension
        "13800138000 ext 12",
        "13800138000转8001",
        "010-12345678 ext 5",
        "138ABCD1234",  # vanity letters are not accepted
        "phone: n/a",
        "+1 650 253",
        "1.38001E+10",  # Excel scientific notation lost the digits
        "12345678",  # landline without area code
    ],
)
def test_phone_invalid(raw):
    err = raises_code(normalize_phone, raw, "invalid_phone")
    assert err.field == "phone"
    assert err.value == str(raw)


def test_phone_invalid_reason_is_readable():
    err = raises_code(normalize_phone, "1381234", "invalid_phone")
    assert err.reason == "not a valid mainland China mobile or landline number: '1381234'"
    err = raises_code(normalize_phone, "13800138000 ext 12", "invalid_phone")
    assert "extension" in err.reason


_MOBILE_FORMATS = [
    "{p}",
    "{a} {b} {c}",
    "{a}-{b}-{c}",
    "+86 {p}",
    "+86{p}",
    "+86 {a} {b} {c}",
    "0086{p}",
    "0086 {a} {b} {c}",
    "86-{p}",
    "86{p}",
    "(+86){p}",
    "(+86) {a}-{b}-{c}",
    "  {p}\t",
]


@given(
    prefix=st.sampled_from("3456789"),
    rest=st.text(alphabet=string.digits, min_size=9, max_size=9),
    fmt=st.sampled_from(_MOBILE_FORMATS),
    wide=st.booleans(),
)
def test_property_any_mobile_format_same_e164(prefix, rest, fmt, wide):
    p = "1" + prefix + rest
    raw = fmt.format(p=p, a=p[:3], b=p[3:7], c=p[7:])
    if wide:
        raw = fullwidth(raw)
    assert normalize_phone(raw) == "+86" + p
    assert normalize_phone(int(p)) == "+86" + p
    assert normalize_phone(float(p)) == "+86" + p


@given(st.one_of(st.text(max_size=30), st.text(alphabet=string.digits + " +-()", max_size=20)))
def test_property_phone_idempotent(raw):
    try:
        once = normalize_phone(raw)
    except FieldValueError:
        return
    if once is not None:
        assert normalize_phone(once) == once
        assert once.startswith("+")


# ------------------------------------------------------------------------------------ email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zhang.Wei@Example.COM", "zhang.wei@example.com"),
        ("  zhangwei@qq.com ", "zhangwei@qq.com"),
        ("zhangwei＠qq.com", "zhangwei@qq.com"),
        ("zhangwei@qq。com", "zhangwei@qq.com"),
        ("ｚｈａｎｇｗｅｉ＠ｑｑ．ｃｏｍ", "zhangwei@qq.com"),
        ("first.last+tag@mail.pumch.cn", "first.last+tag@mail.pumch.cn"),
        ("a_b-c@sub-domain.hospital.org.cn", "a_b-c@sub-domain.hospital.org.cn"),
    ],
)
def test_email_valid(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "zhangwei",
        "zhangwei@",
        "@qq.com",
        "zhang wei@qq.com",
        "zhang@wei@qq.com",
        "zhangwei@qq",
        "zhangwei@qq..com",
        ".zhang@qq.com",
        "zhang.@qq.com",
        "zhang..wei@qq.com",
        "zhangwei@-qq.com",
        "张伟@qq.com",
        "x@" + "a" * 250 + ".com",
    ],
)
def test_email_invalid(raw):
    err = raises_code(normalize_email, raw, "invalid_email")
    assert err.field == "email"


@given(
    local=st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20),
    domain=st.text(alphabet=string.ascii_letters + string.digits + "-.", min_size=1, max_size=20),
    tld=st.text(alphabet=string.ascii_letters, min_size=2, max_size=6),
    wide=st.booleans(),
)
def test_property_email_idempotent_and_width(local, domain, tld, wide):
    raw = f"{local}@{domain}.{tld}"
    try:
        once = normalize_email(raw)
    except FieldValueError:
        with pytest.raises(FieldValueError):
            normalize_email(fullwidth(raw))
        return
    assert once == raw.lower()
    assert normalize_email(once) == once
    if wide:
        assert normalize_email(fullwidth(raw)) == once


# ------------------------------------------------------------------------------------ name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张伟", "张伟"),
        ("张  伟", "张伟"),
        ("张 伟", "张伟"),
        ("欧阳 娜娜", "欧阳娜娜"),
        ("\u3000张\u3000伟\u3000", "张伟"),
        ("張偉", "张伟"),
        ("歐陽娜娜", "欧阳娜娜"),
        ("蕭亞軒", "萧亚轩"),
        ("鍾南山", "钟南山"),
        ("Wei Zhang", "Wei Zhang"),
        ("ZHANG wei", "Zhang Wei"),
        ("wei   zhang", "Wei Zhang"),
        ("ＺＨＡＮＧ ＷＥＩ", "Zhang Wei"),
        ("张医生", "张医生"),  # honorifics are kept (identity module's job)
        ("(张伟)", "张伟"),
        ("张伟。", "张伟"),
        ("*张伟*", "张伟"),
        ("-Wei Zhang.", "Wei Zhang"),
        ("阿依古丽 • 买买提", "阿依古丽·买买提"),
        ("阿依古丽・买买提", "阿依古丽·买买提"),
        ("张 Wei", "张 Wei"),  # whitespace is only removed between two CJK characters
        ("13800138000", "13800138000"),
    ],
)
def test_name(raw, expected):
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("乾隆", "乾隆"),
        ("乾", "乾"),  # opencc alone would give 干
        ("乾明", "乾明"),
        ("於梨華", "於梨华"),  # surname 於 is not 于
        ("於", "於"),
        ("李昇", "李昇"),  # would become 升
        ("劉陞", "刘陞"),
    ],
)
def test_name_t2s_exceptions(raw, expected):
    assert normalize_name(raw) == expected


def test_name_too_long():
    assert normalize_name("张" * 64) == "张" * 64
    err = raises_code(normalize_name, "张" * 65, "too_long")
    assert err.field == "name"


def test_name_only_punctuation_is_empty():
    assert normalize_name("--") is None
    assert normalize_name("（ ）") is None


_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_NAMEISH = st.text(
    alphabet=st.one_of(_CJK, st.sampled_from(list(string.ascii_letters + " .·-'　")), st.characters()),
    max_size=20,
)


@given(_NAMEISH)
@settings(max_examples=300)
def test_property_name_idempotent(raw):
    try:
        once = normalize_name(raw)
    except FieldValueError:
        return
    if once is not None:
        assert normalize_name(once) == once


@given(st.lists(_CJK, min_size=2, max_size=4), st.lists(st.sampled_from([" ", "  ", "\u3000", "\t"])))
def test_property_name_no_whitespace_between_cjk(chars, spaces):
    raw = chars[0]
    for i, c in enumerate(chars[1:]):
        raw += (spaces[i] if i < len(spaces) else "") + c
    out = normalize_name(raw)
    assert out is not None
    assert not any(c.isspace() for c in out)


# ------------------------------------------------------------------------------------ license


def test_license_no():
    assert normalize_license_no("110110000000001") == "110110000000001"
    assert normalize_license_no(" 1101 1000 0000 001 ") == "110110000000001"
    assert normalize_license_no("11011-0000-000001") == "110110000000001"
    assert normalize_license_no("１１０１１０００００００００１") == "110110000000001"
    assert normalize_license_no(110110000000001) == "110110000000001"
    assert normalize_license_no(110110000000001.0) == "110110000000001"


@pytest.mark.parametrize("raw", ["11011000000001", "1101100000000011", "11011000000000A", "abc"])
def test_license_no_invalid(raw):
    err = raises_code(normalize_license_no, raw, "invalid_license_no")
    assert "15 digits" in err.reason
    assert "qualification" not in err.reason


def test_license_no_qualification_certificate_hint():
    err = raises_code(normalize_license_no, "2" * 24, "invalid_license_no")
    assert "15 digits" in err.reason
    assert "qualification certificate" in err.reason
    err = raises_code(normalize_license_no, "1" * 27, "invalid_license_no")
    assert "qualification certificate" in err.reason


# ------------------------------------------------------------------------------------ gender / type


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "M"),
        ("M", "M"),
        ("m", "M"),
        ("male", "M"),
        ("Male", "M"),
        ("1", "M"),
        (1, "M"),
        (1.0, "M"),
        ("先生", "M"),
        ("女", "F"),
        ("F", "F"),
        ("female", "F"),
        ("2", "F"),
        ("女士", "F"),
        ("ｆ", "F"),
        ("未知", "U"),
        ("unknown", "U"),
        ("U", "U"),
        ("0", "U"),
        (0, "U"),
    ],
)
def test_gender(raw, expected):
    assert normalize_gender(raw) == expected


@pytest.mark.parametrize("raw", ["X", "3", "男女", "other"])
def test_gender_invalid(raw):
    raises_code(normalize_gender, raw, "invalid_gender")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hcp", "hcp"),
        ("HCP", "hcp"),
        ("医生", "hcp"),
        ("doctor", "hcp"),
        ("医务人员", "hcp"),
        ("nurse", "hcp"),
        ("护士", "hcp"),
        ("pharmacist", "hcp"),
        ("药师", "hcp"),
        ("醫生", "hcp"),
        ("patient", "patient"),
        ("Patient", "patient"),
        ("患者", "patient"),
        ("病人", "patient"),
    ],
)
def test_person_type(raw, expected):
    assert normalize_person_type(raw) == expected


def test_person_type_invalid():
    raises_code(normalize_person_type, "rep", "invalid_person_type")


# ------------------------------------------------------------------------------------ title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("主任医师", "主任医师"),
        ("主任", "主任医师"),
        ("主任医生", "主任医师"),
        ("正主任医师", "主任医师"),
        ("主任醫師", "主任医师"),
        ("Chief Physician", "主任医师"),
        ("chief  physician", "主任医师"),
        ("副主任医师", "副主任医师"),
        ("副主任", "副主任医师"),
        ("副主任医生", "副主任医师"),
        ("副主任醫師", "副主任医师"),
        ("Associate Chief Physician", "副主任医师"),
        ("主治医师", "主治医师"),
        ("主治", "主治医师"),
        ("主治医生", "主治医师"),
        ("Attending", "主治医师"),
        ("住院医师", "住院医师"),
        ("住院医生", "住院医师"),
        ("住院医", "住院医师"),
        ("Resident", "住院医师"),
        ("医生", "医师"),
        ("医师", "医师"),
        ("主任护师", "主任护师"),
        ("副主任护师", "副主任护师"),
        ("主管护师", "主管护师"),
        ("护师", "护师"),
        ("护士", "护士"),
        ("主任药师", "主任药师"),
        ("副主任药师", "副主任药师"),
        ("主管药师", "主管药师"),
        ("药师", "药师"),
        ("药剂师", "药师"),
        (" 主任 医师 ", "主任医师"),
        ("高级工程师", "高级工程师"),  # unknown: kept as normalised text
        ("Senior  Consultant", "Senior Consultant"),
    ],
)
def test_title(raw, expected):
    assert normalize_title(raw) == expected


@pytest.mark.parametrize(
    ("raw", "title", "academic", "admin"),
    [
        ("主任医师/教授", "主任医师", "教授", None),
        ("主任医师，科主任", "主任医师", None, "科主任"),
        ("主任医师,教授,科主任", "主任医师", "教授", "科主任"),
        ("主任医师 教授", "主任医师", "教授", None),
        ("主任医师教授", "主任医师", "教授", None),
        ("主任医师(教授)", "主任医师", "教授", None),
        ("副主任医师、副教授、硕导", "副主任医师", "副教授、硕士生导师", None),
        ("主任医师/教授/博士生导师/副院长", "主任医师", "教授、博士生导师", "副院长"),
        ("Chief Physician / Professor", "主任医师", "教授", None),
        ("教授", None, "教授", None),
        ("科主任", None, None, "科主任"),
        ("护士长", None, None, "护士长"),
        ("主管护师/护士长", "主管护师", None, "护士长"),
    ],
)
def test_parse_title(raw, title, academic, admin):
    parts = parse_title(raw)
    assert (parts.title, parts.academic_title, parts.admin_role) == (title, academic, admin)
    assert normalize_title(raw) == title


def test_title_unknown_extra_kept():
    parts = parse_title("主任医师/二级")
    assert parts.title == "主任医师"
    assert parts.extra == "二级"


# ------------------------------------------------------------------------------------ department


@pytest.mark.parametrize(
    ("raw", "expected", "code"),
    [
        ("心内科", "心血管内科", "03.04"),
        ("心血管内科", "心血管内科", "03.04"),
        ("心血管科", "心血管内科", "03.04"),
        ("心脏内科", "心血管内科", "03.04"),
        ("心血管內科", "心血管内科", "03.04"),
        ("呼吸科", "呼吸内科", "03.01"),
        ("呼吸内科", "呼吸内科", "03.01"),
        ("呼吸与危重症医学科", "呼吸内科", "03.01"),
        ("呼吸與危重症醫學科", "呼吸内科", "03.01"),
        ("内分泌科", "内分泌科", "03.07"),
        ("内分泌代谢科", "内分泌科", "03.07"),
        ("内分泌", "内分泌科", "03.07"),
        ("肿瘤科", "肿瘤科", "19"),
        ("肿瘤内科", "肿瘤科", "19"),
        ("神经内科", "神经内科", "03.03"),
        ("神内", "神经内科", "03.03"),
        ("消化内科", "消化内科", "03.02"),
        ("消化科", "消化内科", "03.02"),
        ("胃肠内科", "消化内科", "03.02"),
        ("肾内科", "肾内科", "03.06"),
        ("肾脏内科", "肾内科", "03.06"),
        ("风湿免疫科", "风湿免疫科", "03.08"),
        ("儿科", "儿科", "07"),
        ("妇产科", "妇产科", "05"),
        ("普外科", "普通外科", "04.01"),
        ("普通外科", "普通外科", "04.01"),
        ("骨科", "骨科", "04.03"),
        ("眼科", "眼科", "10"),
        ("皮肤科", "皮肤科", "13"),
        ("急诊科", "急诊科", "20"),
        ("ICU", "重症医学科", "28"),
        ("icu", "重症医学科", "28"),
        ("ＩＣＵ", "重症医学科", "28"),
        ("重症医学科", "重症医学科", "28"),
        ("Cardiology", "心血管内科", "03.04"),
        ("心内科（二病区）", "心血管内科", "03.04"),
        ("心血管内科一病区", "心血管内科", "03.04"),
        ("心血管内科专业", "心血管内科", "03.04"),
        (" 心 内 科 ", "心血管内科", "03.04"),
    ],
)
def test_department(raw, expected, code):
    assert normalize_department(raw) == expected
    info = department_info(raw)
    assert info is not None
    assert info.name == expected
    assert info.code == code


def test_department_pharmacy_has_no_subject_code():
    assert normalize_department("药剂科") == "药剂科"
    assert normalize_department("药学部") == "药剂科"
    assert department_info("药剂科").code is None


def test_department_unknown_kept():
    assert normalize_department("  乳腺  甲状腺外科 ") == "乳腺甲状腺外科"
    assert department_info("乳腺甲状腺外科") is None


def test_department_dictionary_size():
    from medscrm.schema.person import _DEPARTMENTS

    assert len({info.name for info in _DEPARTMENTS.values()}) >= 40


# ------------------------------------------------------------------------------------ hospital


def test_hospital():
    assert normalize_hospital("北京協和醫院") == "北京协和医院"
    assert normalize_hospital("  北京 协和医院 ") == "北京协和医院"
    # campus notes are kept (alias resolution is the identity module's job)
    assert normalize_hospital("北京协和医院（西单院区）") == "北京协和医院(西单院区)"
    assert normalize_hospital("Peking  Union Medical College Hospital") == (
        "Peking Union Medical College Hospital"
    )
    raises_code(normalize_hospital, "医" * 201, "too_long")


# ------------------------------------------------------------------------------------ province / city


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("北京市", "北京"),
        ("北京", "北京"),
        ("广东省", "广东"),
        ("廣東省", "广东"),
        ("广西壮族自治区", "广西"),
        ("内蒙古自治区", "内蒙古"),
        ("新疆维吾尔自治区", "新疆"),
        ("宁夏回族自治区", "宁夏"),
        ("西藏自治区", "西藏"),
        ("香港特别行政区", "香港"),
        ("澳门特别行政区", "澳门"),
        ("台湾省", "台湾"),
        ("重庆市", "重庆"),
        ("Guangdong", "广东"),
        ("粤", "广东"),
        ("广东省广州市", "广东"),
        ("Atlantis", "Atlantis"),
    ],
)
def test_province(raw, expected):
    assert normalize_province(raw) == expected


def test_province_list_complete():
    infos = set(_PROVINCES.values())
    assert len(infos) == 34
    assert len({i.code for i in infos}) == 34
    info = province_info("广东省")
    assert info is not None
    assert (info.code, info.name, info.short) == ("440000", "广东省", "广东")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("上海市", "上海"),
        ("上海", "上海"),
        ("广州市", "广州"),
        ("廣州市", "广州"),
        ("杭州", "杭州"),
        ("延边朝鲜族自治州", "延边朝鲜族自治州"),
        ("锡林郭勒盟", "锡林郭勒盟"),
        ("阿里地区", "阿里地区"),
        ("广东省广州市", "广州"),
        ("沙市", "沙市"),  # two characters: 市 is part of the name
        ("shanghai", "Shanghai"),
    ],
)
def test_city(raw, expected):
    assert normalize_city(raw) == expected


# ------------------------------------------------------------------------------------ wx ids


def test_unionid():
    uid = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
    assert normalize_unionid(f"  {uid} ") == uid
    assert normalize_unionid(fullwidth(uid)) == uid
    raises_code(normalize_unionid, "abc", "invalid_unionid")
    raises_code(normalize_unionid, "o6_bmas dasd", "invalid_unionid")
    raises_code(normalize_unionid, "x" * 65, "invalid_unionid")
    raises_code(normalize_unionid, "o6_bmasd@sad", "invalid_unionid")


def test_wecom_external_userid():
    eid = "wmXXXXXXXXXXXXXXXXXXXXXXXXXXXX-_"
    assert normalize_wecom_external_userid(eid) == eid
    err = raises_code(normalize_wecom_external_userid, "wm 123", "invalid_wecom_external_userid")
    assert err.field == "wecom_external_userid"


# ------------------------------------------------------------------------------------ width property


@given(st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=40))
def test_property_fullwidth_text_normalises_to_ascii(s):
    assert normalize_text(fullwidth(s)) == normalize_text(s)


@given(st.text(max_size=60))
def test_property_text_idempotent(s):
    once = normalize_text(s, max_length=10_000)
    if once is not None:
        assert normalize_text(once, max_length=10_000) == once
        assert once == once.strip()
        assert "  " not in once


@given(st.text(max_size=30))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_property_lookup_fields_idempotent(s):
    for fn in (normalize_hospital, normalize_department, normalize_city, normalize_province, normalize_title):
        try:
            once = fn(s)
        except FieldValueError:
            continue
        if once is not None:
            assert fn(once) == once, fn.__name__


# ------------------------------------------------------------------------------------ record


def test_record_full():
    res = normalize_record(
        {
            "person_type": "医生",
            "name": "張  偉",
            "gender": "男",
            "hospital": "北京協和醫院",
            "department": "心内科",
            "title": "主任医师/教授，科主任",
            "city": "北京市",
            "province": "北京市",
            "phone": "138 0013 8000",
            "email": "Zhang.Wei＠PUMCH.cn",
            "license_no": 110110000000001.0,
            "wechat_unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL",
            "wecom_external_userid": None,
        }
    )
    assert isinstance(res, NormalizeResult)
    assert res.issues == []
    assert res.values == {
        "person_type": "hcp",
        "name": "张伟",
        "gender": "M",
        "hospital": "北京协和医院",
        "department": "心血管内科",
        "title": "主任医师",
        "city": "北京",
        "province": "北京",
        "phone": "+8613800138000",
        "email": "zhang.wei@pumch.cn",
        "license_no": "110110000000001",
        "wechat_unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL",
    }
    assert res.attributes == {"academic_title": "教授", "admin_role": "科主任"}


def test_record_empty_values_are_absent_and_default_person_type():
    res = normalize_record({"name": "李娜", "phone": "", "email": "  ", "gender": None, "city": float("nan")})
    assert res.issues == []
    assert res.values == {"name": "李娜", "person_type": "hcp"}


def test_record_default_person_type_param():
    res = normalize_record({"phone": "13800138000"}, default_person_type="patient")
    assert res.values["person_type"] == "patient"
    res = normalize_record({"phone": "13800138000", "person_type": "医生"}, default_person_type="patient")
    assert res.values["person_type"] == "hcp"


def test_record_no_identifying_field():
    res = normalize_record({"hospital": "北京协和医院", "department": "心内科", "phone": "  "})
    assert [(i.field, i.code) for i in res.issues] == [("name", "no_identifying_field")]
    res = normalize_record({})
    assert [i.code for i in res.issues] == ["no_identifying_field"]


def test_record_invalid_identifier_is_reported_once():
    res = normalize_record({"phone": "1381234", "hospital": "协和"})
    assert [(i.field, i.code, i.value) for i in res.issues] == [("phone", "invalid_phone", "1381234")]
    assert "phone" not in res.values
    assert res.values["hospital"] == "协和"


def test_record_collects_all_issues():
    res = normalize_record(
        {
            "name": "王芳",
            "phone": "12",
            "email": "not-an-email",
            "license_no": "123",
            "gender": "X",
            "person_type": "robot",
            "wechat_unionid": "a b",
            "wecom_external_userid": "!",
            "hospital": "医" * 300,
        }
    )
    codes = {i.field: i.code for i in res.issues}
    assert codes == {
        "phone": "invalid_phone",
        "email": "invalid_email",
        "license_no": "invalid_license_no",
        "gender": "invalid_gender",
        "person_type": "invalid_person_type",
        "wechat_unionid": "invalid_unionid",
        "wecom_external_userid": "invalid_wecom_external_userid",
        "hospital": "too_long",
    }
    assert res.values == {"name": "王芳"}  # no default person_type over an invalid one
    assert all(issue.reason for issue in res.issues)


def test_record_custom_typed_attributes():
    res = normalize_record(
        {"name": "张伟"},
        custom={
            "age": "42",
            "beds": 1200.0,
            "score": "4.5",
            "revenue": "1,234,567.5",
            "kol": "是",
            "active": "false",
            "since": "2020年1月5日",
            "visited": "2023/07/01",
            "born": dt.date(1980, 5, 17),
            "signed": dt.datetime(2024, 1, 2, 10, 30),
            "compact": "20240105",
            "note": "  ｈｅｌｌｏ　world ",
            "free": 7,
            "empty": "",
        },
        custom_types={
            "age": "int",
            "beds": "int",
            "score": "float",
            "revenue": "float",
            "kol": "bool",
            "active": "bool",
            "since": "date",
            "visited": "date",
            "born": "date",
            "signed": "date",
            "compact": "date",
            "note": "string",
            "empty": "int",
            "unused": "int",
        },
    )
    assert res.issues == []
    assert res.attributes == {
        "age": 42,
        "beds": 1200,
        "score": 4.5,
        "revenue": 1234567.5,
        "kol": True,
        "active": False,
        "since": "2020-01-05",
        "visited": "2023-07-01",
        "born": "1980-05-17",
        "signed": "2024-01-02",
        "compact": "2024-01-05",
        "note": "hello world",
        "free": 7,
    }
    assert type(res.attributes["age"]) is int
    assert type(res.attributes["score"]) is float


@pytest.mark.parametrize(
    ("typ", "raw"),
    [
        ("int", "abc"),
        ("int", "4.5"),
        ("int", True),
        ("float", "4,5x"),
        ("float", "nan"),
        ("bool", "maybe"),
        ("bool", 7),
        ("date", "2020-02-30"),
        ("date", "yesterday"),
        ("date", 3.5),
    ],
)
def test_record_custom_wrong_type(typ, raw):
    res = normalize_record({"name": "张伟"}, custom={"attr": raw}, custom_types={"attr": typ})
    assert len(res.issues) == 1
    issue = res.issues[0]
    assert (issue.field, issue.code) == ("attr", "wrong_type")
    assert typ in issue.reason
    assert "attr" not in res.attributes


def test_record_unknown_custom_type_is_a_config_error():
    with pytest.raises(ValueError, match="unknown custom attribute type"):
        normalize_record({"name": "张伟"}, custom={"a": "1"}, custom_types={"a": "decimal"})


def test_record_explicit_custom_attribute_wins_over_title_split():
    res = normalize_record({"name": "张伟", "title": "主任医师/教授"}, custom={"academic_title": "讲座教授"})
    assert res.attributes["academic_title"] == "讲座教授"


def test_record_unknown_mapped_key_kept_as_attribute():
    res = normalize_record({"name": "张伟", "extra_col": " Ｘ "})
    assert res.issues == []
    assert res.attributes == {"extra_col": "X"}
    assert "extra_col" not in res.values


def test_record_excel_numbers():
    res = normalize_record({"phone": 13800138000.0, "license_no": 110110000000001, "gender": 2.0})
    assert res.issues == []
    assert res.values["phone"] == "+8613800138000"
    assert res.values["license_no"] == "110110000000001"
    assert res.values["gender"] == "F"


def test_record_values_are_strings():
    res = normalize_record({"name": "张伟", "phone": 13800138000, "gender": 1, "license_no": 110110000000001})
    assert all(type(v) is str for v in res.values.values())


_raw_value = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(alphabet="0123456789 +-()", max_size=20),
)


@given(
    mapped=st.dictionaries(st.sampled_from(STANDARD_FIELDS), _raw_value),
    custom=st.dictionaries(st.text(max_size=8), _raw_value, max_size=4),
    types=st.lists(st.sampled_from(["string", "int", "float", "bool", "date"]), max_size=4),
)
@settings(max_examples=300)
def test_property_record_never_raises(mapped, custom, types):
    custom_types = dict(zip(custom, types, strict=False))
    res = normalize_record(mapped, custom=custom, custom_types=custom_types)
    assert isinstance(res, NormalizeResult)
    assert set(res.values) <= set(STANDARD_FIELDS)
    for issue in res.issues:
        assert isinstance(issue, FieldIssue)
        assert issue.code and issue.reason
    if not res.issues:
        assert any(f in res.values for f in IDENTIFYING_FIELDS)
        assert res.values["person_type"] in ("hcp", "patient")


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=30)))
def test_property_record_never_raises_arbitrary_keys(mapped):
    res = normalize_record(mapped)
    assert isinstance(res, NormalizeResult)


@given(st.dictionaries(st.sampled_from(STANDARD_FIELDS), st.text(max_size=30)))
@settings(max_examples=200)
def test_property_record_idempotent(mapped):
    res = normalize_record(mapped)
    again = normalize_record(dict(res.values))
    # accepted values are a fixed point (person_type may only be added as the default)
    assert {k: v for k, v in again.values.items() if k in res.values} == res.values
    assert set(again.values) - set(res.values) <= {"person_type"}
    assert {i.code for i in again.issues} <= {"no_identifying_field"}
