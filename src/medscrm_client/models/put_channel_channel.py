from enum import StrEnum


class PutChannelChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    WECHAT_TEMPLATE = "wechat_template"
    WECOM = "wecom"

    def __str__(self) -> str:
        return str(self.value)
