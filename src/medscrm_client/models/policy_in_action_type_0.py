from enum import StrEnum


class PolicyInActionType0(StrEnum):
    ANONYMISE = "anonymise"
    DELETE = "delete"

    def __str__(self) -> str:
        return str(self.value)
