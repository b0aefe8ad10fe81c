from enum import StrEnum


class ListQuarantineStatus(StrEnum):
    ALL = "all"
    DISCARDED = "discarded"
    OPEN = "open"
    REPLAYED = "replayed"

    def __str__(self) -> str:
        return str(self.value)
