"""Opening the workspace: the configured database, migrated, with the tenant in place."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head


@dataclass
class Workspace:
    engine: sa.Engine
    tenant_id: str
    tenant_slug: str


def open_workspace(tenant: str | None = None, url: str | None = None) -> Workspace:
    settings = get_settings()
    engine = get_engine(url or settings.database_url)
    upgrade_to_head(engine)
    slug = tenant or settings.tenant
    with engine.begin() as conn:
        t = accounts.ensure_tenant(conn=conn, slug=slug)
    return Workspace(engine=engine, tenant_id=t["id"], tenant_slug=slug)
