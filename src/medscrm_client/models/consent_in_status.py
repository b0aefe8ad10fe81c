from enum import StrEnum


class ConsentInStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"

    def __str__(self) -> str:
        return str(self.value)
