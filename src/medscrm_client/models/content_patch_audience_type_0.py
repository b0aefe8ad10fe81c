from enum import StrEnum


class ContentPatchAudienceType0(StrEnum):
    HCP_ONLY = "hcp_only"
    PATIENT = "patient"
    PUBLIC = "public"

    def __str__(self) -> str:
        return str(self.value)
