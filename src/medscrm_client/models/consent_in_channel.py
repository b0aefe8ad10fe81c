from enum import StrEnum


class ConsentInChannel(StrEnum):
    ANY = "any"
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    WECHAT = "wechat"
    WECOM = "wecom"

    def __str__(self) -> str:
        return str(self.value)
