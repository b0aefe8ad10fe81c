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
