"""The standard person schema: field-level normalisation and validation of person records.

Every source record is mapped onto :data:`STANDARD_FIELDS` (plus free custom attributes) and then
passed through :func:`normalize_record`, which returns normalised values and a list of
:class:`FieldIssue` (an empty list means the record is accepted).

Rules common to every field: values that are ``None``, NaN, empty or whitespace-only are simply
absent; strings are NFKC-normalised (full-width → half-width), zero-width characters are removed,
leading/trailing whitespace is stripped and internal whitespace collapsed to one space. Excel
numbers are accepted (``13800138000.0`` → ``"13800138000"``).

Traditional → simplified policy (:func:`to_simplified`): OpenCC ``t2s`` is applied only to text
that contains CJK characters. For person *names* the characters in :data:`NAME_T2S_EXCEPTIONS`
are kept as written, because in names they are (almost always) distinct characters rather than
traditional forms: 乾 (qián, surname/given name; t2s would turn it into 干), 於 (the surname Yū,
distinct from 于), and 昇/陞 (standard characters for names in the 2013 通用规范汉字表; t2s would
turn them into 升). Everything else in a name is converted (張偉 → 张伟, 蕭 → 萧, 鍾 → 钟).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from numbers import Integral, Real
from typing import Any, NamedTuple

import opencc
import phonenumbers
import yaml

__all__ = [
    "department_forms",
    "STANDARD_FIELDS",
    "IDENTIFYING_FIELDS",
    "CUSTOM_TYPES",
    "NAME_T2S_EXCEPTIONS",
    "MAX_TEXT_LENGTH",
    "MAX_NAME_LENGTH",
    "FieldIssue",
    "FieldValueError",
    "NormalizeResult",
    "TitleParts",
    "DepartmentInfo",
    "ProvinceInfo",
    "normalize_record",
    "normalize_text",
    "normalize_phone",
    "normalize_email",
    "normalize_name",
    "normalize_license_no",
    "normalize_gender",
    "normalize_person_type",
    "normalize_title",
    "parse_title",
    "normalize_department",
    "department_info",
    "normalize_hospital",
    "normalize_city",
    "normalize_province",
    "province_info",
    "normalize_unionid",
    "normalize_wecom_external_userid",
    "to_simplified",
]

STANDARD_FIELDS: tuple[str, ...] = (
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
IDENTIFYING_FIELDS: tuple[str, ...] = (
    "name",
    "phone",
    "email",
    "license_no",
    "wechat_unionid",
    "wecom_external_userid",
)
#: The types a custom attribute may declare (``custom_types`` of :func:`normalize_record`).
CUSTOM_TYPES: tuple[str, ...] = ("string", "int", "float", "bool", "date")
#: Characters that :func:`normalize_name` does not convert traditional → simplified.
NAME_T2S_EXCEPTIONS: frozenset[str] = frozenset("乾於昇陞")

MAX_TEXT_LENGTH = 200
MAX_NAME_LENGTH = 64
MAX_EMAIL_LENGTH = 254
#: Untyped / "string" custom attributes may be longer than standard text fields.
MAX_ATTRIBUTE_LENGTH = 1000


# --------------------------------------------------------------------------------------------
# result types


@dataclass(frozen=True)
class FieldIssue:
    field: str  # the standard field name (or custom attribute name)
    reason: str  # English, human readable
    value: str | None  # the raw value that failed
    code: str  # machine code, e.g. "invalid_phone"


@dataclass
class NormalizeResult:
    values: dict[str, object] = field(default_factory=dict)
    attributes: dict[str, object] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


class FieldValueError(ValueError):
    """A field value that cannot be normalised."""

    def __init__(self, field: str, code: str, reason: str, value: object = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.code = code
        self.reason = reason
        self.value = None if value is None else str(value)

    def to_issue(self) -> FieldIssue:
        return FieldIssue(field=self.field, reason=self.reason, value=self.value, code=self.code)


# --------------------------------------------------------------------------------------------
# text primitives

_CJK_CLASS = "\u2e80-\u2fdf\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RE = re.compile(f"[{_CJK_CLASS}]")
_CJK_GAP_RE = re.compile(f"(?<=[{_CJK_CLASS}])\\s+(?=[{_CJK_CLASS}])")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")


def _clean(s: str) -> str:
    """NFKC, drop zero-width characters, strip, collapse whitespace (the generic text rule)."""
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s.translate(_ZERO_WIDTH))
    return " ".join(s.split())


def _too_long(field_name: str, s: str, limit: int, raw: object) -> FieldValueError:
    return FieldValueError(
        field_name, "too_long", f"longer than {limit} characters ({len(s)}): {s[:40]!r}...", raw
    )


def _coerce(field_name: str, raw: object) -> str | None:
    """Raw cell value → str (or None when empty). Numbers from Excel become their integer text."""
    if type(raw) is str:
        return raw
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise FieldValueError(field_name, "wrong_type", f"expected text, got a boolean: {raw!r}", raw)
    if isinstance(raw, Integral):
        return str(int(raw))
    if isinstance(raw, Real | Decimal):
        f = float(raw)
        if math.isnan(f):
            return None
        if math.isinf(f):
            raise FieldValueError(field_name, "wrong_type", f"expected text, got {raw!r}", raw)
        if f.is_integer() and abs(f) < 1e16:
            return str(int(f))
        return str(raw)
    if isinstance(raw, str):  # str subclasses
        return str(raw)
    raise FieldValueError(
        field_name, "wrong_type", f"expected text or a number, got {type(raw).__name__}: {raw!r}", raw
    )


_t2s_converter: Any = None


def _converter() -> Any:
    global _t2s_converter
    if _t2s_converter is None:
        _t2s_converter = opencc.OpenCC("t2s")
    return _t2s_converter


@lru_cache(maxsize=65536)
def _t2s(s: str) -> str:
    conv = _converter()
    out = conv.convert(s)
    # t2s is phrase based; make sure the result is a fixed point (idempotent normalisation)
    for _ in range(3):
        again = conv.convert(out)
        if again == out:
            break
        out = again
    return out


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s); text without CJK characters is returned as is."""
    if text.isascii() or not _CJK_RE.search(text):
        return text
    return _t2s(text)


_NAME_KEEP_SPLIT_RE = re.compile("([" + "".join(sorted(NAME_T2S_EXCEPTIONS)) + "])")


def _to_simplified_name(text: str) -> str:
    if text.isascii() or not _CJK_RE.search(text):
        return text
    if not any(c in NAME_T2S_EXCEPTIONS for c in text):
        return _t2s(text)
    parts = _NAME_KEEP_SPLIT_RE.split(text)
    return "".join(p if (i % 2 or not p) else _t2s(p) for i, p in enumerate(parts))


def _join_cjk(s: str) -> str:
    """Remove whitespace between two CJK characters ("张  伟" → "张伟")."""
    if s.isascii() or " " not in s:
        return s
    return _CJK_GAP_RE.sub("", s)


def _cjk_text(s: str) -> str:
    """Generic text + no spaces between CJK characters + simplified script."""
    return to_simplified(_join_cjk(_clean(s)))


def _lookup_key(s: str) -> str:
    """Dictionary key: NFKC, simplified, lower case, no whitespace at all."""
    return "".join(to_simplified(_clean(s)).lower().split())


def _ascii_title(s: str) -> str:
    return _LATIN_WORD_RE.sub(lambda m: m[0][0].upper() + m[0][1:].lower(), s)


# --------------------------------------------------------------------------------------------
# data dictionaries


def _load(name: str) -> Any:
    text = resources.files("medscrm.schema").joinpath("data", name).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader


class TitleParts(NamedTuple):
    title: str | None  # professional title (canonical if known)
    academic_title: str | None  # e.g. 教授 (several joined with "、")
    admin_role: str | None  # e.g. 科主任 (several joined with "、")
    extra: str | None  # unrecognised parts that came with a recognised professional title


class DepartmentInfo(NamedTuple):
    name: str
    code: str | None
    national_name: str | None


class ProvinceInfo(NamedTuple):
    code: str
    name: str
    short: str


def _build_title_tables() -> tuple[dict[str, tuple[str, str]], re.Pattern[str]]:
    data = _load("titles.yaml")
    table: dict[str, tuple[str, str]] = {}

    def add(kind: str, canonical: str, variants: list[str]) -> None:
        for v in [canonical, *variants]:
            table.setdefault(_lookup_key(str(v)), (kind, canonical))

    # professional first: its variants win over academic/admin ones on a clash
    for canonical, spec in data["professional"].items():
        add("professional", canonical, spec.get("variants") or [])
    for kind in ("academic", "admin"):
        for canonical, variants in data[kind].items():
            add(kind, canonical, variants or [])
    alternatives = sorted(table, key=len, reverse=True)
    token_re = re.compile("|".join(re.escape(a) for a in alternatives))
    return table, token_re


_TITLE_TABLE, _TITLE_TOKEN_RE = _build_title_tables()
_TITLE_SPLIT_RE = re.compile(r"\s*[/\\,;|+&()\[\]、，；｜【】〔〕<>]+\s*|\s+-\s+")


def _build_departments() -> dict[str, DepartmentInfo]:
    table: dict[str, DepartmentInfo] = {}
    for spec in _load("departments.yaml")["departments"]:
        code = spec.get("code")
        info = DepartmentInfo(spec["name"], None if code is None else str(code), spec.get("national_name"))
        names = [spec["name"], *(spec.get("variants") or [])]
        if info.national_name:
            names.append(info.national_name)
        for v in names:
            table.setdefault(_lookup_key(str(v)), info)
            table.setdefault(_lookup_key(str(v) + "专业"), info)
    return table


_DEPARTMENTS = _build_departments()
_DEPT_NOTE_RES = (
    re.compile(r"\([^()]*\)$"),
    re.compile(r"[0-9一二三四五六七八九十]+(?:病区|病房|区|组|科|部)$"),
    re.compile(r"(?:病区|病房|门诊|门诊部|住院部|专业组|专科)$"),
)


def _build_provinces() -> tuple[dict[str, ProvinceInfo], tuple[tuple[str, ProvinceInfo], ...]]:
    table: dict[str, ProvinceInfo] = {}
    prefixes: list[tuple[str, ProvinceInfo]] = []
    for spec in _load("regions.yaml")["provinces"]:
        info = ProvinceInfo(str(spec["code"]), spec["name"], spec["short"])
        for v in [spec["name"], spec["short"], *(spec.get("abbr") or []), *(spec.get("aliases") or [])]:
            table[_lookup_key(str(v))] = info
        prefixes.append((spec["name"], info))
    prefixes.sort(key=lambda p: len(p[0]), reverse=True)
    return table, tuple(prefixes)


_PROVINCES, _PROVINCE_PREFIXES = _build_provinces()


# --------------------------------------------------------------------------------------------
# field functions


def normalize_text(raw: object, *, field: str = "text", max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """Generic text: NFKC (full-width → half-width), strip, collapse whitespace; ≤ ``max_length``."""
    s = _coerce(field, raw)
    if s is None:
        return None
    s = _clean(s)
    if not s:
        return None
    if len(s) > max_length:
        raise _too_long(field, s, max_length, raw)
    return s


# --- phone ---

_PHONE_STRIP = str.maketrans("", "", " -().\t")
_MOBILE_RE = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")
_MOBILE_EXT_RE = re.compile(r"(?:\+86|0086|86)?1[3-9]\d{9}\d+")
_PHONE_ALLOWED_RE = re.compile(r"[\d\s+\-().]+")
_PHONE_EXT_MARK_RE = re.compile(r"(?i)(?:ext|x|转|分机|#|\*|,|;)")
_E164 = phonenumbers.PhoneNumberFormat.E164


def _invalid_phone(s: str, raw: object, detail: str = "") -> FieldValueError:
    reason = f"not a valid mainland China mobile or landline number: {s!r}"
    if detail:
        reason += f" ({detail})"
    return FieldValueError("phone", "invalid_phone", reason, raw)


def normalize_phone(raw: object) -> str | None:
    """Phone number → E.164 ("+8613800138000"). Mainland mobiles take a regex fast path."""
    s = _coerce("phone", raw)
    if s is None:
        return None
    m = _MOBILE_RE.fullmatch(s.translate(_PHONE_STRIP))
    if m:
        return "+86" + m.group(1)
    s = _clean(s)
    if not s:
        return None
    compact = s.translate(_PHONE_STRIP)
    m = _MOBILE_RE.fullmatch(compact)
    if m:
        return "+86" + m.group(1)
    if not _PHONE_ALLOWED_RE.fullmatch(s):
        if _PHONE_EXT_MARK_RE.search(s):
            raise _invalid_phone(s, raw, "extensions are not accepted")
        raise _invalid_phone(s, raw, "unexpected characters")
    if _MOBILE_EXT_RE.fullmatch(compact):
        raise _invalid_phone(s, raw, "a mobile number with trailing digits/extension")
    if len(compact) > 20:
        raise _invalid_phone(s, raw, "too many digits")
    try:
        num = phonenumbers.parse(s, "CN")
    except phonenumbers.NumberParseException as e:
        raise _invalid_phone(s, raw) from e
    if num.extension:
        raise _invalid_phone(s, raw, "extensions are not accepted")
    if not phonenumbers.is_valid_number(num):
        raise _invalid_phone(s, raw)
    return phonenumbers.format_number(num, _E164)


# --- email ---

_EMAIL_RE = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
)


def normalize_email(raw: object) -> str | None:
    """E-mail: NFKC ("＠" → "@", "。" → "."), strip, lower case, validated (local@domain.tld)."""
    s = _coerce("email", raw)
    if s is None:
        return None
    s = _clean(s)
    if not s:
        return None
    if not s.isascii():
        s = s.replace("。", ".")
    s = s.lower()
    if len(s) > MAX_EMAIL_LENGTH or not _EMAIL_RE.fullmatch(s):
        raise FieldValueError("email", "invalid_email", f"not a valid e-mail address: {s!r}", raw)
    return s


# --- name ---

_MIDDLE_DOTS = str.maketrans(dict.fromkeys("\u2022\u2027\u30fb\uff65\u2219\u22c5\u0387", "·"))
_NAME_DOT_RE = re.compile(r"\s*·\s*")


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ue000-\uf8ff]")


@lru_cache(maxsize=131072)
def _name(s: str) -> str:
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s.translate(_ZERO_WIDTH)).translate(_MIDDLE_DOTS)
        s = _UNPRINTABLE.sub(" ", s)  # lone surrogates, controls, private use: never part of a name
    s = " ".join(s.split())
    # strip leading/trailing punctuation and symbols (and whitespace exposed by that)
    start, end = 0, len(s)
    while start < end and (s[start].isspace() or unicodedata.category(s[start])[0] in "PSZCM"):
        start += 1
    while end > start and (s[end - 1].isspace() or unicodedata.category(s[end - 1])[0] in "PSZCM"):
        end -= 1
    s = s[start:end]
    if not s or not any(ch.isalnum() for ch in s):  # emoji-only nicknames are not names
        return ""
    if s.isascii():
        return _ascii_title(s)
    if "·" in s:
        s = _NAME_DOT_RE.sub("·", s)
    s = _join_cjk(s)
    s = _to_simplified_name(s)
    return _ascii_title(s)


def normalize_name(raw: object) -> str | None:
    """Person name: NFKC, no whitespace between CJK characters, simplified script (see
    :data:`NAME_T2S_EXCEPTIONS`), Latin words title-cased, edge punctuation stripped; ≤ 64 chars."""
    s = _coerce("name", raw)
    return None if s is None else _name_s(s)


def _name_s(s: str) -> str | None:
    out = _name(s)
    if not out:
        return None
    if len(out) > MAX_NAME_LENGTH:
        raise _too_long("name", out, MAX_NAME_LENGTH, s)
    return out


# --- license no ---

_LICENSE_STRIP = str.maketrans("", "", " -_")
_DIGITS_RE = re.compile(r"\d+")


def normalize_license_no(raw: object) -> str | None:
    """执业证书编码: exactly 15 digits (spaces/hyphens removed)."""
    s = _coerce("license_no", raw)
    if s is None:
        return None
    s = _clean(s).translate(_LICENSE_STRIP)
    if not s:
        return None
    if len(s) == 15 and s.isascii() and s.isdigit():
        return s
    reason = f"a practice certificate number (执业证书编码) must be exactly 15 digits: {s!r}"
    if _DIGITS_RE.fullmatch(s) and s.isascii() and 24 <= len(s) <= 27:
        reason += f" ({len(s)} digits looks like a qualification certificate number (资格证书编码) instead)"
    raise FieldValueError("license_no", "invalid_license_no", reason, raw)


# --- low-cardinality lookups ---

_GENDERS = {
    "M": ("男", "男性", "男士", "先生", "m", "male", "man", "1"),
    "F": ("女", "女性", "女士", "小姐", "f", "female", "woman", "2"),
    "U": ("未知", "不详", "保密", "unknown", "u", "0", "n/a"),
}
_GENDER_TABLE = {v: k for k, vs in _GENDERS.items() for v in vs}

_PERSON_TYPES = {
    "hcp": (
        "hcp",
        "医生",
        "医师",
        "doctor",
        "physician",
        "医务人员",
        "医护人员",
        "医疗专业人士",
        "nurse",
        "护士",
        "pharmacist",
        "药师",
        "药剂师",
    ),
    "patient": ("patient", "患者", "病人", "病患"),
}
_PERSON_TYPE_TABLE = {v: k for k, vs in _PERSON_TYPES.items() for v in vs}


@lru_cache(maxsize=1024)
def _gender(s: str) -> str | None:
    key = _lookup_key(s)
    if not key:
        return None
    g = _GENDER_TABLE.get(key)
    if g is None:
        raise FieldValueError("gender", "invalid_gender", f"not a recognised gender: {_clean(s)!r}", s)
    return g


def normalize_gender(raw: object) -> str | None:
    """男/M/male/1/先生 → "M"; 女/F/female/2/女士 → "F"; 未知/unknown/U/0 → "U"."""
    s = _coerce("gender", raw)
    return None if s is None else _gender(s)


@lru_cache(maxsize=1024)
def _person_type(s: str) -> str | None:
    key = _lookup_key(s)
    if not key:
        return None
    t = _PERSON_TYPE_TABLE.get(key)
    if t is None:
        raise FieldValueError(
            "person_type",
            "invalid_person_type",
            f"not a recognised person type (hcp or patient): {_clean(s)!r}",
            s,
        )
    return t


def normalize_person_type(raw: object) -> str | None:
    """hcp/医生/doctor/nurse/药师... → "hcp"; patient/患者/病人 → "patient"."""
    s = _coerce("person_type", raw)
    return None if s is None else _person_type(s)


# --- title ---


def _title_tokens(part: str) -> list[tuple[str, str]] | None:
    """Split a separator-free part into known title tokens, or None if not fully covered."""
    key = "".join(part.lower().split())
    hit = _TITLE_TABLE.get(key)
    if hit is not None:
        return [hit]
    tokens = _TITLE_TOKEN_RE.findall(key)
    if not tokens or sum(map(len, tokens)) != len(key):
        return None
    return [_TITLE_TABLE[t] for t in tokens]


@lru_cache(maxsize=4096)
def _parse_title(s: str) -> TitleParts:
    text = _cjk_text(s)
    if not text:
        return TitleParts(None, None, None, None)
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_long("title", text, MAX_TEXT_LENGTH, s)
    professional: list[str] = []
    academic: list[str] = []
    admin: list[str] = []
    unknown: list[str] = []
    buckets = {"professional": professional, "academic": academic, "admin": admin}
    for part in _TITLE_SPLIT_RE.split(text):
        part = part.strip(" .:-_")
        if not part:
            continue
        tokens = _title_tokens(part)
        if tokens is None:
            if part not in unknown:
                unknown.append(part)
            continue
        for kind, canonical in tokens:
            bucket = buckets[kind]
            if canonical not in bucket:
                bucket.append(canonical)
    if professional:
        title: str | None = professional[0]
        extra = [*professional[1:], *unknown]
    else:
        title = "、".join(unknown) if unknown else None
        extra = []
    if not (professional or academic or admin):
        title = text  # nothing recognised: keep the normalised text as is
    return TitleParts(
        title,
        "、".join(academic) or None,
        "、".join(admin) or None,
        "、".join(extra) or None,
    )


def parse_title(raw: object) -> TitleParts:
    """Split a raw title into professional title, academic title, admin role and the rest.

    "主任医师/教授" → ("主任医师", "教授", None, None); "主任医师，科主任" → ("主任医师", None, "科主任",
    None); "教授" → (None, "教授", None, None). Unknown titles are kept as normalised text.
    """
    s = _coerce("title", raw)
    if s is None:
        return TitleParts(None, None, None, None)
    return _parse_title(s)


def normalize_title(raw: object) -> str | None:
    """The canonical professional title (主任医师, 副主任医师, 主治医师, 住院医师, 医师, nurse,
    pharmacist and technician ladders). Academic titles/admin roles are not professional titles:
    "主任医师/教授" → "主任医师", and "教授" alone → None (see :func:`parse_title`)."""
    return parse_title(raw).title


# --- department ---


@lru_cache(maxsize=4096)
def _department(s: str) -> tuple[str | None, DepartmentInfo | None]:
    text = _cjk_text(s)
    if not text:
        return None, None
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_long("department", text, MAX_TEXT_LENGTH, s)
    key = "".join(text.lower().split())
    info = _DEPARTMENTS.get(key)
    if info is None:
        stripped = key
        for _ in range(3):
            before = stripped
            for rx in _DEPT_NOTE_RES:
                stripped = rx.sub("", stripped)
            info = _DEPARTMENTS.get(stripped)
            if info is not None or stripped == before or not stripped:
                break
    if info is not None:
        return info.name, info
    return text, None


def normalize_department(raw: object) -> str | None:
    """Canonical clinical department name (心内科/心血管科 → 心血管内科); unknown ones are kept as
    normalised text."""
    s = _coerce("department", raw)
    if s is None:
        return None
    return _department(s)[0]


def department_info(raw: object) -> DepartmentInfo | None:
    """The canonical department with its national clinical-subject code, or None if unknown."""
    s = _coerce("department", raw)
    if s is None:
        return None
    return _department(s)[1]


@lru_cache(maxsize=1)
def _department_forms() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for spec in _load("departments.yaml")["departments"]:
        canonical = spec["name"]
        forms = out.setdefault(canonical, [canonical])
        for v in [*(spec.get("variants") or []), spec.get("national_name")]:
            if v and _department(str(v))[0] == canonical and str(v) not in forms:
                forms.append(str(v))
    return {k: tuple(v) for k, v in out.items()}


def department_forms(raw: object) -> tuple[str, tuple[str, ...]] | None:
    """The canonical department that ``raw`` names with every spelling the dictionary has for it
    (canonical first: 心内科 → 心血管内科, (心血管内科, 心内科, 心内, …)); None if ``raw`` is unknown."""
    try:
        info = department_info(raw)
    except FieldValueError:
        return None
    if info is None:
        return None
    return info.name, _department_forms().get(info.name, (info.name,))


# --- hospital ---


@lru_cache(maxsize=65536)
def _hospital(s: str) -> str | None:
    text = _cjk_text(s)
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_long("hospital", text, MAX_TEXT_LENGTH, s)
    return text or None


def normalize_hospital(raw: object) -> str | None:
    """Hospital name: width/whitespace/script normalisation only (aliases are resolved elsewhere)."""
    s = _coerce("hospital", raw)
    return None if s is None else _hospital(s)


# --- province / city ---


def _province_lookup(text: str) -> ProvinceInfo | None:
    info = _PROVINCES.get("".join(text.lower().split()))
    if info is None:
        for prefix, p in _PROVINCE_PREFIXES:
            if text.startswith(prefix):
                return p
    return info


@lru_cache(maxsize=4096)
def _province(s: str) -> tuple[str, ProvinceInfo | None]:
    text = _cjk_text(s)
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_long("province", text, MAX_TEXT_LENGTH, s)
    info = _province_lookup(text) if text else None
    if info is not None:
        return info.short, info
    return (_ascii_title(text) if text.isascii() else text), None


def normalize_province(raw: object) -> str | None:
    """Province short name: 北京市 → 北京, 广东省 → 广东, 广西壮族自治区 → 广西, Guangdong → 广东."""
    s = _coerce("province", raw)
    if s is None:
        return None
    return _province(s)[0] or None


def province_info(raw: object) -> ProvinceInfo | None:
    """The provincial-level division (GB/T 2260 code, full name, short name), or None."""
    s = _coerce("province", raw)
    if s is None:
        return None
    return _province(s)[1]


@lru_cache(maxsize=8192)
def _city(s: str) -> str | None:
    text = _cjk_text(s)
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_long("city", text, MAX_TEXT_LENGTH, s)
    if not text:
        return None
    if text.isascii():
        return _ascii_title(text)
    # "广东省广州市" → "广州"; "北京市" → "北京"
    for prefix, _info in _PROVINCE_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix) and not prefix.endswith("市"):
            text = text[len(prefix) :]
            break
    if text.endswith("市") and len(text) >= 3:
        text = text[:-1]
    return text or None


def normalize_city(raw: object) -> str | None:
    """City: simplified, trailing 市 dropped (上海市 → 上海, 广州市 → 广州); 州/盟/地区 names kept."""
    s = _coerce("city", raw)
    return None if s is None else _city(s)


# --- WeChat / WeCom ids ---

_OPENID_RE = re.compile(r"[A-Za-z0-9_-]{6,64}")


def _wx_id(field_name: str, code: str, label: str, raw: object) -> str | None:
    s = _coerce(field_name, raw)
    if s is None:
        return None
    s = s.strip() if s.isascii() else _clean(s)
    if not s:
        return None
    if not _OPENID_RE.fullmatch(s):
        raise FieldValueError(
            field_name, code, f"not a valid {label} (6-64 characters of A-Z a-z 0-9 _ -): {s!r}", raw
        )
    return s


def normalize_unionid(raw: object) -> str | None:
    """WeChat unionid: [A-Za-z0-9_-]{6,64}."""
    return _wx_id("wechat_unionid", "invalid_unionid", "WeChat unionid", raw)


def normalize_wecom_external_userid(raw: object) -> str | None:
    """WeCom external_userid: [A-Za-z0-9_-]{6,64}."""
    return _wx_id("wecom_external_userid", "invalid_wecom_external_userid", "WeCom external_userid", raw)


# --------------------------------------------------------------------------------------------
# custom attributes

_TRUE = frozenset({"true", "t", "yes", "y", "1", "是", "对", "真", "有", "√", "✓", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "否", "错", "假", "无", "没有", "×", "✗", "off"})
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_DATE_RES = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})[日号]?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


class _WrongType(Exception):
    pass


def _num_text(s: str) -> str:
    s = _clean(s).replace(" ", "")
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    return s


def _as_int(v: object) -> int:
    if type(v) is str and v.isascii() and v.isdigit():
        return int(v)
    if isinstance(v, bool):
        raise _WrongType("a boolean is not an integer")
    if isinstance(v, Integral):
        return int(v)
    if isinstance(v, Real | Decimal):
        f = float(v)
        if f.is_integer():
            return int(f)
        raise _WrongType("not a whole number")
    if isinstance(v, str):
        s = _num_text(v)
        if _INT_RE.fullmatch(s):
            return int(s)
        if _FLOAT_RE.fullmatch(s):
            f = float(s)
            if f.is_integer() and abs(f) < 1e16:
                return int(f)
    raise _WrongType("not an integer")


def _as_float(v: object) -> float:
    if isinstance(v, bool):
        raise _WrongType("a boolean is not a number")
    if isinstance(v, Real | Decimal):
        f = float(v)
    elif isinstance(v, str):
        s = _num_text(v)
        if not _FLOAT_RE.fullmatch(s):
            raise _WrongType("not a number")
        f = float(s)
    else:
        raise _WrongType("not a number")
    if not math.isfinite(f):
        raise _WrongType("not a finite number")
    return f


def _as_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, Real | Decimal) and float(v) in (0.0, 1.0):
        return bool(float(v))
    if isinstance(v, str):
        key = v if v in _TRUE or v in _FALSE else _clean(v).lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise _WrongType("not a boolean (true/false, yes/no, 1/0, 是/否)")


def _as_date(v: object) -> str:
    if isinstance(v, _dt.datetime):
        return v.date().isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, Integral) and not isinstance(v, bool):
        v = str(int(v))
    if isinstance(v, str):
        s = _clean(v)
        for rx in _DATE_RES:
            m = rx.fullmatch(s)
            if m:
                try:
                    return _dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
                except ValueError as e:
                    raise _WrongType(f"not a valid date ({e})") from None
    raise _WrongType("not a date (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD or YYYY年M月D日)")


def _as_string(v: object) -> str | None:
    return normalize_text(v, field="attribute", max_length=MAX_ATTRIBUTE_LENGTH)


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "string": _as_string,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "date": _as_date,
}


def _is_empty(v: object) -> bool:
    if v is None:
        return True
    if type(v) is str:
        return not v or v.isspace()
    return isinstance(v, float) and math.isnan(v)


def _untyped_attribute(v: object) -> object:
    if isinstance(v, str):
        return normalize_text(v, field="attribute", max_length=MAX_ATTRIBUTE_LENGTH)
    if v is None or isinstance(v, bool | int | float):
        return v
    if isinstance(v, _dt.datetime | _dt.date):
        return v.isoformat()
    if isinstance(v, Integral):
        return int(v)
    if isinstance(v, Real | Decimal):
        return float(v)
    if isinstance(v, list | tuple):
        return [_untyped_attribute(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _untyped_attribute(x) for k, x in v.items()}
    return normalize_text(str(v), field="attribute", max_length=MAX_ATTRIBUTE_LENGTH)


# --------------------------------------------------------------------------------------------
# the record

_FIELD_FUNCS: dict[str, Callable[[object], str | None]] = {
    "person_type": normalize_person_type,
    "name": normalize_name,
    "gender": normalize_gender,
    "hospital": normalize_hospital,
    "department": normalize_department,
    "city": normalize_city,
    "province": normalize_province,
    "phone": normalize_phone,
    "email": normalize_email,
    "license_no": normalize_license_no,
    "wechat_unionid": normalize_unionid,
    "wecom_external_userid": normalize_wecom_external_userid,
}


#: The same, for values that are already ``str`` (skips the coercion step).
_STR_FUNCS: dict[str, Callable[[str], str | None]] = {
    **_FIELD_FUNCS,
    "person_type": _person_type,
    "name": _name_s,
    "gender": _gender,
    "hospital": _hospital,
    "department": lambda s: _department(s)[0],
    "city": _city,
    "province": lambda s: _province(s)[0] or None,
}


def _issue(field_name: str, code: str, reason: str, raw: object) -> FieldIssue:
    return FieldIssue(field_name, reason, None if raw is None else str(raw), code)


def normalize_record(
    mapped: dict[str, object],
    *,
    custom: dict[str, object] | None = None,
    custom_types: dict[str, str] | None = None,
    default_person_type: str = "hcp",
) -> NormalizeResult:
    """Normalise and validate one mapped source record.

    ``mapped``: standard field name → raw value. Keys that are not standard fields are kept as
    untyped custom attributes. ``custom``: free custom attributes; ``custom_types`` maps a custom
    attribute to one of :data:`CUSTOM_TYPES` (dates become ISO "YYYY-MM-DD" strings). The title is
    split: academic titles and admin roles go to the attributes ``academic_title``/``admin_role``,
    unrecognised extras to ``title_extra`` (explicit custom attributes of the same name win).
    Never raises for bad data: every problem is a :class:`FieldIssue`.
    """
    values: dict[str, object] = {}
    attributes: dict[str, object] = {}
    issues: list[FieldIssue] = []
    failed_identifying = False
    for name, raw in mapped.items():
        if raw is None or (type(raw) is str and not raw):
            continue
        fn = _STR_FUNCS.get(name) if type(raw) is str else _FIELD_FUNCS.get(name)
        try:
            if fn is not None:
                v = fn(raw)
                if v is not None:
                    values[name] = v
            elif name == "title":
                parts = parse_title(raw)
                if parts.title is not None:
                    values["title"] = parts.title
                if parts.academic_title is not None:
                    attributes["academic_title"] = parts.academic_title
                if parts.admin_role is not None:
                    attributes["admin_role"] = parts.admin_role
                if parts.extra is not None:
                    attributes["title_extra"] = parts.extra
            else:
                if not _is_empty(raw):
                    av = _untyped_attribute(raw)
                    if av is not None:
                        attributes[str(name)] = av
        except FieldValueError as e:
            issues.append(FieldIssue(str(name), e.reason, e.value, e.code))
            if name in IDENTIFYING_FIELDS:
                failed_identifying = True
        except Exception as e:  # defensive: bad data must never abort an import
            issues.append(_issue(str(name), "invalid_value", f"could not normalise: {e}", raw))
            if name in IDENTIFYING_FIELDS:
                failed_identifying = True

    if "person_type" not in values and not any(i.field == "person_type" for i in issues):
        values["person_type"] = _default_person_type(default_person_type)

    if custom:
        types = custom_types or {}
        for name, raw in custom.items():
            if _is_empty(raw):
                continue
            typ = types.get(name)
            try:
                if typ is None:
                    av = _untyped_attribute(raw)
                else:
                    conv = _CONVERTERS.get(typ)
                    if conv is None:  # a configuration error, not a data error
                        raise ValueError(f"unknown custom attribute type {typ!r} for {name!r}")
                    try:
                        av = conv(raw)
                    except (_WrongType, ValueError, TypeError, OverflowError) as e:
                        if isinstance(e, FieldValueError):
                            raise
                        issues.append(_issue(str(name), "wrong_type", f"expected {typ}: {e}: {raw!r}", raw))
                        continue
            except FieldValueError as e:
                issues.append(FieldIssue(str(name), e.reason, e.value, e.code))
                continue
            if av is not None:
                attributes[str(name)] = av

    if not failed_identifying:
        for f in IDENTIFYING_FIELDS:
            if f in values:
                break
        else:
            issues.append(
                FieldIssue(
                    "name",
                    "the record has none of the identifying fields: " + ", ".join(IDENTIFYING_FIELDS),
                    None,
                    "no_identifying_field",
                )
            )
    return NormalizeResult(values, attributes, issues)


@lru_cache(maxsize=16)
def _default_person_type(value: str) -> str:
    pt = normalize_person_type(value)
    if pt is None:
        raise ValueError(f"default_person_type must be 'hcp' or 'patient', got {value!r}")
    return pt
