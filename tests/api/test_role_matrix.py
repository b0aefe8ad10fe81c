"""Every mutating route against every role, on both engines, generated from the app's route table.

``API`` and ``CONSOLE`` declare the permission each route needs. The test fails when the app has a
route that the tables do not cover (a new route must say who may call it), when a table entry names
a route that is gone, and when an API route's ``require(...)`` dependency disagrees with the table.
Then every role calls every mutating route: a role without the permission gets 403 (never 2xx), a
role with it is never refused with 403."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.accounts.roles import ROLES, can
from medscrm.app import create_app
from medscrm.web import auth
from medscrm.web.i18n import MESSAGES
from web.conftest import csrf_of


class _Cookies:
    """What :func:`medscrm.web.auth.read_session` reads from a request: its cookies."""

    def __init__(self, jar) -> None:
        self.cookies = {auth.SESSION_COOKIE: jar.get(auth.SESSION_COOKIE)}


PUBLIC = "public"  # no credentials
TOKEN = "token"  # any valid API token
SESSION = "session"  # any signed-in console user

#: every /api/v1 route: (method, path) -> the permission it needs
API: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/me"): TOKEN,
    ("GET", "/api/v1/sources"): "data.read",
    ("GET", "/api/v1/imports"): "data.read",
    ("GET", "/api/v1/quarantine"): "quarantine.manage",
    ("POST", "/api/v1/quarantine/{entry_id}/fix"): "quarantine.manage",
    ("POST", "/api/v1/quarantine/replay"): "quarantine.manage",
    ("GET", "/api/v1/audit"): "audit.read",
    ("GET", "/api/v1/events"): "data.read",
    ("GET", "/api/v1/persons/lookup"): "data.read",
    ("GET", "/api/v1/persons"): "data.read",
    ("GET", "/api/v1/persons/{person_id}"): "data.read",
    ("GET", "/api/v1/persons/{person_id}/timeline"): "data.read",
    ("GET", "/api/v1/persons/{person_id}/records"): "data.read",
    ("POST", "/api/v1/segments/preview"): "data.read",
    ("POST", "/api/v1/segments"): "data.import",
    ("GET", "/api/v1/segments"): "data.read",
    ("GET", "/api/v1/segments/refresher"): "data.read",
    ("GET", "/api/v1/segments/{key}"): "data.read",
    ("PUT", "/api/v1/segments/{key}"): "data.import",
    ("POST", "/api/v1/segments/{key}/refresh"): "data.import",
    ("GET", "/api/v1/segments/{key}/members"): "data.read",
    ("GET", "/api/v1/segments/{key}/export.csv"): "data.read",
    ("POST", "/api/v1/tags"): "data.import",
    ("GET", "/api/v1/tags"): "data.read",
    ("POST", "/api/v1/tags/evaluate"): "data.import",
    ("GET", "/api/v1/persons/{person_id}/tags"): "data.read",
    ("GET", "/api/v1/scores/distributions"): "data.read",
    ("GET", "/api/v1/scores/micro-segments"): "data.read",
    ("POST", "/api/v1/scores/refresh"): "data.import",
    ("POST", "/api/v1/scores/micro-segments/refresh"): "data.import",
    ("GET", "/api/v1/scores/persons/{person_id}"): "data.read",
    ("GET", "/api/v1/tags/{key}/persons"): "data.read",
    ("POST", "/api/v1/journeys/validate"): "data.read",
    ("POST", "/api/v1/journeys"): "data.import",
    ("GET", "/api/v1/journeys"): "data.read",
    ("GET", "/api/v1/journeys/{key}"): "data.read",
    ("PUT", "/api/v1/journeys/{key}"): "data.import",
    ("POST", "/api/v1/journeys/{key}/start"): "data.import",
    ("GET", "/api/v1/journeys/{key}/current-members"): "data.read",
    ("POST", "/api/v1/journeys/{key}/pause"): "data.import",
    ("POST", "/api/v1/journeys/{key}/resume"): "data.import",
    ("POST", "/api/v1/journeys/{key}/stop"): "data.import",
    ("GET", "/api/v1/journeys/{key}/stats"): "data.read",
    ("POST", "/api/v1/journeys/{key}/enroll"): "data.import",
    ("GET", "/api/v1/journeys/{key}/results"): "data.read",
    ("GET", "/api/v1/tasks"): "data.read",
    ("POST", "/api/v1/tasks/{task_id}/complete"): "outreach.send",
    ("GET", "/api/v1/content"): "data.read",
    ("POST", "/api/v1/content"): "content.write",
    ("GET", "/api/v1/content/{item_id}"): "data.read",
    ("PATCH", "/api/v1/content/{item_id}"): "content.write",
    ("POST", "/api/v1/content/{item_id}/submit"): "content.write",
    ("POST", "/api/v1/content/{item_id}/approve"): "content.review",
    ("POST", "/api/v1/content/{item_id}/reject"): "content.review",
    ("POST", "/api/v1/content/{item_id}/withdraw"): "content.withdraw",
    ("GET", "/api/v1/persons/{person_id}/consents"): "data.read",
    ("PUT", "/api/v1/persons/{person_id}/consents"): "consent.manage",
    ("POST", "/api/v1/persons/{person_id}/dnc"): "data.read",  # opting a person out only ever protects
    ("DELETE", "/api/v1/persons/{person_id}/dnc"): "data.import",
    ("POST", "/api/v1/sends"): "outreach.send",
    ("GET", "/api/v1/sends"): "data.read",
    ("GET", "/api/v1/sends/{send_id}"): "data.read",
    ("GET", "/api/v1/compliance/sends"): "audit.read",
    ("GET", "/api/v1/compliance/sends.csv"): "audit.read",
    ("GET", "/api/v1/channels"): "data.read",
    ("PUT", "/api/v1/channels/{channel}"): "accounts.manage",
    ("GET", "/api/v1/outreach/policy"): "data.read",
    ("PUT", "/api/v1/outreach/policy"): "accounts.manage",
    ("POST", "/api/v1/identity/reviews/{review_id}/revoke"): "identity.manage",
    ("POST", "/api/v1/webhooks"): "webhooks.manage",
    ("GET", "/api/v1/webhooks"): "webhooks.manage",
    ("GET", "/api/v1/webhooks/{subscription_id}"): "webhooks.manage",
    ("PATCH", "/api/v1/webhooks/{subscription_id}"): "webhooks.manage",
    ("DELETE", "/api/v1/webhooks/{subscription_id}"): "webhooks.manage",
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): "webhooks.manage",
    ("POST", "/api/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay"): "webhooks.manage",
    ("POST", "/api/v1/webhooks/{subscription_id}/replay"): "webhooks.manage",
    ("POST", "/api/v1/webhooks/{subscription_id}/ping"): "webhooks.manage",
    ("POST", "/api/v1/dsr/lookup"): "privacy.manage",
    ("POST", "/api/v1/dsr/export"): "privacy.manage",
    ("POST", "/api/v1/dsr/erase"): "privacy.manage",
    ("POST", "/api/v1/dsr/correct"): "privacy.manage",
    ("POST", "/api/v1/dsr/restrict"): "privacy.manage",
    ("POST", "/api/v1/dsr/hold"): "privacy.manage",
    ("GET", "/api/v1/dsr/requests"): "privacy.manage",
    ("GET", "/api/v1/dsr/requests/{request_id}"): "privacy.manage",
    ("GET", "/api/v1/dsr/requests/{request_id}/certificate"): "privacy.manage",
    ("GET", "/api/v1/retention/policies"): "privacy.manage",
    ("PUT", "/api/v1/retention/policies/{category}"): "privacy.manage",
    ("POST", "/api/v1/retention/runs"): "privacy.manage",
    ("GET", "/api/v1/retention/runs"): "privacy.manage",
    ("GET", "/api/v1/sso"): "accounts.manage",
    ("PUT", "/api/v1/sso"): "accounts.manage",
    ("DELETE", "/api/v1/sso"): "accounts.manage",
}

#: every POST route of the console: (method, path) -> the permission it checks (``ctx.require``)
CONSOLE: dict[tuple[str, str], str | frozenset[str]] = {
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): SESSION,
    ("POST", "/hcps/{person_id}/unmerge"): "identity.manage",
    ("POST", "/identity/{review_id}/decide"): "identity.manage",
    ("POST", "/identity/{review_id}/revoke"): "identity.manage",
    ("POST", "/segments/preview"): frozenset({"admin", "marketer", "analyst", "compliance"}),  # not reps
    ("POST", "/segments/check"): frozenset({"admin", "marketer", "analyst", "compliance"}),  # not reps
    ("POST", "/segments/save"): "data.import",
    ("POST", "/imports"): "data.import",
    ("POST", "/quarantine/{entry_id}/fix"): "quarantine.manage",
    ("POST", "/quarantine/{entry_id}/replay"): "quarantine.manage",
    ("POST", "/quarantine/replay"): "quarantine.manage",
    ("POST", "/journeys/{key}/{action}"): "data.import",
    ("POST", "/content/new"): "content.write",
    ("POST", "/content/preview"): "content.write",
    ("POST", "/content/{item_id}/edit"): "content.write",
    ("POST", "/content/{item_id}/submit"): "content.write",
    ("POST", "/content/{item_id}/approve"): "content.review",
    ("POST", "/content/{item_id}/reject"): "content.review",
    ("POST", "/content/{item_id}/withdraw"): "content.withdraw",
    ("POST", "/tasks/{task_id}/close"): "outreach.send",
    ("POST", "/journeys/editor/check"): "data.import",
    ("POST", "/journeys/editor/save"): "data.import",
    ("POST", "/privacy/lookup"): "privacy.manage",
    ("POST", "/privacy/export"): "privacy.manage",
    ("POST", "/privacy/restrict"): "privacy.manage",
    ("POST", "/privacy/hold"): "privacy.manage",
    ("POST", "/privacy/erase"): "privacy.manage",
    ("POST", "/retention/policies/{category}"): "privacy.manage",
    ("POST", "/retention/dry-run"): "privacy.manage",
    ("POST", "/retention/run"): "privacy.manage",
    ("POST", "/sso"): "accounts.manage",
    ("POST", "/sso/disable"): "accounts.manage",
    ("POST", "/webhooks"): "webhooks.manage",
    ("POST", "/webhooks/{subscription_id}/{action}"): "webhooks.manage",
    ("POST", "/webhooks/{subscription_id}/deliveries/{delivery_id}/replay"): "webhooks.manage",
}

#: bodies that pass validation, so that a refusal cannot hide behind a 422
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/api/v1/sends"): {"person_id": "p_x", "channel": "email", "idempotency_key": "k"},
    ("PUT", "/api/v1/persons/{person_id}/consents"): {
        "channel": "email",
        "purpose": "marketing",
        "status": "granted",
        "source": "test",
    },
    ("POST", "/api/v1/persons/{person_id}/dnc"): {"reason": "test"},
    ("POST", "/api/v1/content/{item_id}/approve"): {"approval_code": "MLR-1"},
    ("POST", "/api/v1/content/{item_id}/reject"): {"reason": "no"},
    ("POST", "/api/v1/content/{item_id}/withdraw"): {"reason": "no"},
    ("PUT", "/api/v1/channels/{channel}"): {"provider": "smtp", "settings": {}},
    ("PUT", "/api/v1/outreach/policy"): {},
    # a public address given as an IP: no DNS look-up in the test
    ("POST", "/api/v1/webhooks"): {"url": "https://93.184.215.14/hook"},
    ("POST", "/api/v1/dsr/lookup"): {"identifier": "nobody"},
    ("POST", "/api/v1/dsr/export"): {"identifier": "nobody"},
    ("POST", "/api/v1/dsr/erase"): {"identifier": "nobody", "confirm": True},
    ("POST", "/api/v1/dsr/correct"): {"identifier": "nobody", "field": "hospital", "value": "x"},
    ("POST", "/api/v1/dsr/restrict"): {"identifier": "nobody", "reason": "r"},
    ("POST", "/api/v1/dsr/hold"): {"identifier": "nobody", "reason": "r"},
    ("PUT", "/api/v1/retention/policies/{category}"): {"keep_days": 2000},
    ("POST", "/api/v1/retention/runs"): {"dry_run": True},
}

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def allowed(role: str, rule: str | frozenset[str]) -> bool:
    """A rule is a permission (roles.PERMISSIONS) or, where a page checks more, the roles it lets in."""
    return role in rule if isinstance(rule, frozenset) else can(role, rule)


def _routes(app):
    """(method, path, route) of every route, through included routers."""
    stack = list(app.routes)
    while stack:
        r = stack.pop(0)
        contexts = getattr(r, "effective_route_contexts", None)
        if contexts is not None:  # an included router (FastAPI >= 0.16x keeps them unflattened)
            stack[:0] = list(contexts())
            continue
        for m in sorted(getattr(r, "methods", None) or ()):
            if m != "HEAD":
                yield m, r.path, r


def _declared(dependant) -> list[str]:
    """Permissions of the ``require(...)`` dependencies of a route."""
    found = []
    for d in dependant.dependencies:
        if getattr(d.call, "permission", None):
            found.append(d.call.permission)
        found += _declared(d)
    return found


def _is_console(route) -> bool:
    module = getattr(getattr(route, "endpoint", None), "__module__", None) or ""
    return module.startswith("medscrm.web.routes.")


def _url(path: str) -> str:
    return re.sub(
        r"\{(\w+)(:\w+)?\}", lambda m: "start" if m.group(1) == "action" else f"x_{m.group(1)}", path
    )


@pytest.fixture
def world(tenant, tmp_path):
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    tokens, passwords = {}, {}
    with tenant.engine.begin() as conn:
        for role in ROLES:
            passwords[role] = f"pw-{role}-{uuid.uuid4().hex[:8]}"
            u = accounts.create_user(
                conn=conn, tenant_id=tenant.id, username=f"u_{role}", role=role, password=passwords[role]
            )
            tokens[role] = accounts.create_token(
                conn=conn, tenant_id=tenant.id, role=role, user_id=u["id"]
            ).token
    return app, tenant, tokens, passwords


def test_the_tables_cover_every_route_and_match_the_routes_dependencies(world):
    app = world[0]
    api, console = {}, {}
    for m, path, r in _routes(app):
        if path.startswith("/api/v1/"):
            api[(m, path)] = r
        elif _is_console(r) and m in MUTATING:
            console[(m, path)] = r
    assert sorted(set(api) - set(API)) == [], "routes without a declared permission: add them to API"
    assert sorted(set(API) - set(api)) == [], "API names routes that are gone"
    assert sorted(set(console) - set(CONSOLE)) == [], "console routes without a declared permission"
    assert sorted(set(CONSOLE) - set(console)) == [], "CONSOLE names routes that are gone"
    for key, r in api.items():
        declared = _declared(r.dependant)
        expected = [] if API[key] in (PUBLIC, TOKEN) else [API[key]]
        assert declared == expected, f"{key}: require({declared}) but the table says {API[key]}"
    # the hole this guards: queueing a message needs the send permission
    assert not can("analyst", "outreach.send") and not can("compliance", "outreach.send")


@pytest.mark.parametrize("role", ROLES)
def test_every_mutating_api_route_refuses_a_role_without_its_permission(world, role):
    app, _tenant, tokens, _ = world
    c = TestClient(app, raise_server_exceptions=False)
    h = {"Authorization": f"Bearer {tokens[role]}"}
    checked = 0
    for (m, path), perm in API.items():
        if m not in MUTATING:
            continue
        r = c.request(m, _url(path), json=BODIES.get((m, path), {}), headers=h)
        if perm in (PUBLIC, TOKEN) or can(role, perm):
            assert r.status_code != 403, f"{role} {m} {path}: refused although it may {perm}: {r.text}"
            assert r.status_code < 500, f"{role} {m} {path}: {r.status_code} {r.text}"
        else:
            assert r.status_code == 403, f"{role} {m} {path} needs {perm}: got {r.status_code} {r.text}"
            checked += 1
        assert c.request(m, _url(path), json=BODIES.get((m, path), {})).status_code in (401, 403)
    assert checked or role == "admin"


@pytest.mark.parametrize("role", ROLES)
def test_every_console_post_refuses_a_role_without_its_permission(world, role):
    app, tenant, _, passwords = world
    c = TestClient(app, raise_server_exceptions=False)
    token = csrf_of(c.get("/login").text)
    r = c.post(
        "/login",
        data={
            "csrf_token": token,
            "tenant": tenant.slug,
            "username": f"u_{role}",
            "password": passwords[role],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    token = auth.read_session(_Cookies(c.cookies))["csrf"]  # the new session's CSRF token
    refused = MESSAGES["zh"]["error.403"]  # the role's refusal, not a CSRF failure (also 403)
    for (m, path), perm in CONSOLE.items():
        if perm in (PUBLIC, SESSION):
            continue
        r = c.request(m, _url(path), data={"csrf_token": token}, follow_redirects=False)
        if allowed(role, perm):
            assert r.status_code != 403 and r.status_code < 500, f"{role} {m} {path}: {r.status_code}"
        else:
            assert r.status_code == 403 and refused in r.text, (
                f"{role} {m} {path} needs {perm}: {r.status_code}"
            )
