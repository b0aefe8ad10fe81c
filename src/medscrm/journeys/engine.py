"""The durable journey engine (旅程引擎), in three parts:

- :mod:`medscrm.journeys.triggers` — who enters a journey: event, segment entry/exit and schedule
  triggers, enrolment under the re-entry rules and caps, enrollments moved on a merge;
- :mod:`medscrm.journeys.steps` — executing steps: one batch of claimed enrollments advanced through
  their steps, every node type, history rows and new states written in bulk;
- :mod:`medscrm.journeys.runner` — claiming due enrollments, ``tick``, the in-process runner and the
  ``medscrm worker`` loop.

State lives in the database: one ``journey_enrollments`` row per person and journey (current step,
``next_run_at``, visit counters), one ``journey_step_runs`` row per step execution, unique by its
idempotency key ``<enrollment id>:<step id>:<visit>``. ``run_due`` claims due enrollments
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers never take the same one; DuckDB: one
in-process runner) and, in ONE transaction, executes their steps, writes the history rows, the new
enrollment states and — through ``outreach.send.request_send`` in the same connection — the outbox
rows of sends. A worker killed at any moment therefore either committed a step with its send, or
neither: a send happens exactly once. Waits are ``next_run_at`` values, so they survive restarts.

This module re-exports the names the rest of the code base uses.
"""

from __future__ import annotations

from medscrm.journeys.runner import (
    MAX_ATTEMPTS,
    JourneyRunner,
    dispatch,
    run_due,
    start_background,
    tick,
    worker_loop,
)
from medscrm.journeys.steps import (
    ACTIVE,
    CHINA,
    MAX_CHAIN,
    _defs,
    content_lookup,
    journey_def,
    rep_of,
    split_choice,
    window_start,
)
from medscrm.journeys.triggers import (
    TRIGGER_OVERLAP,
    enroll_candidates,
    merge_enrollments,
    poll_triggers,
    segment_id,
    trig_match,
)

__all__ = [
    "ACTIVE",
    "CHINA",
    "MAX_ATTEMPTS",
    "MAX_CHAIN",
    "TRIGGER_OVERLAP",
    "JourneyRunner",
    "_defs",
    "content_lookup",
    "dispatch",
    "enroll_candidates",
    "journey_def",
    "merge_enrollments",
    "poll_triggers",
    "rep_of",
    "run_due",
    "segment_id",
    "split_choice",
    "start_background",
    "tick",
    "trig_match",
    "window_start",
    "worker_loop",
]
