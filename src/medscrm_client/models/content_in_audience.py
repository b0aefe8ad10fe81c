from enum import StrEnum


class ContentInAudience(StrEnum):
    HCP_ONLY = "hcp_only"
    PATIENT = "patient"
    PUBLIC = "public"

    def __str__(self) -> str:
        return str(self.value)
