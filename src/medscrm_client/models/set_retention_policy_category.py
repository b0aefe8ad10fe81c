from enum import StrEnum


class SetRetentionPolicyCategory(StrEnum):
    AUDIT = "audit"
    EVENTS = "events"
    HEALTH = "health"
    QUARANTINE = "quarantine"
    SENDS = "sends"
    SOURCE_RECORDS = "source_records"
    WEBHOOK_DELIVERIES = "webhook_deliveries"

    def __str__(self) -> str:
        return str(self.value)
