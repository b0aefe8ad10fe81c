"""Outreach: consents, do-not-contact, guardrails, the send outbox, channels and feedback events."""
