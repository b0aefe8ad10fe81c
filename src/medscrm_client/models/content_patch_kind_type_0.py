from enum import StrEnum


class ContentPatchKindType0(StrEnum):
    ARTICLE = "article"
    EMAIL_TEMPLATE = "email_template"
    PDF = "pdf"
    SMS_TEMPLATE = "sms_template"
    SURVEY = "survey"
    VIDEO = "video"
    WEBINAR = "webinar"
    WECHAT_TEMPLATE = "wechat_template"
    WECOM_TEMPLATE = "wecom_template"

    def __str__(self) -> str:
        return str(self.value)
