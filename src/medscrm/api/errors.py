"""The API's error answers, as the OpenAPI document declares them.

Two shapes are in use, both naming the field (or the JSON path inside a rule or journey definition)
and the reason:

* ``{"error": "not_found", "errors": [{"field" | "path": …, "reason": …}], "field": …}`` — request
  validation (422), segments, journeys, outreach, webhooks;
* ``{"detail": {"field": …, "reason": …}}`` — the profiles, scores and ingest (quarantine) routes;
  routing errors of FastAPI itself (an unknown path, a wrong method) carry a plain string as ``detail``.

A domain error (:class:`~medscrm.common.MedscrmError`) is answered by the app's one handler through
:func:`from_medscrm_error`, worded by the router that raised it (:data:`SHAPES`); routes raise and
keep no error helpers of their own. :func:`responses` builds the ``responses=`` argument of a route
from the status codes it can answer, so that the document lists every status and its shape
(schemathesis checks the answers against it)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, RootModel

from medscrm.accounts.audit_writer import AuditFailed
from medscrm.common import Conflict, InvalidInput, MedscrmError, NotFound
from medscrm.journeys.model import JourneyError
from medscrm.rules import RuleError


class ErrorItem(BaseModel):
    field: str | None = Field(None, description="The request field at fault (query, body, path or header)")
    path: str | None = Field(None, description="A JSON path inside a segment rule or journey definition")
    reason: str


class ErrorList(BaseModel):
    error: str = Field(description="invalid_request, invalid_rule, invalid_journey, not_found, conflict, …")
    errors: list[ErrorItem]
    field: str | None = Field(None, description="The first field at fault (request validation)")


class FieldReason(BaseModel):
    field: str | None = None
    reason: str


class Detail(BaseModel):
    detail: FieldReason | str


class ApiError(RootModel[ErrorList | Detail]):
    """An error answer of medscrm: a list of problems, or a ``detail`` naming the field and the reason."""


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No Bearer token, or an unknown or revoked one",
    403: "The token's role may not do this",
    404: "Not found (for a rep token: also a person the rep does not own)",
    409: "Conflict with the current state (e.g. a refresh already running, a journey not in that state)",
    413: "Request too large",
    422: "Invalid request: the field and the reason",
    429: "Too many requests",
    503: "Temporarily unavailable (e.g. the audit row of a read could not be stored); retry",
}

#: what every route behind a Bearer token and a role check can answer
AUTH = (401, 403, 422)


#: how each router words its errors (by the module of the route that raised), where it is not the
#: default ``ErrorList`` naming ``field``: ``detail`` is ``{"detail": {"field", "reason"}}`` (the
#: profile, scores and ingest routes); ``rule`` and ``journey`` name a JSON ``path`` (the node of a
#: rule or definition, else the path parameter), and a journey refuses a state change with 409 ``conflict``
SHAPES = {
    "medscrm.api.persons": "detail",
    "medscrm.api.core": "detail",
    "medscrm.api.scores": "detail",
    "medscrm.api.segments": "rule",
    "medscrm.api.journeys": "journey",
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]]*")


def shape_of(path: str, endpoint: Any) -> str:
    """The answer shape for a request: ``segment`` on the collection API ``/v1/*``, else the one of the
    route's module (:data:`SHAPES`), else ``default``."""
    if path.startswith("/v1/"):
        return "segment"
    return SHAPES.get(getattr(endpoint, "__module__", ""), "default")


def _field_of(exc: MedscrmError, path_params: dict[str, Any]) -> str | None:
    """The field at fault: the exception's own, else the word before the message's first colon
    (messages read ``field: reason``), else the route's only path parameter."""
    if exc.field:
        return exc.field
    head, colon, _ = str(exc).partition(":")
    if colon and _IDENT.fullmatch(head):
        return head
    return next(iter(path_params)) if len(path_params) == 1 else None


def from_medscrm_error(
    exc: MedscrmError, *, shape: str = "default", path_params: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """The status and body that answer a :class:`~medscrm.common.MedscrmError` a route let through:
    ``NotFound`` → 404 ``not_found``; ``InvalidInput`` → 422 ``invalid_request`` naming its field; a
    rule or journey definition with problems (``as_list()``) → 422 ``invalid_rule`` / ``invalid_journey``
    with each problem at its path; ``AuditFailed`` → 503; any other → 409 ``refused`` (the request
    conflicts with the current state). ``shape`` (:func:`shape_of`) words the body."""
    field = _field_of(exc, path_params or {})
    reason = exc.reason if isinstance(exc, InvalidInput | Conflict) else str(exc)
    if isinstance(exc, NotFound):
        status, kind = 404, "not_found"
    elif isinstance(exc, AuditFailed):
        status, kind, field = 503, "unavailable", "audit"
    elif shape == "journey" and isinstance(exc, InvalidInput):
        status, kind, reason = 409, "conflict", exc.reason
    elif isinstance(exc, InvalidInput):
        status, kind = 422, "invalid_request"
    elif isinstance(exc, RuleError | JourneyError):
        kind = "invalid_journey" if shape == "journey" else "invalid_rule"
        return 422, {"error": kind, "errors": exc.as_list()}
    else:
        status, kind = 409, "refused"
    if shape == "segment":
        return status, {"success": False, "error": kind, "field": field, "reason": reason}
    if shape == "detail":
        return status, {"detail": {"field": field, "reason": reason}}
    if shape in ("rule", "journey") and status != 422:
        return status, {"error": kind, "errors": [{"path": field, "reason": reason}]}
    return status, {"error": kind, "errors": [{"field": field, "reason": str(exc)}]}


def responses(*codes: int, extra: dict[int, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status code with the project's error model; ``extra`` adds
    other entries by code (e.g. ``{200: {"content": {"image/gif": {}}}}``)."""
    out: dict[int | str, dict[str, Any]] = {
        c: {"model": ApiError, "description": _DESCRIPTIONS.get(c, "Error")} for c in sorted(set(codes))
    }
    out.update(extra or {})
    return out


def declare_body_errors(app: Any) -> None:
    """Every operation that reads a body can answer 400: FastAPI refuses a body it cannot decode (not
    UTF-8) with ``{"detail": "There was an error parsing the body"}`` before the route runs. Added to
    the generated document (``app.openapi``), once, for each operation with a request body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                if isinstance(op, dict) and "requestBody" in op:
                    op["responses"].setdefault(
                        "400",
                        {
                            "description": "The body could not be decoded (not UTF-8)",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}
                            },
                        },
                    )
        return schema

    app.openapi = openapi
