from enum import StrEnum


class LookupPersonType(StrEnum):
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"
    LICENSE_NO = "license_no"
    PHONE = "phone"
    UNIONID = "unionid"
    USER_ID = "user_id"
    WECOM = "wecom"

    def __str__(self) -> str:
        return str(self.value)
