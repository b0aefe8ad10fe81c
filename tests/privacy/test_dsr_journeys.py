"""A restricted person takes no journey step until the restriction is lifted (DuckDB and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from journeys.support import NOW, define_tags, linear, make_persons
from medscrm.db.schema import journey_enrollments, person_tags
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.privacy import service as dsr


def _tick(tenant, now):
    return je.tick(tenant.engine, worker_id="w", now=now, tenant_id=tenant.id, dispatch_sends=False)


def test_restricted_person_is_held_in_the_journey(tenant):
    d = linear("dsr_j", [{"id": "t", "type": "add_tag", "tag": "t1", "value": "yes"}])
    with tenant.engine.begin() as c:
        a, b = make_persons(c, tenant.id, 2)
        define_tags(c, tenant.id, "t1")
        js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key="dsr_j", actor="test", now=NOW)
        dsr.restrict(c, tenant_id=tenant.id, identifier=a, kind="person_id", actor="dpo", reason="Art. 44")
        js.enroll(c, tenant_id=tenant.id, key="dsr_j", person_ids=[a, b], actor="test", now=NOW)
    _tick(tenant, NOW)
    with tenant.engine.connect() as c:
        tagged = set(
            c.execute(
                sa.select(person_tags.c.person_id).where(
                    person_tags.c.tenant_id == tenant.id, person_tags.c.tag_key == "t1"
                )
            ).scalars()
        )
        held = c.execute(
            sa.select(journey_enrollments.c.status, journey_enrollments.c.last_error).where(
                journey_enrollments.c.person_id == a
            )
        ).one()
    assert tagged == {b}
    assert tuple(held) == ("active", "processing_restricted")
    with tenant.engine.begin() as c:
        dsr.restrict(c, tenant_id=tenant.id, identifier=a, kind="person_id", actor="dpo", lift=True)
    _tick(tenant, NOW + dt.timedelta(hours=2))
    with tenant.engine.connect() as c:
        tagged = set(
            c.execute(
                sa.select(person_tags.c.person_id).where(
                    person_tags.c.tenant_id == tenant.id, person_tags.c.tag_key == "t1"
                )
            ).scalars()
        )
    assert tagged == {a, b}
