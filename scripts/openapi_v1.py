"""Print the OpenAPI document of ``/api/v1`` (the app's document, its other paths left out) as JSON.

Used by scripts/gen_client.sh to generate the Python client; the app is built on a throw-away
embedded database, so nothing outside is read or written."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def document() -> dict:
    from medscrm.app import create_app
    from medscrm.db.engine import make_engine

    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"duckdb:///{Path(d) / 'openapi.duckdb'}")
        try:
            doc = create_app(engine, spool_dir=Path(d) / "spool", fsync=False, refresher=False).openapi()
        finally:
            engine.dispose()
    doc = json.loads(json.dumps(doc))
    doc["paths"] = {p: v for p, v in doc["paths"].items() if p.startswith("/api/v1/")}
    return doc


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
