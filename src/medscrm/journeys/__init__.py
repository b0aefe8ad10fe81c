"""Journeys (营销旅程): durable marketing automation over compliant channels (docs/journeys.md).

``model`` — definitions as data and their validation; ``service`` — the service (create, versions,
lifecycle, enrolment, per-step statistics); ``engine`` — the durable engine: ``triggers`` (who enters),
``steps`` (executing each node type), ``runner`` (claiming due enrollments, the in-process runner and
``medscrm worker``).
"""
