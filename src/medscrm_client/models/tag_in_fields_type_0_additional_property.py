from enum import StrEnum


class TagInFieldsType0AdditionalProperty(StrEnum):
    BOOL = "bool"
    DATE = "date"
    NUMBER = "number"
    STRING = "string"

    def __str__(self) -> str:
        return str(self.value)
