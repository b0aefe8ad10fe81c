from alembic import context

from medscrm.db import migrate  # noqa: F401  (registers the DuckDB implementation)
from medscrm.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through medscrm.db.migrate
    raise RuntimeError("run migrations through `medscrm db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=False)
with context.begin_transaction():
    context.run_migrations()
