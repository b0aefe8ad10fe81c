"""Data-subject requests (PIPL Arts. 44–47) on DuckDB and PostgreSQL: every table with personal data
is covered, export holds it all, erasure leaves no trace and suppresses the person's return,
restriction blocks sends, legal hold refuses erasure, an unknown identifier changes nothing."""

from __future__ import annotations

import io
import json
import zipfile

import orjson
import pytest
import sqlalchemy as sa

from medscrm.common import NotFound, new_id
from medscrm.db import schema as s
from medscrm.ingest.importer import import_file
from medscrm.ingest.store import LINES, store_lines
from medscrm.privacy import service as dsr
from medscrm.privacy.tables import NO_PERSONAL_DATA, PERSON_TABLES, unclassified
from privacy.helpers import dump_text, plant


def test_every_table_is_classified():
    """A new table must be handled by the DSR code or declared free of personal data, with why."""
    names = list(s.metadata.tables)
    assert unclassified(names) == [], "add the table to privacy.tables (PERSON_TABLES or NO_PERSONAL_DATA)"
    assert not set(PERSON_TABLES) & set(NO_PERSONAL_DATA)
    assert set(PERSON_TABLES) | set(NO_PERSONAL_DATA) == set(names)
    assert all(reason.strip() for reason in NO_PERSONAL_DATA.values())


def test_export_holds_a_row_of_every_table(tenant):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        req, blob = dsr.export(
            c, tenant_id=tenant.id, identifier=p.local_phone, actor="dpo", reason="Art. 45 access"
        )
    assert req["status"] == "done" and req["kind"] == "export"
    z = zipfile.ZipFile(io.BytesIO(blob))
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["person_id"] == p.person_id and manifest["request_id"] == req["id"]
    missing = [t for t in PERSON_TABLES if manifest["tables"][t] < 1]
    assert missing == [], f"export found no row of {missing}"
    for name, digest in manifest["files"].items():
        import hashlib

        assert hashlib.sha256(z.read(name)).hexdigest() == digest
    records = orjson.loads(z.read("tables/source_records.json"))
    assert records[0]["raw"]["手机"] == p.local_phone
    assert p.email in z.read("tables/persons.csv").decode("utf-8-sig")
    # the request log and the audit row carry no identifier in clear
    with tenant.engine.connect() as c:
        logged = dsr.list_requests(c, tenant_id=tenant.id)
        audit = c.execute(sa.select(s.audit_log).where(s.audit_log.c.object_id == req["id"])).mappings().one()
    assert (
        logged[0]["id"] == req["id"]
        and p.local_phone not in repr(logged)
        and p.phone not in repr(dict(audit))
    )


def test_any_identifier_finds_the_person(tenant):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
        for ident, kind in (
            (p.person_id, "auto"),
            (p.record_id, "auto"),
            (p.local_phone, "auto"),
            ("+86 " + p.local_phone, "phone"),
            (p.email.upper(), "email"),
        ):
            assert dsr.find_person(c, tenant_id=tenant.id, identifier=ident, kind=kind) == p.person_id


def test_erase_leaves_no_trace_and_a_certificate(tenant):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
        other = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        req = dsr.erase(c, tenant_id=tenant.id, identifier=p.email, actor="dpo", reason="Art. 47")
    assert req["status"] == "done"
    cert = dsr.certificate(tenant.engine.connect(), tenant_id=tenant.id, request_id=req["id"])
    assert cert["sha256"] == __import__("hashlib").sha256(dsr.canonical(cert["certificate"])).hexdigest()
    body = cert["certificate"]
    assert body["rows_removed"]["events"] >= 1 and body["rows_removed"]["source_records"] == 1
    assert body["rows_anonymised"]["audit_log"] >= 1 and body["tombstones"] >= 3
    with tenant.engine.connect() as c:
        dump = dump_text(c)
        held = dsr.counts(c, dsr.subject(c, tenant_id=tenant.id, person_id=other.person_id))
    for needle in (p.phone, p.local_phone, p.email, p.name, p.user_id):
        assert needle not in dump, f"{needle!r} is still stored"
    assert p.email not in json.dumps(body, ensure_ascii=False)
    # the other person is untouched
    assert all(held[t] >= 1 for t in PERSON_TABLES)
    assert other.email in dump
    # audit rows keep the action, not the data
    with tenant.engine.connect() as c:
        kept = c.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.detail).where(
                s.audit_log.c.tenant_id == tenant.id, s.audit_log.c.object_id == p.person_id
            )
        ).all()
    assert ("consent.change", {"erased_by_request": req["id"]}) in [tuple(r) for r in kept]
    with tenant.engine.connect() as c, pytest.raises(NotFound, match="no person found"):
        dsr.find_person(c, tenant_id=tenant.id, identifier=p.email)


def test_reimport_and_new_events_of_an_erased_person_are_suppressed(tenant, tmp_path):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        dsr.erase(c, tenant_id=tenant.id, identifier=p.person_id, actor="dpo")
    f = tmp_path / "crm.csv"
    f.write_text(
        f"姓名,手机,邮箱,医院\n{p.name},{p.local_phone},{p.email},协和医院\n张三,13912345678,zs@example.cn,协和医院\n",
        encoding="utf-8",
    )
    rep = import_file(engine=tenant.engine, tenant_id=tenant.id, source="crm", path=f)
    assert rep.status == "committed" and rep.rows_suppressed == 1 and rep.rows_accepted == 1
    # a new event with the erased user id, and an identify with the erased e-mail under a new user id
    line = {
        "t": tenant.id,
        "s": p.source_id,
        "type": "track",
        "mid": new_id("m"),
        "event": "Viewed",
        "uid": p.user_id,
        "ts": 1_700_000_000_000_000,
        "rat": 1_700_000_000_000_000,
        "props": {},
        "ctx": {},
    }
    ident = {
        **line,
        "type": "identify",
        "mid": new_id("m"),
        "uid": "u-new-" + new_id("x"),
        "traits": {"email": p.email, "name": p.name},
    }
    keep = {**line, "mid": new_id("m"), "uid": "someone-else-" + new_id("x")}
    chunk = LINES + b"\n".join(orjson.dumps(x) for x in (line, ident, keep)) + b"\n"
    with tenant.engine.begin() as c:
        stored = store_lines(c, [chunk])
    assert stored == 1
    with tenant.engine.connect() as c:
        dump = dump_text(c)
        suppressed = c.execute(
            sa.select(sa.func.sum(s.dsr_tombstones.c.suppressed)).where(
                s.dsr_tombstones.c.tenant_id == tenant.id
            )
        ).scalar()
    for needle in (p.phone, p.local_phone, p.email, p.name, p.user_id):
        assert needle not in dump
    assert suppressed == 3


def test_a_quarantined_row_fixed_into_an_erased_person_is_discarded_on_replay(tenant, tmp_path):
    """A row quarantined with no erased identifier, then fixed to carry one, is not stored."""
    from medscrm.ingest import quarantine as qs

    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        dsr.erase(c, tenant_id=tenant.id, identifier=p.person_id, actor="dpo")
    f = tmp_path / "crm2.csv"
    f.write_text("姓名,手机,邮箱,医院\n新医生,13912345678,not-an-email,协和医院\n", encoding="utf-8")
    rep = import_file(engine=tenant.engine, tenant_id=tenant.id, source="crm2", path=f)
    assert rep.rows_rejected == 1 and rep.rows_suppressed == 0
    with tenant.engine.begin() as c:
        (entry,) = qs.list_entries(conn=c, tenant_id=tenant.id, status="open")
        qs.fix(conn=c, tenant_id=tenant.id, entry_id=entry["id"], changes={"邮箱": p.email}, actor="t")
        res = qs.replay(conn=c, tenant_id=tenant.id, entry_ids=[entry["id"]], actor="t")
    assert res["replayed"] == [] and res["suppressed"] == [entry["id"]]
    with tenant.engine.connect() as c:
        row = c.execute(sa.select(s.quarantine).where(s.quarantine.c.id == entry["id"])).mappings().one()
        assert row["status"] == "discarded" and row["fixed_payload"] is None
        assert p.email not in dump_text(c)
        stored = c.execute(
            sa.select(sa.func.count())
            .select_from(s.source_records)
            .where(s.source_records.c.tenant_id == tenant.id)
        ).scalar()
    assert stored == 0


@pytest.fixture
def loopback_webhooks(monkeypatch):
    """Subscriptions may name a loopback address (never called here)."""
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_erasure_and_restriction_are_announced_to_webhook_subscribers(tenant, loopback_webhooks):
    from medscrm.webhooks import outbox
    from medscrm.webhooks import service as hooks_service

    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
        q = plant(c, tenant.id)
        c.execute(sa.delete(s.person_restrictions).where(s.person_restrictions.c.tenant_id == tenant.id))
        c.execute(sa.delete(s.webhook_deliveries).where(s.webhook_deliveries.c.tenant_id == tenant.id))
        sub = hooks_service.create(
            c, tenant_id=tenant.id, url="http://127.0.0.1:9/hook", events=["person.*"], actor="t"
        )
    outbox.invalidate(tenant.id)
    with tenant.engine.begin() as c:
        req = dsr.erase(c, tenant_id=tenant.id, identifier=p.email, actor="dpo")
        dsr.restrict(c, tenant_id=tenant.id, identifier=q.email, actor="dpo", reason="Art. 44 objection")
        dsr.restrict(c, tenant_id=tenant.id, identifier=q.email, actor="dpo", lift=True)
    with tenant.engine.connect() as c:
        got = c.execute(
            sa.select(s.webhook_deliveries.c.event_type, s.webhook_deliveries.c.payload)
            .where(s.webhook_deliveries.c.subscription_id == sub["id"])
            .order_by(s.webhook_deliveries.c.created_at)
        ).all()
    kinds = [t for t, _ in got]
    assert kinds == ["person.erased", "person.restricted", "person.restricted"]
    erased = got[0][1]["data"]
    assert erased["person_ids"] == [p.person_id] and erased["request_id"] == req["id"]
    assert erased["certificate_sha256"] == req["certificate_sha256"]
    assert p.email not in json.dumps(got, ensure_ascii=False, default=str)
    assert [d["data"]["restricted"] for _, d in got[1:]] == [True, False]
    assert {d["data"]["person_id"] for _, d in got[1:]} == {q.person_id}


def test_restrict_blocks_sends_segments_and_is_lifted(tenant):
    from medscrm.outreach.send import SendRequest, request_send
    from medscrm.segments import service as segs

    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
        rule = {"attr": "name", "op": "eq", "value": p.name}
        c.execute(sa.delete(s.person_restrictions).where(s.person_restrictions.c.tenant_id == tenant.id))
        c.execute(sa.delete(s.persons_dnc).where(s.persons_dnc.c.tenant_id == tenant.id))
        segs.create(c, tenant_id=tenant.id, key="all_hcps", name="all", rule=rule, created_by="t")
        assert p.person_id in segs.preview(c, tenant_id=tenant.id, rule=rule)["sample"]
    with tenant.engine.begin() as c:
        req = dsr.restrict(
            c, tenant_id=tenant.id, identifier=p.email, actor="dpo", reason="Art. 44 objection"
        )
    assert req["status"] == "done"
    with tenant.engine.begin() as c:
        out = request_send(
            c,
            SendRequest(
                tenant_id=tenant.id,
                person_id=p.person_id,
                channel="email",
                idempotency_key=new_id("k"),
                origin="api",
                purpose="service",
            ),
        )
        assert out.status == "blocked" and out.reason == "processing_restricted"
        row = c.execute(
            sa.select(s.sends.c.status, s.sends.c.reason).where(s.sends.c.id == out.send_id)
        ).one()
        assert tuple(row) == ("blocked", "processing_restricted")
        assert segs.preview(c, tenant_id=tenant.id, rule=rule)["count"] == 0
        assert segs.refresh(c, tenant_id=tenant.id, key="all_hcps")["member_count"] == 0
    with tenant.engine.begin() as c:
        dsr.restrict(c, tenant_id=tenant.id, identifier=p.email, actor="dpo", lift=True)
    with tenant.engine.begin() as c:
        out = request_send(
            c,
            SendRequest(
                tenant_id=tenant.id,
                person_id=p.person_id,
                channel="email",
                idempotency_key=new_id("k"),
                origin="api",
                purpose="service",
            ),
        )
        assert out.reason != "processing_restricted"
        assert segs.refresh(c, tenant_id=tenant.id, key="all_hcps")["member_count"] == 1


def test_legal_hold_refuses_erasure(tenant):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        dsr.hold(c, tenant_id=tenant.id, identifier=p.person_id, actor="legal", reason="litigation 2026-17")
    with tenant.engine.begin() as c:
        req = dsr.erase(c, tenant_id=tenant.id, identifier=p.person_id, actor="dpo")
    assert req["status"] == "refused" and req["refusal_code"] == "legal_hold"
    assert "legal hold" in req["result"]["why"] and "litigation" in req["result"]["why"]
    with tenant.engine.connect() as c:
        assert p.email in dump_text(c)
        assert (
            dsr.held(c, tenant_id=tenant.id, identifier=p.email)["legal_hold"]["reason"]
            == "litigation 2026-17"
        )
    with tenant.engine.begin() as c:
        dsr.hold(c, tenant_id=tenant.id, identifier=p.person_id, actor="legal", release=True)
    with tenant.engine.begin() as c:
        assert dsr.erase(c, tenant_id=tenant.id, identifier=p.person_id, actor="dpo")["status"] == "done"


def test_correct_changes_the_golden_record_with_provenance(tenant):
    with tenant.engine.begin() as c:
        p = plant(c, tenant.id)
    with tenant.engine.begin() as c:
        req = dsr.correct(
            c,
            tenant_id=tenant.id,
            identifier=p.email,
            field="hospital",
            value="北京协和医院",
            actor="dpo",
            reason="typo",
        )
    with tenant.engine.connect() as c:
        attrs, lineage = c.execute(
            sa.select(s.persons.c.attributes, s.persons.c.lineage).where(s.persons.c.id == p.person_id)
        ).one()
        audit = c.execute(
            sa.select(s.audit_log.c.action).where(s.audit_log.c.object_id == req["id"])
        ).scalar()
    assert attrs["hospital"] == "北京协和医院"
    assert (
        lineage["hospital"]["source"] == "dsr-corrections" and lineage["hospital"]["request_id"] == req["id"]
    )
    assert audit == "dsr.correct"
    with tenant.engine.begin() as c, pytest.raises(Exception, match="field"):
        dsr.correct(c, tenant_id=tenant.id, identifier=p.email, field="salary", value="1", actor="dpo")


def test_unknown_identifier_changes_nothing(tenant):
    with tenant.engine.begin() as c:
        plant(c, tenant.id)
    with tenant.engine.connect() as c:
        before = dump_text(c)
    for fn in (dsr.export, dsr.erase, dsr.restrict, dsr.hold):
        with (
            tenant.engine.begin() as c,
            pytest.raises(NotFound, match="no person found for identifier '13700000000'"),
        ):
            fn(c, tenant_id=tenant.id, identifier="13700000000", actor="dpo", reason="r")
    with tenant.engine.connect() as c:
        assert dump_text(c) == before
