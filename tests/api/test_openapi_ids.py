"""Every operation of the OpenAPI document has a readable, unique operationId: the route function's
name in snake_case (the generated client names its functions after it)."""

from __future__ import annotations

import re
from collections import Counter

from medscrm.app import create_app
from medscrm.db.engine import make_engine

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def test_operation_ids_are_unique_snake_case_route_names(tmp_path):
    engine = make_engine(f"duckdb:///{tmp_path / 'ids.duckdb'}")
    try:
        app = create_app(engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
        doc = app.openapi()
    finally:
        engine.dispose()
    ids = Counter()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            oid = op["operationId"]
            ids[oid] += 1
            assert SNAKE.fullmatch(oid), (method, path, oid)
            assert "api_v1" not in oid, (method, path, oid)  # not FastAPI's default (name_path_method)
    assert len(ids) > 50  # the whole API was walked
    assert [oid for oid, n in ids.items() if n > 1] == []
    # the route functions' names, e.g. api/webhooks.py's list_subscriptions for GET /api/v1/webhooks
    assert doc["paths"]["/api/v1/webhooks"]["get"]["operationId"] == "list_subscriptions"
    assert doc["paths"]["/api/v1/persons/{person_id}"]["get"]["operationId"] == "get_person"
    assert doc["paths"]["/v1/{kind}"]["post"]["operationId"] == "collect"
