"""Column mapping: which source column feeds which standard field or custom attribute.

A mapping is YAML (see docs/import.md)::

    source: crm
    person_type: hcp          # default for rows that do not say
    record_key: 客户编号        # the source's own id column (re-imports update, never duplicate)
    columns: {姓名: name, 手机: phone}
    custom: {医院级别: hospital_grade}
    custom_types: {q1_score: int}
    unknown_columns: custom   # custom (keep as attributes) | ignore | reject

Without a mapping file, columns are matched to standard fields by a synonym table (Chinese and
English header names seen in real exports); the rest become custom attributes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medscrm.common import MedscrmError
from medscrm.db.schema import PERSON_FIELDS

CUSTOM_TYPES = ("string", "int", "float", "bool", "date")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "person_type": ("person_type", "type", "类型", "人员类型", "客户类型"),
    "name": (
        "name",
        "full_name",
        "fullname",
        "姓名",
        "名字",
        "客户姓名",
        "医生姓名",
        "患者姓名",
        "doctor_name",
        "hcp_name",
        "respondent_name",
        "真实姓名",
    ),
    "gender": ("gender", "sex", "性别"),
    "hospital": (
        "hospital",
        "hospital_name",
        "医院",
        "医院名称",
        "单位",
        "工作单位",
        "机构",
        "机构名称",
        "corp_name",
        "organization",
        "institution",
    ),
    "department": ("department", "dept", "科室", "部门", "科室名称"),
    "title": ("title", "job_title", "职称", "职务", "position", "professional_title"),
    "city": ("city", "城市", "所在城市", "市"),
    "province": ("province", "省份", "省", "所在省份"),
    "phone": (
        "phone",
        "mobile",
        "tel",
        "telephone",
        "cellphone",
        "phone_number",
        "mobile_phone",
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "联系方式",
    ),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮箱", "电子邮件", "email_address"),
    "license_no": (
        "license_no",
        "license",
        "licence",
        "license_number",
        "执业证书编码",
        "执业证号",
        "执业证书编号",
        "医师执业证号",
    ),
    "wechat_unionid": ("wechat_unionid", "unionid", "union_id"),
    "wecom_external_userid": ("wecom_external_userid", "external_userid", "external_user_id"),
}
_SYN_INDEX = {re.sub(r"[\s_\-]", "", s.lower()): f for f, ss in SYNONYMS.items() for s in ss}


def guess_field(column: str) -> str | None:
    return _SYN_INDEX.get(re.sub(r"[\s_\-]", "", column.strip().lower()))


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    person_type: Literal["hcp", "patient"] = "hcp"
    record_key: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    custom: dict[str, str] = Field(default_factory=dict)
    custom_types: dict[str, str] = Field(default_factory=dict)
    unknown_columns: Literal["custom", "ignore", "reject"] = "custom"
    auto: bool = True  # also match unmapped columns by synonym

    @field_validator("columns")
    @classmethod
    def _fields_exist(cls, v: dict[str, str]) -> dict[str, str]:
        for col, target in v.items():
            if target not in PERSON_FIELDS:
                raise ValueError(
                    f"column {col!r} maps to {target!r}, which is not a standard field "
                    f"({', '.join(PERSON_FIELDS)}); put it under `custom:` instead"
                )
        # several columns may feed one field (``{真实姓名: name, 昵称: name}``): in the order listed,
        # the first non-empty value wins (see docs/import.md)
        return v

    @field_validator("custom_types")
    @classmethod
    def _types_known(cls, v: dict[str, str]) -> dict[str, str]:
        for attr, t in v.items():
            if t not in CUSTOM_TYPES:
                raise ValueError(f"custom_types.{attr}: {t!r} is not one of {', '.join(CUSTOM_TYPES)}")
        return v


def load_mapping(path: Path | str) -> Mapping:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MedscrmError(f"{path}: mapping file not found") from exc
    except yaml.YAMLError as exc:
        raise MedscrmError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MedscrmError(f"{path}: a mapping file must be a YAML object (source, columns, custom, ...)")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MedscrmError(f"{path}: {msgs}") from exc


class Plan(BaseModel):
    """A mapping resolved against one file's header: exactly what happens to every column."""

    fields: dict[str, str]  # source column -> standard field
    custom: dict[str, str]  # source column -> custom attribute
    custom_types: dict[str, str]
    ignored: list[str]
    record_key: str | None
    person_type: str
    warnings: list[str]


def plan_for(columns: list[str], mapping: Mapping | None, file_name: str) -> Plan:
    m = mapping or Mapping()
    errors = []
    for col in [*m.columns, *m.custom, *([m.record_key] if m.record_key else [])]:
        if col not in columns:
            errors.append(f"mapping names column {col!r}, which the file does not have")
    if errors:
        raise MedscrmError(f"{file_name}: " + "; ".join(errors) + f" (file columns: {', '.join(columns)})")
    fields = dict(m.columns)
    custom = dict(m.custom)
    ignored: list[str] = []
    warnings: list[str] = []
    taken = set(fields.values())
    unknown = []
    for col in columns:
        if col in fields or col in custom:
            continue
        guess = guess_field(col) if m.auto else None
        if guess and guess not in taken:
            fields[col] = guess
            taken.add(guess)
            continue
        if col == m.record_key:
            continue
        unknown.append(col)
    if unknown:
        if m.unknown_columns == "reject":
            raise MedscrmError(
                f"{file_name}: unknown column(s) {', '.join(unknown)}: map them in the mapping file "
                "(columns: or custom:) or set unknown_columns: custom|ignore"
            )
        if m.unknown_columns == "ignore":
            ignored = unknown
            warnings.append(f"unmapped column(s) ignored: {', '.join(unknown)}")
        else:
            for col in unknown:
                custom[col] = re.sub(r"\s+", "_", col.strip())
            warnings.append(f"unmapped column(s) kept as custom attributes: {', '.join(unknown)}")
    if not any(
        f in fields.values()
        for f in ("name", "phone", "email", "license_no", "wechat_unionid", "wecom_external_userid")
    ):
        warnings.append(
            "no column maps to an identifying field (name, phone, email, license_no, "
            "wechat_unionid, wecom_external_userid): every row will be rejected"
        )
    return Plan(
        fields=fields,
        custom=custom,
        custom_types=dict(m.custom_types),
        ignored=ignored,
        record_key=m.record_key,
        person_type=m.person_type,
        warnings=warnings,
    )
