from enum import StrEnum


class TagInCategory(StrEnum):
    BASIC = "basic"
    BEHAVIOUR_MODEL = "behaviour_model"
    BUSINESS_RULE = "business_rule"
    THIRD_PARTY = "third_party"

    def __str__(self) -> str:
        return str(self.value)
