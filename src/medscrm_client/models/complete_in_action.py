from enum import StrEnum


class CompleteInAction(StrEnum):
    DISMISS = "dismiss"
    DONE = "done"

    def __str__(self) -> str:
        return str(self.value)
