from enum import StrEnum


class PreviewInFieldsType0AdditionalProperty(StrEnum):
    BOOL = "bool"
    DATE = "date"
    NUMBER = "number"
    STRING = "string"

    def __str__(self) -> str:
        return str(self.value)
