"""Opening the workspace: the configured database, migrated, and the tenant to act on."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head

#: the tenant a brand-new workspace starts with, so that `medscrm import …` works in an empty folder
BOOTSTRAP_TENANT = "default"


@dataclass
class Workspace:
    engine: sa.Engine
    tenant_id: str
    tenant_slug: str


def open_workspace(tenant: str | None = None, url: str | None = None) -> Workspace:
    """The workspace at ``url`` (default: the configured database) acting on tenant ``tenant``
    (default: MEDSCRM_TENANT). The tenant must exist (`medscrm tenants create`): an unknown slug is
    an error naming the known ones, so a typo never creates a tenant. The one exception is a
    workspace without any tenant, which gets the tenant ``default`` on first use."""
    settings = get_settings()
    engine = get_engine(url or settings.database_url)
    upgrade_to_head(engine)
    slug = tenant or settings.tenant
    with engine.begin() as conn:
        if slug == BOOTSTRAP_TENANT and not accounts.list_tenants(conn=conn):
            t = accounts.ensure_tenant(conn=conn, slug=slug)
        else:
            t = accounts.require_tenant(conn=conn, slug=slug)
    return Workspace(engine=engine, tenant_id=t["id"], tenant_slug=slug)
