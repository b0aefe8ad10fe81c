"""Guardrails before every send: each refusal has its reason, is stored in the outbox and shows on
the person's timeline; quiet hours defer; caps are shared by every origin; idempotency."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from medscrm.common import InvalidInput
from medscrm.db.schema import sends
from medscrm.outreach import consent
from medscrm.outreach.guardrails import quiet_until, recipient_kind
from medscrm.outreach.send import SendRequest, request_send
from medscrm.outreach.settings import DEFAULT_POLICY, configure_channel, set_policy
from medscrm.profiles.events import query_events
from outreach.helpers import DAY, NIGHT, approved_item, grant, make_person, setup_email


def _req(tid, pid, cid, key, channel="email", origin="journey:j1:s1", **kw):
    return SendRequest(
        tenant_id=tid,
        person_id=pid,
        channel=channel,
        content_id=cid,
        idempotency_key=key,
        origin=origin,
        **kw,
    )


def _blocked_events(conn, tid, pid):
    return [
        e["properties"]["reason"]
        for e in query_events(conn, tenant_id=tid, person_id=pid, event="Send Blocked", limit=100)
    ]


def test_each_refusal_has_its_reason_and_is_on_the_timeline(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        hcp_item = approved_item(conn, tid)
        rx_item = approved_item(conn, tid, prescription=True)
        pub_item = approved_item(conn, tid, audience="public")
        draft = approved_item(conn, tid)  # then withdrawn below
        from medscrm.content import service as content

        content.withdraw(conn, tenant_id=tid, item_id=draft["id"], actor="rev")
        verified = make_person(
            conn, tid, email="v@h.example", phone="+8613800138000", license_no="110101199001011234"
        )
        unverified = make_person(conn, tid, email="u@h.example")
        patient = make_person(conn, tid, person_type="patient", email="p@x.example")
        no_mail = make_person(conn, tid, license_no="110101199001019999")
        dnc = make_person(conn, tid, email="d@h.example", license_no="110101199001015555")
        for p in (verified, unverified, patient, no_mail, dnc):
            grant(conn, tid, p)
        no_consent = make_person(conn, tid, email="n@h.example", license_no="110101199001017777")
        consent.set_dnc(conn, tenant_id=tid, person_id=dnc, reason="asked by phone", actor="rep1")
        cases = [
            (dnc, hcp_item, "email", "do_not_contact"),
            (no_consent, hcp_item, "email", "no_consent"),
            (patient, hcp_item, "email", "audience_not_allowed"),
            (patient, rx_item, "email", "audience_not_allowed"),
            (unverified, rx_item, "email", "not_verified_hcp"),
            (verified, draft, "email", "content_withdrawn"),
            (no_mail, hcp_item, "email", "no_address"),
            (verified, hcp_item, "sms", "no_credentials"),  # consent "any" covers sms; no SMS provider set
        ]
        got = {}
        for i, (pid, item, channel, _) in enumerate(cases):
            out = request_send(conn, _req(tid, pid, item["id"], f"k{i}", channel=channel), now=DAY)
            got[i] = out
        missing = request_send(conn, _req(tid, verified, "ct_nope", "k-missing"), now=DAY)
        no_content = request_send(conn, _req(tid, verified, None, "k-none"), now=DAY)
        ok = request_send(conn, _req(tid, verified, rx_item["id"], "k-ok"), now=DAY)
        pub_ok = request_send(conn, _req(tid, patient, pub_item["id"], "k-pub"), now=DAY)
    for i, (_pid, _item, _ch, reason) in enumerate(cases):
        assert (got[i].status, got[i].reason) == ("blocked", reason), (i, got[i])
    assert (missing.status, missing.reason) == ("blocked", "content_not_found")
    assert (no_content.status, no_content.reason) == ("blocked", "content_required")
    assert ok.status == "queued" and ok.reason is None
    assert pub_ok.status == "queued"
    with tenant.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(sends).where(sends.c.tenant_id == tid))}
        for i, (pid, _item, _ch, reason) in enumerate(cases):
            assert rows[got[i].send_id].status == "blocked" and rows[got[i].send_id].reason == reason
            assert reason in _blocked_events(conn, tid, pid)
        ev = query_events(conn, tenant_id=tid, person_id=patient, event="Send Blocked")[0]
        assert ev["properties"]["content_id"] and ev["properties"]["therapy_area"] == "diabetes"
        assert ev["properties"]["detail"]["recipient"] == "patient"


def test_consent_is_per_channel_and_purpose_and_withdrawal_wins(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        pid = make_person(conn, tid, email="a@h.example")
        assert not consent.has_consent(
            conn, tenant_id=tid, person_id=pid, channel="email", purpose="marketing"
        )
        grant(conn, tid, pid, channel="any", purpose="marketing")
        assert consent.has_consent(conn, tenant_id=tid, person_id=pid, channel="sms", purpose="marketing")
        assert not consent.has_consent(conn, tenant_id=tid, person_id=pid, channel="sms", purpose="survey")
        consent.set_consent(
            conn,
            tenant_id=tid,
            person_id=pid,
            channel="sms",
            purpose="marketing",
            status="withdrawn",
            source="sms_reply_TD",
            actor="system",
        )
        assert not consent.has_consent(conn, tenant_id=tid, person_id=pid, channel="sms", purpose="marketing")
        assert consent.has_consent(conn, tenant_id=tid, person_id=pid, channel="email", purpose="marketing")
        hist = consent.consent_log(conn, tenant_id=tid, person_id=pid)
        assert [(h["channel"], h["old_status"], h["new_status"]) for h in hist] == [
            ("sms", None, "withdrawn"),
            ("any", None, "granted"),
        ]
        with pytest.raises(InvalidInput) as exc:
            consent.set_consent(
                conn,
                tenant_id=tid,
                person_id=pid,
                channel="fax",
                purpose="marketing",
                status="granted",
                source="x",
                actor="a",
            )
        assert exc.value.field == "channel"
        with pytest.raises(InvalidInput) as exc:
            consent.set_consent(
                conn,
                tenant_id=tid,
                person_id=pid,
                channel="sms",
                purpose="marketing",
                status="maybe",
                source="x",
                actor="a",
            )
        assert exc.value.field == "status"
        from medscrm.common import NotFound

        with pytest.raises(NotFound):
            consent.set_consent(
                conn,
                tenant_id=tid,
                person_id="p_nobody",
                channel="sms",
                purpose="marketing",
                status="granted",
                source="x",
                actor="a",
            )


def test_quiet_hours_defer_to_the_morning_in_shanghai():
    pol = DEFAULT_POLICY
    # 22:30 Shanghai → 08:00 next morning Shanghai = 00:00 UTC next day
    assert quiet_until(NIGHT, pol) == dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC)
    # 06:00 Shanghai (22:00 UTC the day before) → 08:00 the same Shanghai day
    assert quiet_until(dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC), pol) == dt.datetime(
        2026, 11, 24, 0, 0, tzinfo=dt.UTC
    )
    assert quiet_until(DAY, pol) is None
    assert quiet_until(dt.datetime(2026, 11, 24, 12, 59, tzinfo=dt.UTC), pol) is None  # 20:59
    assert quiet_until(dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC), pol) is not None  # 21:00


def test_a_night_request_is_queued_for_the_morning_not_dropped(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        out = request_send(conn, _req(tid, pid, item["id"], "night"), now=NIGHT)
    assert out.status == "queued" and out.reason == "quiet_hours"
    assert out.not_before == dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC)


def test_frequency_cap_is_shared_by_journeys_and_reps(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        set_policy(
            conn,
            tenant_id=tid,
            changes={"frequency_caps": {"email": [{"max": 2, "hours": 24}]}},
            actor="admin",
        )
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        other = make_person(conn, tid, email="b@h.example", license_no="110101199001012345")
        grant(conn, tid, pid)
        grant(conn, tid, other)
        grant(conn, tid, pid, purpose="service")
        a = request_send(conn, _req(tid, pid, item["id"], "j1", origin="journey:jA:s1"), now=DAY)
        b = request_send(
            conn, _req(tid, pid, item["id"], "r1", origin="rep:zhang"), now=DAY + dt.timedelta(hours=1)
        )
        c = request_send(
            conn, _req(tid, pid, item["id"], "j2", origin="journey:jB:s4"), now=DAY + dt.timedelta(hours=2)
        )
        d = request_send(conn, _req(tid, other, item["id"], "o1"), now=DAY + dt.timedelta(hours=2))
        svc = request_send(
            conn,
            _req(tid, pid, None, "svc", purpose="service", variables={"body": "会议提醒"}),
            now=DAY + dt.timedelta(hours=2),
        )
        later = request_send(conn, _req(tid, pid, item["id"], "j3"), now=DAY + dt.timedelta(hours=25))
    assert [a.status, b.status] == ["queued", "queued"]
    assert (c.status, c.reason) == ("blocked", "frequency_cap")
    assert c.detail == {"max": 2, "hours": 24, "count": 2}
    assert d.status == "queued"  # per person
    assert svc.status == "queued"  # service notices are exempt from marketing caps
    assert later.status == "queued"  # at +25h the window has rolled past a: only b counts
    with pytest.raises(InvalidInput) as exc, tenant.engine.begin() as conn:
        set_policy(
            conn,
            tenant_id=tid,
            changes={"frequency_caps": {"email": [{"max": -1, "hours": 24}]}},
            actor="a",
        )
    assert exc.value.field == "frequency_caps.email[0].max"


def test_same_idempotency_key_twice_is_one_send(tenant):
    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid)
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        first = request_send(conn, _req(tid, pid, item["id"], "enr1:s1:1"), now=DAY)
    with tenant.engine.begin() as conn:
        again = request_send(conn, _req(tid, pid, item["id"], "enr1:s1:1"), now=DAY)
        n = conn.execute(
            sa.select(sa.func.count())
            .select_from(sends)
            .where(sends.c.tenant_id == tid, sends.c.idempotency_key == "enr1:s1:1")
        ).scalar()
    assert first.status == "queued"
    assert (again.status, again.send_id, again.existing_status) == ("duplicate", first.send_id, "queued")
    assert n == 1


def test_bad_requests_name_the_field(tenant):
    with tenant.engine.begin() as conn:
        for kw, field in [
            (dict(channel="fax"), "channel"),
            (dict(purpose="spam"), "purpose"),
            (dict(idempotency_key=""), "idempotency_key"),
            (dict(origin=""), "origin"),
        ]:
            args = dict(
                tenant_id=tenant.id, person_id="p", channel="email", idempotency_key="k", origin="rep:x"
            )
            args.update(kw)
            with pytest.raises(InvalidInput) as exc:
                request_send(conn, SendRequest(**args))
            assert exc.value.field == field


def test_recipient_kinds_define_verified_hcp():
    assert (
        recipient_kind({"person_type": "hcp", "attributes": {"license_no": "110101199001011234"}})
        == "verified_hcp"
    )
    assert recipient_kind({"person_type": "hcp", "attributes": {"hcp_verified": "true"}}) == "verified_hcp"
    assert recipient_kind({"person_type": "hcp", "attributes": {"hcp_verified": False}}) == "hcp"
    assert recipient_kind({"person_type": "hcp", "attributes": {}}) == "hcp"
    assert recipient_kind({"person_type": "patient", "attributes": {"license_no": "x"}}) == "patient"
    assert recipient_kind({"person_type": None, "attributes": {}}) == "public"


def test_credentials_are_sealed_and_never_returned(tenant):
    with tenant.engine.begin() as conn:
        shown = configure_channel(
            conn,
            tenant_id=tenant.id,
            channel="sms",
            provider="aliyun",
            settings={"access_key_id": "LTAI5t", "access_key_secret": "s3cr3t-value", "sign_name": "医药"},
            actor="admin",
        )
        raw = conn.execute(
            sa.text("SELECT secrets, settings FROM channel_configs WHERE tenant_id = :t"), {"t": tenant.id}
        ).one()
        from medscrm.db.schema import audit_log

        audit = [
            r
            for (r,) in conn.execute(sa.select(audit_log.c.detail).where(audit_log.c.tenant_id == tenant.id))
        ]
    assert shown["secrets"] == {"access_key_secret": "***"}
    assert "s3cr3t-value" not in str(raw[0]) and "s3cr3t-value" not in str(raw[1])
    assert "s3cr3t-value" not in str(audit)
    with pytest.raises(InvalidInput) as exc, tenant.engine.begin() as conn:
        configure_channel(conn, tenant_id=tenant.id, channel="sms", provider="twilio", settings={}, actor="a")
    assert exc.value.field == "provider"


def test_consent_withdrawn_after_queueing_stops_the_send_at_dispatch(tenant):
    from medscrm.outreach.send import dispatch_once

    tid = tenant.id
    with tenant.engine.begin() as conn:
        setup_email(conn, tid, port=1)  # never reached
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid, channel="email")
        out = request_send(conn, _req(tid, pid, item["id"], "k"), now=DAY)
        assert out.status == "queued"
        consent.set_consent(
            conn,
            tenant_id=tid,
            person_id=pid,
            channel="email",
            purpose="marketing",
            status="withdrawn",
            source="unsubscribe_link",
            actor="system",
        )
    assert dispatch_once(tenant.engine, worker_id="w", tenant_id=tid, now=DAY) == 1
    with tenant.engine.connect() as conn:
        row = conn.execute(sa.select(sends).where(sends.c.id == out.send_id)).mappings().one()
        reasons = _blocked_events(conn, tid, pid)
    assert (row["status"], row["reason"], row["attempts"]) == ("blocked", "no_consent", 0)
    assert reasons == ["no_consent"]
