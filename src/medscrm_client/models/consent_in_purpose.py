from enum import StrEnum


class ConsentInPurpose(StrEnum):
    MARKETING = "marketing"
    MEDICAL_INFO = "medical_info"
    SERVICE = "service"
    SURVEY = "survey"

    def __str__(self) -> str:
        return str(self.value)
