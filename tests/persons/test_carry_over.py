"""What a person said about contact survives identity changes (PIPL): a merged-away person's
consents (latest decision wins), do-not-contact and sends go to the survivor; a split carries
withdrawals and do-not-contact to every part, never a grant; a change naming a merged id lands on
the survivor."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from medscrm.common import new_id, utcnow
from medscrm.db.schema import audit_log, consent_history, journey_enrollments, journeys, persons, sends
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.journeys import service as js
from medscrm.outreach import consent
from medscrm.outreach.guardrails import cap_violation
from medscrm.persons.service import apply_clusters, load_records


def _people(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(
        "编号,姓名,手机\n1,张伟,13800138000\n2,张伟,13800138001\n3,张伟,13800138002\n4,王芳,13700137000\n",
        encoding="utf-8",
    )
    import_file(
        engine=tenant.engine, tenant_id=tenant.id, source="crm", path=f, mapping=Mapping(record_key="编号")
    )
    with tenant.engine.begin() as c:
        recs = load_records(c, tenant.id)
        key = {r["record_key"]: r["id"] for r in recs}
        rep = apply_clusters(
            c, tenant_id=tenant.id, clusters={"a": [key["1"]], "b": [key["2"], key["3"]], "c": [key["4"]]}
        )
    return key, rep.person_of["a"], rep.person_of["b"]


def _status(c, tenant, pid):
    return {
        (r["channel"], r["purpose"]): r["status"]
        for r in consent.list_consents(c, tenant_id=tenant.id, person_id=pid)
    }


def _send(c, tenant, pid, at):
    c.execute(
        sends.insert().values(
            id=new_id("snd"),
            tenant_id=tenant.id,
            person_id=pid,
            channel="sms",
            idempotency_key=new_id("k"),
            purpose="marketing",
            origin="test",
            status="sent",
            created_at=at,
            updated_at=at,
        )
    )


def test_a_merge_carries_consents_latest_first_dnc_and_sends_to_the_survivor(tenant, tmp_path):
    key, a, b = _people(tenant, tmp_path)
    now = utcnow()
    with tenant.engine.begin() as c:
        kw = {"tenant_id": tenant.id, "actor": "test"}
        # the survivor (b, two records) granted SMS marketing, then a (the same doctor) withdrew it
        consent.set_consent(
            c, person_id=b, channel="sms", purpose="marketing", status="granted", source="form", **kw
        )
        consent.set_consent(
            c, person_id=a, channel="sms", purpose="marketing", status="withdrawn", source="reply", **kw
        )
        # a granted surveys, then b withdrew them: b's later word stands
        consent.set_consent(
            c, person_id=a, channel="any", purpose="survey", status="granted", source="form", **kw
        )
        consent.set_consent(
            c, person_id=b, channel="any", purpose="survey", status="withdrawn", source="call", **kw
        )
        # only a gave e-mail consent, and asked not to be contacted at all
        consent.set_consent(
            c, person_id=a, channel="email", purpose="medical_info", status="granted", source="form", **kw
        )
        consent.set_dnc(c, person_id=a, reason="投诉 complaint", **kw)
        for h in (1, 2):
            _send(c, tenant, a, now - dt.timedelta(hours=h))
        # a is in journeys j1 and j2, b (the same doctor) in j1 already
        for jk in ("j1", "j2"):
            d = {
                "key": jk,
                "name": jk,
                "triggers": [{"type": "api"}],
                "steps": [{"id": "w", "type": "wait", "duration": "1d"}],
            }
            js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=now)
            js.start(c, tenant_id=tenant.id, key=jk, actor="test", now=now)
        js.enroll(c, tenant_id=tenant.id, key="j1", person_ids=[a, b], actor="test", now=now)
        js.enroll(c, tenant_id=tenant.id, key="j2", person_ids=[a], actor="test", now=now)
    with tenant.engine.begin() as c:
        rep = apply_clusters(
            c, tenant_id=tenant.id, clusters={"m": [key["1"], key["2"], key["3"]], "c": [key["4"]]}
        )
    assert rep.person_of["m"] == b and rep.merged == 1
    assert rep.carried == {
        "consents": 2,
        "dnc": 1,
        "sends": 2,
        "enrollments_moved": 1,
        "enrollments_exited": 1,
    }
    with tenant.engine.begin() as c:
        assert _status(c, tenant, b) == {
            ("sms", "marketing"): "withdrawn",
            ("any", "survey"): "withdrawn",
            ("email", "medical_info"): "granted",
        }
        assert not consent.has_consent(
            c, tenant_id=tenant.id, person_id=b, channel="sms", purpose="marketing"
        )
        assert consent.is_dnc(c, tenant_id=tenant.id, person_id=b)
        assert "complaint" in consent.get_dnc(c, tenant_id=tenant.id, person_id=b)["reason"]
        hist = c.execute(
            sa.select(
                consent_history.c.source, consent_history.c.new_status, consent_history.c.evidence
            ).where(consent_history.c.person_id == b, consent_history.c.source == "merge")
        ).all()
        assert sorted((s, st) for s, st, _ in hist) == [("merge", "granted"), ("merge", "withdrawn")]
        assert all(ev["from_person"] == a for _, _, ev in hist)
        actions = (
            c.execute(
                sa.select(audit_log.c.action).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.object_id == b
                )
            )
            .scalars()
            .all()
        )
        assert "dnc.add" in actions and actions.count("consent.withdraw") >= 1
        # a's sends are b's now: b's SMS frequency cap counts them
        moved = c.execute(sa.select(sa.func.count()).where(sends.c.person_id == b)).scalar_one()
        assert moved == 2
        policy = {"frequency_caps": {"sms": [{"max": 2, "hours": 24}]}}
        cap = cap_violation(
            c, tenant_id=tenant.id, person_id=b, channel="sms", purpose="marketing", policy=policy, now=now
        )
        assert cap == {"max": 2, "hours": 24, "count": 2}
        # a later change naming the merged-away id lands on the survivor
        consent.set_consent(
            c,
            tenant_id=tenant.id,
            person_id=a,
            channel="wecom",
            purpose="marketing",
            status="withdrawn",
            source="reply",
            actor="t",
        )
        assert _status(c, tenant, b)[("wecom", "marketing")] == "withdrawn"
        assert ("wecom", "marketing") not in _status(c, tenant, a)
        assert c.execute(sa.select(persons.c.status).where(persons.c.id == a)).scalar_one() == "merged"
    # running the same clustering again carries nothing twice
    with tenant.engine.begin() as c:
        again = apply_clusters(
            c, tenant_id=tenant.id, clusters={"m": [key["1"], key["2"], key["3"]], "c": [key["4"]]}
        )
    assert again.carried == {
        "consents": 0,
        "dnc": 0,
        "sends": 0,
        "enrollments_moved": 0,
        "enrollments_exited": 0,
    }
    # journeys: a's enrollment where b already was exits, the other one is b's now
    with tenant.engine.connect() as c:
        got = {
            (j, p, st)
            for j, p, st in c.execute(
                sa.select(journeys.c.key, journey_enrollments.c.person_id, journey_enrollments.c.status)
                .join(journeys, journeys.c.id == journey_enrollments.c.journey_id)
                .where(journey_enrollments.c.tenant_id == tenant.id)
            ).all()
        }
    assert got == {("j1", b, "active"), ("j1", a, "exited"), ("j2", b, "active")}


def test_a_split_carries_withdrawals_and_dnc_to_every_part_but_no_grant(tenant, tmp_path):
    key, a, b = _people(tenant, tmp_path)
    with tenant.engine.begin() as c:
        kw = {"tenant_id": tenant.id, "actor": "test"}
        consent.set_consent(
            c, person_id=b, channel="sms", purpose="marketing", status="withdrawn", source="reply", **kw
        )
        consent.set_consent(
            c, person_id=b, channel="email", purpose="marketing", status="granted", source="form", **kw
        )
        consent.set_dnc(c, person_id=b, reason="retired 已退休", **kw)
        _send(c, tenant, b, utcnow())
    with tenant.engine.begin() as c:  # b's two records were two doctors after all
        rep = apply_clusters(
            c,
            tenant_id=tenant.id,
            clusters={"a": [key["1"]], "b1": [key["2"]], "b2": [key["3"]], "c": [key["4"]]},
        )
    parts = {rep.person_of["b1"], rep.person_of["b2"]}
    assert b in parts and len(parts) == 2
    (new,) = parts - {b}
    assert rep.carried == {
        "consents": 1,
        "dnc": 1,
        "sends": 0,
        "enrollments_moved": 0,
        "enrollments_exited": 0,
    }
    with tenant.engine.connect() as c:
        assert _status(c, tenant, new) == {("sms", "marketing"): "withdrawn"}  # no e-mail grant
        assert consent.is_dnc(c, tenant_id=tenant.id, person_id=new)
        assert _status(c, tenant, b) == {("sms", "marketing"): "withdrawn", ("email", "marketing"): "granted"}
        # whose the send was is not known: it stays with the id it was sent to
        assert c.execute(sa.select(sa.func.count()).where(sends.c.person_id == b)).scalar_one() == 1
    # untouched persons gain nothing
    with tenant.engine.connect() as c:
        assert _status(c, tenant, a) == {} and not consent.is_dnc(c, tenant_id=tenant.id, person_id=a)
