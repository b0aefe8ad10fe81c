"""Outbound webhooks: tenants subscribe an HTTPS endpoint to domain events (persons merged or split,
segment entered/exited, consent changed, send blocked/sent/delivered/failed).

* :mod:`.outbox` subscribes to the in-process hooks (:mod:`medscrm.hooks`) and writes one outbox row
  per (subscription, event) in the transaction of the change itself: committed together, lost
  together, never one without the other.
* :mod:`.service` manages subscriptions (URL checks, per-subscription signing secrets sealed at rest),
  lists deliveries and their attempts, replays.
* :mod:`.dispatch` delivers the outbox: claim (FOR UPDATE SKIP LOCKED on PostgreSQL), sign
  (HMAC-SHA256 over ``timestamp.body``), POST with httpx, retry with exponential backoff and jitter,
  dead after N attempts. It runs in ``medscrm worker`` and, on DuckDB, inside ``medscrm serve``.

The payload format and how to verify a signature: ``docs/webhooks.md``.
"""
