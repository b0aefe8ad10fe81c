"""Declarations of the synthetic sources: file layout, record key and importer mapping.

Each source has its own column names and layout, as real exports do. The mapping written to
``mappings/<name>.yaml`` is derived from the declarations here, and so is ``all_records.csv``
(the same mapping applied to the raw rows), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medscrm.schema.person import STANDARD_FIELDS  # noqa: E402

#: Columns of ``all_records.csv`` (the identity resolver's input).
RESOLVE_COLUMNS: tuple[str, ...] = ("record_id", "source", *STANDARD_FIELDS)
#: Columns of ``ground_truth.csv``.
GROUND_TRUTH_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source",
    "source_key",
    "person_key",
    "person_type",
    "is_bad",
)
#: Standard fields that identify a person; a row with none of them is unusable.
IDENTIFYING_FIELDS: tuple[str, ...] = (
    "name",
    "phone",
    "email",
    "license_no",
    "wechat_unionid",
    "wecom_external_userid",
)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    file: str
    format: str  # csv | jsonl | xlsx | parquet
    encoding: str | None
    person_type: str
    record_key: str
    columns: tuple[str, ...]  # every column of the file, in file order
    mapping: dict[str, str]  # source column -> standard field
    custom: dict[str, str]  # source column -> custom attribute
    custom_types: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def col_for(self, std_field: str) -> str | None:
        for col, f in self.mapping.items():
            if f == std_field:
                return col
        return None

    def cols_for(self, std_field: str) -> tuple[str, ...]:
        """Every column feeding ``std_field``, in order of preference (the first non-empty wins)."""
        return tuple(col for col, f in self.mapping.items() if f == std_field)

    def mapping_doc(self) -> dict:
        doc: dict = {
            "source": self.name,
            "person_type": self.person_type,
            "record_key": self.record_key,
            "columns": dict(self.mapping),
            "custom": dict(self.custom),
        }
        if self.custom_types:
            doc["custom_types"] = dict(self.custom_types)
        return doc


_Q = tuple(f"q{i}_score" for i in range(1, 6))

CRM = SourceSpec(
    name="crm",
    file="crm_export.csv",
    format="csv",
    encoding="gb18030",
    person_type="hcp",
    record_key="客户编号",
    columns=(
        "客户编号",
        "姓名",
        "性别",
        "医院",
        "医院级别",
        "科室",
        "职称",
        "城市",
        "省份",
        "手机",
        "办公电话",
        "邮箱",
        "执业证书编码",
        "客户等级",
        "负责代表",
        "创建日期",
    ),  # fmt: skip
    mapping={
        "姓名": "name",
        "性别": "gender",
        "医院": "hospital",
        "科室": "department",
        "职称": "title",
        "城市": "city",
        "省份": "province",
        "手机": "phone",
        "邮箱": "email",
        "执业证书编码": "license_no",
    },  # fmt: skip
    custom={
        "医院级别": "hospital_grade",
        "办公电话": "office_phone",
        "客户等级": "crm_tier",
        "负责代表": "owner_rep",
        "创建日期": "crm_created_at",
    },  # fmt: skip
    custom_types={"crm_created_at": "date"},
    description="Pharma CRM HCP master export (GB18030, Chinese headers). Cleanest source; "
    "a few duplicate customer records (e.g. after a hospital move); office landlines are shared "
    "by the doctors of one department.",
)

WEBINAR = SourceSpec(
    name="webinar",
    file="webinar_signups.csv",
    format="csv",
    encoding="utf-8-sig",
    person_type="hcp",
    record_key="signup_id",
    columns=(
        "signup_id",
        "full_name",
        "mobile",
        "email",
        "hospital_name",
        "dept",
        "job_title",
        "signup_time",
        "webinar_topic",
        "attended",
        "watch_minutes",
        "wx_unionid",
    ),  # fmt: skip
    mapping={
        "full_name": "name",
        "mobile": "phone",
        "email": "email",
        "hospital_name": "hospital",
        "dept": "department",
        "job_title": "title",
        "wx_unionid": "wechat_unionid",
    },  # fmt: skip
    custom={
        "signup_time": "signup_time",
        "webinar_topic": "webinar_topic",
        "attended": "attended",
        "watch_minutes": "watch_minutes",
    },  # fmt: skip
    custom_types={"watch_minutes": "int"},
    description="Online webinar registrations (UTF-8 with BOM). Self-typed: short hospital names, "
    "English names and titles, phone formats vary; one row per signup, people sign up repeatedly. "
    "The platform's WeChat login captures the unionid on most rows (wx_unionid).",
)

WECHAT = SourceSpec(
    name="wechat",
    file="wechat_followers.jsonl",
    format="jsonl",
    encoding="utf-8",
    person_type="hcp",
    record_key="openid",
    columns=(
        "openid",
        "unionid",
        "nickname",
        "sex",
        "city",
        "province",
        "country",
        "subscribe_time",
        "subscribe_scene",
        "real_name",
        "verified_hospital",
        "verified_department",
        "verified_title",
        "verified_mobile",
        "hcp_verified_at",
    ),  # fmt: skip
    mapping={
        "real_name": "name",  # the HCP-verification name first; the nickname otherwise
        "nickname": "name",
        "unionid": "wechat_unionid",
        "sex": "gender",
        "verified_hospital": "hospital",
        "verified_department": "department",
        "verified_title": "title",
        "verified_mobile": "phone",
        "city": "city",
        "province": "province",
    },  # fmt: skip
    custom={
        "openid": "wechat_openid",
        "country": "country",
        "subscribe_time": "subscribe_time",
        "subscribe_scene": "subscribe_scene",
        "hcp_verified_at": "hcp_verified_at",
    },  # fmt: skip
    custom_types={"subscribe_time": "int"},
    description="Official-account followers (user/info API dump joined with the account's HCP "
    "verification form, JSON lines). Without verification the nickname is the only name (often not "
    "the real name) and there is no phone; a follower who completed 医生认证 (name, hospital, "
    "department, title, SMS-checked mobile) also has real_name and verified_* keys. sex 1=male "
    "2=female 0=unknown; unionid usually present.",
)

WECOM = SourceSpec(
    name="wecom",
    file="wecom_contacts.jsonl",
    format="jsonl",
    encoding="utf-8",
    person_type="hcp",
    record_key="external_userid",
    columns=(
        "external_userid",
        "name",
        "remark",
        "corp_name",
        "position",
        "rep_userid",
        "add_time",
        "unionid",
        "mobile",
    ),  # fmt: skip
    mapping={
        "external_userid": "wecom_external_userid",
        "name": "name",
        "corp_name": "hospital",
        "position": "title",
        "mobile": "phone",
        "unionid": "wechat_unionid",
    },  # fmt: skip
    custom={"remark": "rep_remark", "rep_userid": "rep_userid", "add_time": "add_time"},
    custom_types={"add_time": "int"},
    description="WeCom external contacts added by reps (JSON lines). name is the contact's WeChat "
    "nickname; the rep's remark usually carries the real name, hospital and department; the unionid "
    "is present for most contacts who also follow the official account (and for some others); mobile "
    "only sometimes (keys absent otherwise).",
)

EVENTS = SourceSpec(
    name="events",
    file="event_signups.xlsx",
    format="xlsx",
    encoding=None,
    person_type="hcp",
    record_key="报名编号",
    columns=(
        "报名编号",
        "姓名",
        "单位",
        "科室",
        "职务",
        "电话",
        "会议名称",
        "报名时间",
        "是否签到",
        "微信UnionID",
    ),
    mapping={
        "姓名": "name",
        "单位": "hospital",
        "科室": "department",
        "职务": "title",
        "电话": "phone",
        "微信UnionID": "wechat_unionid",
    },
    custom={"会议名称": "event_name", "报名时间": "event_signup_time", "是否签到": "checked_in"},
    description="Offline meeting sign-up sheets (XLSX). Some phones are numeric cells, some are the "
    "department landline or the rep's own mobile (rep registered the doctor). Rows that came through "
    "the WeChat sign-up mini-program carry the unionid; rows typed in from paper sheets do not.",
)

SURVEY = SourceSpec(
    name="survey",
    file="surveys.parquet",
    format="parquet",
    encoding=None,
    person_type="hcp",
    record_key="response_id",
    columns=(
        "response_id",
        "survey_name",
        "respondent_name",
        "phone",
        "hospital",
        "department",
        "title",
        "license_no",
        "submitted_at",
        *_Q,
        "q6_nps",
        "q7_comment",
    ),  # fmt: skip
    mapping={
        "respondent_name": "name",
        "phone": "phone",
        "hospital": "hospital",
        "department": "department",
        "title": "title",
        "license_no": "license_no",
    },  # fmt: skip
    custom={
        "survey_name": "survey_name",
        "submitted_at": "submitted_at",
        **{q: q for q in _Q},
        "q6_nps": "q6_nps",
        "q7_comment": "q7_comment",
    },  # fmt: skip
    custom_types={**{q: "int" for q in _Q}, "q6_nps": "int"},
    description="HCP survey responses (Parquet). Licence number sometimes given.",
)

PATIENTS = SourceSpec(
    name="patients",
    file="patient_program.csv",
    format="csv",
    encoding="utf-8",
    person_type="patient",
    record_key="患者编号",
    columns=(
        "患者编号",
        "姓名",
        "性别",
        "手机",
        "城市",
        "出生年份",
        "病种",
        "入组时间",
        "健康管家",
        "知情同意",
    ),
    mapping={"姓名": "name", "性别": "gender", "手机": "phone", "城市": "city"},
    custom={
        "出生年份": "birth_year",
        "病种": "diabetes_type",
        "入组时间": "enrolled_at",
        "健康管家": "health_manager",
        "知情同意": "consent",
    },  # fmt: skip
    custom_types={"birth_year": "int", "enrolled_at": "date"},
    description="Diabetes patient-support programme enrolments (UTF-8). Some patients re-enrol; a "
    "few were registered with a relative's (sometimes a doctor's) phone.",
)

HCP_SOURCES: tuple[SourceSpec, ...] = (CRM, WEBINAR, WECHAT, WECOM, EVENTS, SURVEY)
ALL_SOURCES: tuple[SourceSpec, ...] = (*HCP_SOURCES, PATIENTS)
SOURCES_BY_NAME: dict[str, SourceSpec] = {s.name: s for s in ALL_SOURCES}
