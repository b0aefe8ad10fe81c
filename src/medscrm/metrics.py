"""Prometheus metrics of a medscrm process (prometheus-client), defined once for every layer.

Lower layers only update these objects; the API layer (``medscrm.api.observe``) exposes them at
``/metrics``, together with the gauges read from the database at scrape time. Every metric is listed
with its meaning in ``docs/operations.md``.

``medscrm serve --workers N`` runs prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``
is set (and emptied) by the parent before the workers start, so each worker writes its values to
memory-mapped files there and whichever worker answers a scrape sums them. The environment variable
must be set before ``prometheus_client`` is first imported in a process; the workers are fresh
interpreters, so it is."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram

#: request latency buckets (seconds): the event API answers in about a millisecond, console pages and
#: segment previews in tens to hundreds of milliseconds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Histogram(
    "medscrm_http_request_duration_seconds",
    "HTTP request latency, by route template (not the raw path), method and status class (2xx, 4xx ...)",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
UNAUDITED_REQUESTS = Counter(
    "medscrm_unaudited_requests",
    "Requests that succeeded on a route that must be audited (a write or a read of personal data) but "
    "left no complete audit row: a defect to fix at once",
    ["route", "method"],
)
EVENTS_STORED = Counter(
    "medscrm_events_stored",
    "Events the flusher stored from the spool into the database (duplicates by messageId not counted)",
)
EVENTS_QUARANTINED = Counter(
    "medscrm_events_quarantined",
    "Messages put in quarantine by the event pipeline, by where: door (refused at the API, kept with "
    "the reason), poison (a spooled record that cannot be decoded), refused (the database refused it)",
    ["stage"],
)
SPOOL_BACKLOG = Gauge(
    "medscrm_spool_backlog_bytes",
    "Spooled event bytes not yet stored in the database (summed over the live worker processes)",
    multiprocess_mode="livesum",
)
FLUSHER_LAG = Gauge(
    "medscrm_flusher_lag_seconds",
    "Seconds storage has not advanced while spooled events wait (0 when caught up; the largest of "
    "the live worker processes)",
    multiprocess_mode="livemax",
)
REFRESHER_LAG = Gauge(
    "medscrm_segment_refresher_lag_seconds",
    "Seconds since the segment refresher's fast lane last completed a cycle (it cycles several times a "
    "second when healthy; grows while it fails or is stuck)",
    multiprocess_mode="livemax",
)
REFRESHER_VISIBLE_LAG = Gauge(
    "medscrm_segment_refresher_visible_lag_seconds",
    "For the newest events the refresher saw: the largest time from the API receiving an event to "
    "the refresher reading it",
    multiprocess_mode="livemax",
)
IDENTITY_RUN = Histogram(
    "medscrm_identity_run_duration_seconds",
    "Duration of OneID identity runs, by mode (full, incremental)",
    ["mode"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

F = TypeVar("F", bound=Callable[..., Any])


def timed_identity_run(mode: str) -> Callable[[F], F]:
    """Decorator: the call's duration goes to ``medscrm_identity_run_duration_seconds{mode=…}``
    (also when it raises: a failing run took that long too)."""
    child = IDENTITY_RUN.labels(mode)

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                child.observe(time.perf_counter() - t0)

        return timed  # type: ignore[return-value]

    return wrap
