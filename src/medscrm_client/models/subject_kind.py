from enum import StrEnum


class SubjectKind(StrEnum):
    AUTO = "auto"
    EMAIL = "email"
    LICENSE_NO = "license_no"
    OPENID = "openid"
    PERSON_ID = "person_id"
    PHONE = "phone"
    SOURCE_RECORD = "source_record"
    UNIONID = "unionid"
    USER_ID = "user_id"
    WECOM = "wecom"

    def __str__(self) -> str:
        return str(self.value)
