from enum import StrEnum


class TagInRefresh(StrEnum):
    REALTIME = "realtime"
    SCHEDULED = "scheduled"

    def __str__(self) -> str:
        return str(self.value)
