from enum import StrEnum


class ChannelInProvider(StrEnum):
    ALIYUN = "aliyun"
    HMAC = "hmac"
    SMTP = "smtp"
    TENCENT = "tencent"
    WECHAT = "wechat"
    WECOM = "wecom"

    def __str__(self) -> str:
        return str(self.value)
