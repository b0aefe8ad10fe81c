"""One handler answers the domain errors (``MedscrmError``) that routes let through: NotFound → 404,
InvalidInput → 422 naming the field, any other → 409, in the ``ErrorList`` shape of api/errors.py;
under ``/v1/*`` in the collection API's flat Segment-style shape. Before, such an error was a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import InvalidInput, MedscrmError, NotFound

ERRORS = {
    "missing": NotFound("item_id: item 'x' not found"),
    "invalid": InvalidInput("valid_from", "must carry a time zone"),
    "refused": MedscrmError("status: the item is already approved"),
}


def _app(tenant, tmp_path):
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    for path in ("/api/v1/_raise/{kind}", "/v1/_raise/{kind}"):

        @app.get(path)
        def _raise(kind: str) -> None:
            raise ERRORS[kind]

    return app


def test_domain_errors_get_their_status_and_name_the_field(tenant, tmp_path):
    with TestClient(_app(tenant, tmp_path), raise_server_exceptions=False) as tc:
        r = tc.get("/api/v1/_raise/missing")
        assert r.status_code == 404
        assert r.json() == {
            "error": "not_found",
            "errors": [{"field": "item_id", "reason": "item_id: item 'x' not found"}],
        }
        r = tc.get("/api/v1/_raise/invalid")
        assert r.status_code == 422
        assert r.json()["errors"] == [{"field": "valid_from", "reason": "valid_from: must carry a time zone"}]
        r = tc.get("/api/v1/_raise/refused")
        assert (r.status_code, r.json()["error"], r.json()["errors"][0]["field"]) == (
            409,
            "refused",
            "status",
        )


def test_the_collection_api_keeps_its_flat_shape(tenant, tmp_path):
    with TestClient(_app(tenant, tmp_path), raise_server_exceptions=False) as tc:
        r = tc.get("/v1/_raise/invalid")
        assert r.status_code == 422
        assert r.json() == {
            "success": False,
            "error": "invalid_request",
            "field": "valid_from",
            "reason": "must carry a time zone",
        }


def test_a_real_route_answers_an_unknown_send_through_the_handler(tenant, tmp_path):
    with tenant.engine.begin() as conn:
        token = accounts.create_token(conn=conn, tenant_id=tenant.id, role="admin").token
    with TestClient(_app(tenant, tmp_path)) as tc:
        r = tc.get("/api/v1/sends/nope", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404
    assert r.json() == {
        "error": "not_found",
        "errors": [{"field": "send_id", "reason": "send_id: send 'nope' not found"}],
    }


def test_one_handler_words_each_router_s_answer():
    """The shape follows the router that raised (api/errors.py SHAPES); the field comes from the
    exception, else its message, else the route's only path parameter."""
    from medscrm.accounts.audit_writer import AuditFailed
    from medscrm.api import core, journeys, persons, scores, segments
    from medscrm.api.errors import from_medscrm_error, shape_of
    from medscrm.common import Conflict
    from medscrm.rules import RuleError
    from medscrm.rules.errors import Problem

    assert shape_of("/v1/track", None) == "segment"
    assert shape_of("/api/v1/journeys/x", journeys.get_journey) == "journey"
    assert shape_of("/api/v1/segments/x", segments.get_segment) == "rule"
    assert shape_of("/api/v1/persons/x", persons.get_person) == "detail"
    assert shape_of("/api/v1/quarantine/x/fix", core.fix_quarantine) == "detail"
    assert shape_of("/api/v1/scores/refresh", scores.refresh_scores) == "detail"
    assert shape_of("/api/v1/webhooks", None) == "default"

    gone = NotFound("person 'p1' not found")
    assert from_medscrm_error(gone, shape="detail", path_params={"person_id": "p1"}) == (
        404,
        {"detail": {"field": "person_id", "reason": "person 'p1' not found"}},
    )
    assert from_medscrm_error(NotFound("x", field="ids"), shape="detail") == (
        404,
        {"detail": {"field": "ids", "reason": "x"}},
    )
    assert from_medscrm_error(gone, shape="journey", path_params={"key": "k"}) == (
        404,
        {"error": "not_found", "errors": [{"path": "key", "reason": "person 'p1' not found"}]},
    )
    busy = Conflict("refresh", "already running")
    assert from_medscrm_error(busy, shape="detail") == (
        409,
        {"detail": {"field": "refresh", "reason": "already running"}},
    )
    assert from_medscrm_error(InvalidInput("key", "running"), shape="journey") == (
        409,
        {"error": "conflict", "errors": [{"path": "key", "reason": "running"}]},
    )
    bad_rule = RuleError([Problem("and[0].op", "unknown operator")])
    assert from_medscrm_error(bad_rule, shape="rule") == (
        422,
        {"error": "invalid_rule", "errors": [{"path": "and[0].op", "reason": "unknown operator"}]},
    )
    assert from_medscrm_error(bad_rule, shape="journey")[1]["error"] == "invalid_journey"
    assert from_medscrm_error(AuditFailed("audit store down"), shape="detail") == (
        503,
        {"detail": {"field": "audit", "reason": "audit store down"}},
    )
    # two path parameters and no field in the message: none is guessed
    assert from_medscrm_error(gone, path_params={"a": 1, "b": 2})[1]["errors"][0]["field"] is None


def test_real_routes_answer_in_their_router_s_shape(tenant, tmp_path):
    with tenant.engine.begin() as conn:
        token = accounts.create_token(conn=conn, tenant_id=tenant.id, role="admin").token
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(_app(tenant, tmp_path)) as tc:
        r = tc.get("/api/v1/journeys/nope", headers=auth)
        assert (r.status_code, r.json()) == (
            404,
            {"error": "not_found", "errors": [{"path": "key", "reason": "journey 'nope' not found"}]},
        )
        r = tc.get("/api/v1/segments/nope/members", headers=auth)
        assert (r.status_code, r.json()["errors"][0]["path"]) == (404, "key")
        r = tc.get("/api/v1/scores/persons/p_nobody", headers=auth)
        assert (r.status_code, r.json()["detail"]["field"]) == (404, "person_id")
        r = tc.post("/api/v1/quarantine/replay", json={"ids": ["q_nope"]}, headers=auth)
        assert (r.status_code, r.json()["detail"]["field"]) == (404, "ids")
        r = tc.get("/api/v1/persons/lookup", params={"type": "phone", "value": "not a phone"}, headers=auth)
        assert (r.status_code, r.json()["detail"]["field"]) == (422, "value")
