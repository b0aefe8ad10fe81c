"""Every write and every read of personal data through the API or the console leaves an audit row.

:class:`AuditGuard` (ASGI middleware, inside the request-id middleware) collects the audit rows a
request builds (``accounts.service.collect_audit_rows``; the rows of sync endpoints built in the
thread pool are collected too: AnyIO copies the request's context into the worker thread). When a
request answers below 400 and its route is one that must be audited, at least one of those rows
must carry the tenant, the actor, the action and a purpose (and, for reads of personal data, the
kind of object read). A request that does not is a *gap*: logged as an error with its route,
counted in ``medscrm_unaudited_requests_total``, and, under ``MEDSCRM_AUDIT_STRICT=1`` (the test
suite), kept in :data:`GAPS` so that the test that made the request fails.

Which routes must be audited:

* every POST, PUT, PATCH and DELETE, except those in :data:`UNAUDITED_WRITES` (each with why);
* every route in :data:`PERSONAL_READS` (reads that show personal data: persons, their events,
  tags, scores, consents, sends, quarantined rows, exports, the audit trail itself).

Every other GET must be in :data:`PLAIN_READS` with why it shows no personal data;
``tests/api/test_audit_guard.py`` walks the route table and fails on a route in none of these.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from medscrm import metrics
from medscrm.accounts.service import collect_audit_rows
from medscrm.config import get_settings

log = logging.getLogger("medscrm.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: writes that leave no audit row of their own, and why (method, route template) -> reason
UNAUDITED_WRITES: dict[tuple[str, str], str] = {
    ("POST", "/v1/{kind}"): "event collection (Segment spec): each stored event keeps its source and "
    "message id; the source's write key is the actor",
    ("POST", "/callbacks/wecom/{source_id}"): "provider callback: stored as an event with the provider's "
    "message id",
    ("POST", "/callbacks/wechat/{source_id}"): "provider callback: stored as an event with the provider's "
    "message id",
    ("POST", "/callbacks/sms/aliyun"): "delivery receipts: stored on the send and as events",
    ("POST", "/callbacks/sms/tencent"): "delivery receipts: stored on the send and as events",
    ("POST", "/callbacks/sms/aliyun/replies/{tenant_id}/{token}"): "inbound replies: stored as events "
    "(an opt-out reply is audited as a consent change)",
    ("POST", "/callbacks/sms/tencent/replies/{tenant_id}/{token}"): "inbound replies: stored as events "
    "(an opt-out reply is audited as a consent change)",
    ("POST", "/callbacks/sms/{provider}/replies/{tenant_id}"): "inbound replies: stored as events "
    "(an opt-out reply is audited as a consent change)",
    ("POST", "/b/{token}"): "a view beacon of a tracked message: stored as an event",
    ("POST", "/api/v1/journeys/validate"): "checks a definition; stores nothing",
    ("POST", "/login"): "sign-in: failures are throttled and audited; a success starts a session",
    ("POST", "/privacy/lookup"): "redirects to the page that shows (and audits) what is held",
    ("POST", "/segments/check"): "checks a rule the builder holds; stores nothing",
    ("POST", "/journeys/editor/check"): "checks a definition the journey editor holds; stores nothing",
    ("POST", "/content/preview"): "renders the content form's preview; stores nothing",
}

#: reads that show personal data: each must leave an audit row naming what was read
PERSONAL_READS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/quarantine"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/persons/lookup"),
        ("GET", "/api/v1/persons"),
        ("GET", "/api/v1/persons/{person_id}"),
        ("GET", "/api/v1/persons/{person_id}/timeline"),
        ("GET", "/api/v1/persons/{person_id}/records"),
        ("GET", "/api/v1/persons/{person_id}/tags"),
        ("GET", "/api/v1/persons/{person_id}/consents"),
        ("POST", "/api/v1/segments/preview"),
        ("GET", "/api/v1/segments/{key}/members"),
        ("GET", "/api/v1/segments/{key}/export.csv"),
        ("GET", "/api/v1/scores/persons/{person_id}"),
        ("GET", "/api/v1/tags/{key}/persons"),
        ("GET", "/api/v1/sends"),
        ("GET", "/api/v1/sends/{send_id}"),
        ("GET", "/api/v1/compliance/sends"),
        ("GET", "/api/v1/compliance/sends.csv"),
        ("GET", "/api/v1/dsr/requests"),
        ("GET", "/api/v1/dsr/requests/{request_id}"),
        ("GET", "/api/v1/dsr/requests/{request_id}/certificate"),
        ("GET", "/hcps"),
        ("GET", "/hcps/{person_id}"),
        ("GET", "/identity"),
        ("GET", "/segments/{key}"),
        ("POST", "/segments/preview"),
        ("GET", "/segments/{key}/export.csv"),
        ("GET", "/imports"),
        ("GET", "/audit"),
        ("GET", "/compliance"),
        ("GET", "/outbox"),
        ("GET", "/privacy/requests/{request_id}/certificate"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/tasks"),
        ("GET", "/journeys/{key}/persons"),
        ("GET", "/journeys/{key}/persons.csv"),
    }
)

#: reads without personal data, and why
PLAIN_READS: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/docs"): "the API's documentation page",
    ("GET", "/docs/oauth2-redirect"): "the documentation page's sign-in helper",
    ("GET", "/redoc"): "the API's documentation page",
    ("GET", "/metrics"): "counters and latencies, no person",
    ("GET", "/api/v1/health"): "liveness",
    ("GET", "/api/v1/me"): "the caller's own token",
    ("GET", "/api/v1/sources"): "configured sources (secrets sealed)",
    ("GET", "/api/v1/imports"): "import reports: counts and files, no rows",
    ("GET", "/api/v1/segments"): "definitions and counts",
    ("GET", "/api/v1/segments/refresher"): "the refresher's state",
    ("GET", "/api/v1/segments/{key}"): "one definition and its count",
    ("GET", "/api/v1/tags"): "tag definitions",
    ("GET", "/api/v1/scores/distributions"): "aggregates",
    ("GET", "/api/v1/scores/micro-segments"): "aggregates",
    ("GET", "/api/v1/journeys"): "definitions and counts",
    ("GET", "/api/v1/journeys/{key}"): "one definition",
    ("GET", "/api/v1/journeys/{key}/current-members"): "a count",
    ("GET", "/api/v1/journeys/{key}/stats"): "counts",
    ("GET", "/api/v1/webhooks"): "subscriptions (secrets sealed)",
    ("GET", "/api/v1/webhooks/{subscription_id}"): "one subscription",
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): "delivery attempts (the integration's own "
    "log; bodies carry pseudonymous ids)",
    ("GET", "/api/v1/content"): "the content library",
    ("GET", "/api/v1/content/{item_id}"): "one content item",
    ("GET", "/api/v1/channels"): "channel configuration (secrets sealed)",
    ("GET", "/api/v1/outreach/policy"): "caps and quiet hours",
    ("GET", "/callbacks/wecom/{source_id}"): "the provider's URL verification handshake",
    ("GET", "/callbacks/wechat/{source_id}"): "the provider's URL verification handshake",
    ("GET", "/r/{token}"): "a tracked link's redirect (the click is stored as an event)",
    ("GET", "/b/{token}"): "a view beacon's pixel (the view is stored as an event)",
    ("GET", "/static/{name:path}"): "static files",
    ("GET", "/lang/{lang}"): "switches the console's language",
    ("GET", "/login"): "the sign-in page",
    ("GET", "/"): "the dashboard: aggregates",
    ("GET", "/segments"): "definitions and counts",
    ("GET", "/segments/new"): "the builder",
    ("GET", "/segments/values"): "suggested attribute values; refuses personal fields",
    ("GET", "/journeys"): "definitions and counts",
    ("GET", "/journeys/{key}"): "one journey and its counts",
    ("GET", "/journeys/new"): "the journey editor (aggregates: content titles, segment names)",
    ("GET", "/journeys/{key}/edit"): "the journey editor: one definition",
    ("GET", "/journeys/{key}/versions"): "a journey's versions: definitions, who saved them",
    ("GET", "/content"): "the content library",
    ("GET", "/content/new"): "the empty content form",
    ("GET", "/content/review"): "the content awaiting review",
    ("GET", "/content/{item_id}"): "one content item, its review history and the journeys that send it",
    ("GET", "/content/{item_id}/edit"): "a content draft's form",
    ("GET", "/webhooks"): "subscriptions",
    ("GET", "/webhooks/{subscription_id}"): "delivery attempts (pseudonymous ids)",
    ("GET", "/privacy"): "the request log; the person view is audited by the page itself (dsr.lookup)",
    ("GET", "/segments/tag-values"): "suggested tag values (tiers, stages)",
    (
        "GET",
        "/segments/event-properties",
    ): "event property names and types; identifying fields are never listed",
    ("GET", "/segments/event-values"): "suggested event property values; identifying fields are never listed",
    ("GET", "/api/v1/journeys/{key}/results"): "per-variant counts and the test between them",
    ("GET", "/api/v1/retention/policies"): "retention policies",
    ("GET", "/api/v1/retention/runs"): "retention runs: counts per category",
    ("GET", "/retention"): "retention policies and runs",
    ("GET", "/api/v1/sso"): "single sign-on settings (the secret is never shown)",
    ("GET", "/sso"): "single sign-on settings (the secret is never shown)",
    ("GET", "/sso/start"): "sends the browser to the identity provider",
    ("GET", "/sso/callback"): "sign-in: starts a session; refusals and user changes are audited",
}

#: gaps seen under MEDSCRM_AUDIT_STRICT=1: (method, route, status, why); tests read and clear it
GAPS: list[tuple[str, str, int, str]] = []
_gaps_lock = threading.Lock()


def must_audit(method: str, route: str) -> bool:
    """Whether a request to ``route`` (a template) that succeeds must leave an audit row."""
    if (method, route) in PERSONAL_READS:
        return True
    return method in MUTATING and (method, route) not in UNAUDITED_WRITES


def gap_of(method: str, route: str, rows: list[dict[str, Any]]) -> str | None:
    """Why ``rows`` do not audit a request to ``route`` (None: they do)."""
    if not rows:
        return "no audit row"
    for r in rows:
        if not (r.get("tenant_id") and r.get("actor") and r.get("action")):
            continue
        if not r.get("purpose") or r["purpose"] == "unspecified":
            continue
        if (method, route) in PERSONAL_READS and not r.get("object_type"):
            continue
        return None
    return "audit rows lack the tenant, actor, action, purpose or object: " + ", ".join(
        sorted({str(r.get("action")) for r in rows})
    )


class AuditGuard:
    """ASGI middleware: see the module."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        to_login = False

        def watch(message: dict) -> Any:
            nonlocal status, to_login
            if message["type"] == "http.response.start":
                status = message["status"]
                # not signed in: the console sends the browser to the sign-in page; nothing was done
                to_login = any(
                    k in (b"location", b"hx-redirect") and v.startswith(b"/login")
                    for k, v in message.get("headers", ())
                )
            return send(message)

        with collect_audit_rows() as rows:
            await self.app(scope, receive, watch)
        route = getattr(scope.get("route"), "path", None)
        method = scope["method"]
        # a read succeeded when it answered 2xx; a write also when it redirected (post/redirect/get)
        if route is None or to_login or status >= (400 if method in MUTATING else 300):
            return
        if not must_audit(method, route):
            return
        why = gap_of(method, route, rows)
        if why is None:
            return
        metrics.UNAUDITED_REQUESTS.labels(route, method).inc()
        log.error("unaudited %s %s (%s): %s", method, route, status, why)
        if get_settings().audit_strict:
            with _gaps_lock:
                GAPS.append((method, route, status, why))


__all__ = ["AuditGuard", "GAPS", "PERSONAL_READS", "PLAIN_READS", "UNAUDITED_WRITES", "gap_of", "must_audit"]
