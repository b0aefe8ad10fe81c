"""Starting a segment-entry journey enrols the segment's current members (the default of the API,
the CLI and the console's start dialog), under the re-entry rules and caps of a normal entry; off,
only persons who enter from now on join. DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from journeys.support import NOW, define_tags, make_persons
from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import audit_log, journey_enrollments
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.segments import service as segs
from web.conftest import csrf_of


def _definition(key: str, cap: int | None = None) -> dict:
    d = {
        "key": key,
        "name": key,
        "triggers": [{"type": "segment_entry", "segment": "cardio"}],
        "steps": [{"id": "t", "type": "add_tag", "tag": "t1", "value": "in"}],
    }
    if cap is not None:
        d["caps"] = {"max_enrollments": cap}
    return d


def _world(tenant, *keys: str) -> list[str]:
    """Ten persons, segment cardio (the five even ones), draft journeys ``keys`` entering on it
    (the one named ``capped`` takes two persons at most)."""
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, 10)  # even ones are cardiologists: 5 members
        define_tags(c, tenant.id, "t1")
        segs.create(
            c,
            tenant_id=tenant.id,
            key="cardio",
            rule={"attr": "department", "op": "eq", "value": "心血管内科"},
            now=NOW,
        )
        segs.refresh(c, tenant_id=tenant.id, key="cardio", now=NOW)
        for k in keys:
            js.create(
                c,
                tenant_id=tenant.id,
                definition=_definition(k, 2 if k == "capped" else None),
                actor="test",
                now=NOW,
            )
    return pids


def _enrolled(tenant, key: str) -> set[str]:
    with tenant.engine.connect() as c:
        jid = js.get_journey(c, tenant_id=tenant.id, key=key)["id"]
        return set(
            c.execute(
                sa.select(journey_enrollments.c.person_id).where(
                    journey_enrollments.c.tenant_id == tenant.id, journey_enrollments.c.journey_id == jid
                )
            ).scalars()
        )


def test_start_enrols_current_members_or_only_new_entrants(tenant):
    pids = _world(tenant, "now", "later", "capped")
    cardio = {p for i, p in enumerate(pids) if i % 2 == 0}
    with tenant.engine.begin() as c:
        assert js.current_members(c, tenant_id=tenant.id, key="now") == {"segments": ["cardio"], "count": 5}
        j = js.start(c, tenant_id=tenant.id, key="now", actor="test", now=NOW, enrol_current=True)
        assert j["enrolled_at_start"] == {"enrolled": 5, "skipped": {}}
        j = js.start(c, tenant_id=tenant.id, key="later", actor="test", now=NOW, enrol_current=False)
        assert "enrolled_at_start" not in j
        # the normal entry's caps apply
        j = js.start(c, tenant_id=tenant.id, key="capped", actor="test", now=NOW, enrol_current=True)
        assert j["enrolled_at_start"]["enrolled"] == 2
        assert j["enrolled_at_start"]["skipped"] == {"max_enrollments": 3}
    assert _enrolled(tenant, "now") == cardio
    assert _enrolled(tenant, "later") == set()
    # the trigger's next polls do not enrol the current members a second time
    je.tick(tenant.engine, worker_id="w", now=NOW, tenant_id=tenant.id, dispatch_sends=False)
    with tenant.engine.connect() as c:
        n = c.execute(
            sa.select(sa.func.count()).where(
                journey_enrollments.c.tenant_id == tenant.id,
                journey_enrollments.c.journey_id == js.get_journey(c, tenant_id=tenant.id, key="now")["id"],
            )
        ).scalar()
        assert n == 5
        detail = c.execute(
            sa.select(audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant.id,
                audit_log.c.action == "journey.start",
                audit_log.c.object_id == "now",
            )
        ).scalar()
        assert detail["enrol_current"] is True and detail["enrolled_at_start"] == 5


def test_the_api_the_cli_and_the_console_default_to_enrolling(tenant, monkeypatch):
    pids = _world(tenant, "api_on", "api_off", "cli_on", "cli_off", "web_on", "web_off")
    cardio = {p for i, p in enumerate(pids) if i % 2 == 0}
    with tenant.engine.begin() as c:
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="marketer").token
        accounts.create_user(
            conn=c, tenant_id=tenant.id, username="mk", role="marketer", password="pw-12345678"
        )
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(tenant.engine)) as api:
        assert api.get("/api/v1/journeys/api_on/current-members", headers=h).json() == {
            "segments": ["cardio"],
            "count": 5,
        }
        r = api.post("/api/v1/journeys/api_on/start", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["enrolled_at_start"]["enrolled"] == 5
        r = api.post("/api/v1/journeys/api_off/start", params={"enrol_current": "false"}, headers=h)
        assert r.status_code == 200 and "enrolled_at_start" not in r.json()

        # the console: the start dialog states the count, ticked by default
        csrf = csrf_of(api.get("/login").text)
        api.post(
            "/login",
            data={"csrf_token": csrf, "tenant": tenant.slug, "username": "mk", "password": "pw-12345678"},
            follow_redirects=False,
        )
        for lang, text in (
            ("en", "Enrol current members now: 5 persons (segment cardio)"),
            ("zh", "立即纳入分群现有成员：5 人（分群 cardio）"),
        ):
            api.cookies.set("medscrm_lang", lang)
            page = api.get("/journeys").text
            assert text in page, lang
            assert 'name="enrol_current" value="1" checked' in page
        csrf = csrf_of(page)
        r = api.post(
            "/journeys/web_on/start",
            data={"csrf_token": csrf, "enrol_choice": "1", "enrol_current": "1"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        r = api.post(
            "/journeys/web_off/start", data={"csrf_token": csrf, "enrol_choice": "1"}, follow_redirects=False
        )
        assert r.status_code == 303, r.text

    from medscrm.cli import app
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_DATABASE_URL", tenant.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        run = CliRunner()
        r = run.invoke(app, ["journeys", "start", "cli_on", "--tenant", tenant.slug])
        assert r.exit_code == 0, r.output
        assert "current members enrolled now: 5" in r.output
        r = run.invoke(app, ["journeys", "start", "cli_off", "--no-enrol-current", "--tenant", tenant.slug])
        assert r.exit_code == 0, r.output
    finally:
        get_settings.cache_clear()

    for key in ("api_on", "cli_on", "web_on"):
        assert _enrolled(tenant, key) == cardio, key
    for key in ("api_off", "cli_off", "web_off"):
        assert _enrolled(tenant, key) == set(), key
