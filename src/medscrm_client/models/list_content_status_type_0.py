from enum import StrEnum


class ListContentStatusType0(StrEnum):
    APPROVED = "approved"
    DRAFT = "draft"
    EXPIRED = "expired"
    IN_REVIEW = "in_review"
    WITHDRAWN = "withdrawn"

    def __str__(self) -> str:
        return str(self.value)
