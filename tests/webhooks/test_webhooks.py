"""Outbound webhooks end to end, on both engines, against a real HTTP receiver on loopback: domain
changes write outbox rows in their own transaction, the dispatcher POSTs them signed, retries with
backoff, gives up after N attempts, replays; tenants never see each other's events."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import as_utc, utcnow
from medscrm.db.schema import webhook_deliveries
from medscrm.outreach import consent
from medscrm.outreach import send as sending
from medscrm.segments import service as segs
from medscrm.webhooks import dispatch, outbox, service
from outreach.helpers import make_person
from webhooks.receiver import Receiver


def _subscribe(tenant, url, events=("*",)):
    with tenant.engine.begin() as c:
        return service.create(c, tenant_id=tenant.id, url=url, events=list(events), actor="test")


def _withdraw(tenant, pid, channel="sms"):
    with tenant.engine.begin() as c:
        consent.set_consent(
            c,
            tenant_id=tenant.id,
            person_id=pid,
            channel=channel,
            purpose="marketing",
            status="withdrawn",
            source="reply",
            actor="test",
        )


def _person(tenant, **kw):
    with tenant.engine.begin() as c:
        return make_person(c, tenant.id, **kw)


def _deliveries(tenant):
    with tenant.engine.connect() as c:
        d = webhook_deliveries
        return [dict(r) for r in c.execute(sa.select(d).where(d.c.tenant_id == tenant.id)).mappings()]


def _verified(req, secret):
    sig = req["headers"]["X-Medscrm-Signature"]
    return dispatch.verify(secret, sig, req["body"])


def test_a_consent_change_is_delivered_signed_with_the_subscription_secret(tenant):
    pid = _person(tenant)
    with Receiver() as rx:
        sub = _subscribe(tenant, rx.url, ["consent.changed"])
        _withdraw(tenant, pid)
        assert dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id) == {
            "delivered": 1,
            "retry": 0,
            "dead": 0,
        }
    (req,) = rx.requests
    assert _verified(req, sub["secret"])
    assert not dispatch.verify("whsec_wrong", req["headers"]["X-Medscrm-Signature"], req["body"])
    body = json.loads(req["body"])
    assert body["type"] == "consent.changed" and body["tenant_id"] == tenant.id
    assert body["data"] | {"at": None} == {
        "kind": "consent",
        "person_id": pid,
        "channel": "sms",
        "purpose": "marketing",
        "from": None,
        "to": "withdrawn",
        "source": "reply",
        "actor": "test",
        "at": None,
    }
    assert req["headers"]["X-Medscrm-Event-Id"] == body["id"]
    (row,) = _deliveries(tenant)
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["last_status_code"] == 200


def test_segment_entries_and_a_merge_are_delivered(tenant, tmp_path):
    from persons.test_carry_over import _people

    key, a, b = _people(tenant, tmp_path)
    with Receiver() as rx:
        sub = _subscribe(tenant, rx.url, ["segment.*", "person.merged"])
        with tenant.engine.begin() as c:
            segs.create(c, tenant_id=tenant.id, key="all", rule={"person_type": "hcp"})
        from medscrm.persons.service import apply_clusters

        with tenant.engine.begin() as c:
            rep = apply_clusters(
                c, tenant_id=tenant.id, clusters={"m": [key["1"], key["2"], key["3"]], "c": [key["4"]]}
            )
        assert rep.carried.get("webhooks") == 1
        dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id)
    bodies = [json.loads(r["body"]) for r in rx.requests]
    assert all(_verified(r, sub["secret"]) for r in rx.requests)
    by_type = {b_["type"]: b_["data"] for b_ in bodies}
    assert by_type["segment.entered"]["segment_key"] == "all"
    assert a in by_type["segment.entered"]["person_ids"] and b in by_type["segment.entered"]["person_ids"]
    assert by_type["person.merged"]["merges"] == [{"person_id": a, "into": b}]


def test_a_refresh_that_moves_many_persons_becomes_a_few_events(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "CHUNK", 2)
    with tenant.engine.begin() as c:
        for _ in range(5):
            make_person(c, tenant.id)
    _subscribe(tenant, "http://127.0.0.1:9/none", ["segment.entered"])
    with tenant.engine.begin() as c:
        segs.create(c, tenant_id=tenant.id, key="all", rule={"person_type": "hcp"})
    rows = _deliveries(tenant)
    assert sorted(len(r["payload"]["data"]["person_ids"]) for r in rows) == [1, 2, 2]
    assert len({r["event_id"] for r in rows}) == 3


def test_500_then_200_is_retried_after_a_backoff(tenant):
    pid = _person(tenant)
    with Receiver([500, 200]) as rx:
        sub = _subscribe(tenant, rx.url)
        _withdraw(tenant, pid)
        t0 = utcnow()
        assert dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=t0)["retry"] == 1
        (row,) = _deliveries(tenant)
        wait = (as_utc(row["next_attempt_at"]) - t0).total_seconds()
        assert 15 <= wait <= 30  # the first backoff: 30 s, jittered down to half at most
        # not due yet: nothing is sent
        assert dispatch.dispatch_once(
            tenant.engine, tenant_id=tenant.id, now=t0 + dt.timedelta(seconds=10)
        ) == {
            "delivered": 0,
            "retry": 0,
            "dead": 0,
        }
        assert len(rx.requests) == 1
        later = t0 + dt.timedelta(seconds=31)
        assert dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=later)["delivered"] == 1
    assert len(rx.requests) == 2
    # a retry is the same event (same id), signed again
    assert rx.requests[0]["headers"]["X-Medscrm-Event-Id"] == rx.requests[1]["headers"]["X-Medscrm-Event-Id"]
    assert all(_verified(r, sub["secret"]) for r in rx.requests)
    with tenant.engine.connect() as c:
        log = service.list_deliveries(c, tenant_id=tenant.id, subscription_id=sub["id"])[0]["attempts_log"]
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, 500), (2, 200)]
    assert all(a["latency_ms"] is not None for a in log) and "HTTP 500" in log[0]["error"]


def test_dead_after_n_attempts_then_replay_delivers(tenant):
    pid = _person(tenant)
    with Receiver([500]) as rx:
        sub = _subscribe(tenant, rx.url)
        _withdraw(tenant, pid)
        t = utcnow()
        for i in range(3):
            r = dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=t, max_attempts=3)
            t += dt.timedelta(hours=1)
            assert r == (
                {"delivered": 0, "retry": 0, "dead": 1} if i == 2 else {"delivered": 0, "retry": 1, "dead": 0}
            )
        assert dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=t, max_attempts=3)["dead"] == 0
        assert len(rx.requests) == 3
        (row,) = _deliveries(tenant)
        assert row["status"] == "dead" and row["attempts"] == 3
        rx.statuses = [200]
        with tenant.engine.begin() as c:
            assert service.replay(c, tenant_id=tenant.id, subscription_id=sub["id"], actor="test", now=t) == 1
        assert (
            dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=t, max_attempts=3)["delivered"]
            == 1
        )
        # replay of one delivery, whatever its state
        with tenant.engine.begin() as c:
            assert (
                service.replay(
                    c,
                    tenant_id=tenant.id,
                    subscription_id=sub["id"],
                    delivery_id=row["id"],
                    actor="test",
                    now=t,
                )
                == 1
            )
        assert dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, now=t)["delivered"] == 1
    assert len(rx.requests) == 5
    assert len({r["headers"]["X-Medscrm-Event-Id"] for r in rx.requests}) == 1


def test_events_of_another_tenant_never_reach_this_tenants_subscription(tenant):
    with tenant.engine.begin() as c:
        other = accounts.ensure_tenant(conn=c, slug=tenant.slug + "-b")["id"]
        other_pid = make_person(c, other)
        own_pid = make_person(c, tenant.id)
    with Receiver() as rx:
        _subscribe(tenant, rx.url)
        with tenant.engine.begin() as c:
            consent.set_dnc(c, tenant_id=other, person_id=other_pid, reason="asked", actor="test")
            consent.set_dnc(c, tenant_id=tenant.id, person_id=own_pid, reason="asked", actor="test")
        dispatch.dispatch_once(tenant.engine, tenant_id=other)
        dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id)
    # only this tenant's own change arrives
    assert [json.loads(r["body"])["data"]["person_id"] for r in rx.requests] == [own_pid]
    assert json.loads(rx.requests[0]["body"])["tenant_id"] == tenant.id
    with tenant.engine.connect() as c:
        d = webhook_deliveries
        assert c.execute(sa.select(sa.func.count()).where(d.c.tenant_id == other)).scalar() == 0


def test_no_outbox_rows_without_a_subscription_or_for_unwanted_types(tenant):
    pid = _person(tenant)
    _withdraw(tenant, pid)
    assert _deliveries(tenant) == []
    _subscribe(tenant, "http://127.0.0.1:9/none", ["send.delivered"])
    _withdraw(tenant, pid, channel="email")
    assert _deliveries(tenant) == []
    # an inactive subscription gets nothing either
    sub = _subscribe(tenant, "http://127.0.0.1:9/none", ["consent.changed"])
    with tenant.engine.begin() as c:
        service.update(c, tenant_id=tenant.id, subscription_id=sub["id"], active=False, actor="test")
    _withdraw(tenant, pid, channel="wecom")
    assert _deliveries(tenant) == []


def test_a_blocked_send_is_announced(tenant):
    pid = _person(tenant, phone="+8613800138000")
    _subscribe(tenant, "http://127.0.0.1:9/none", ["send.*"])
    with tenant.engine.begin() as c:
        out = sending.request_send(
            c,
            sending.SendRequest(
                tenant_id=tenant.id, person_id=pid, channel="sms", idempotency_key="k1", origin="test"
            ),
        )
    assert out.status == "blocked"
    (row,) = _deliveries(tenant)
    assert row["event_type"] == "send.blocked"
    assert row["payload"]["data"]["send_id"] == out.send_id and row["payload"]["data"]["reason"] == out.reason


def test_the_outbox_row_rolls_back_with_the_change(tenant):
    pid = _person(tenant)
    _subscribe(tenant, "http://127.0.0.1:9/none")
    with pytest.raises(RuntimeError), tenant.engine.begin() as c:
        consent.set_dnc(c, tenant_id=tenant.id, person_id=pid, reason="asked", actor="test")
        assert (
            len(
                c.execute(
                    sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.tenant_id == tenant.id)
                ).all()
            )
            == 1
        )
        raise RuntimeError("the change fails after the event")
    assert _deliveries(tenant) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/",
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://169.254.169.254/",
    ],
)
def test_private_addresses_are_refused_unless_allowed(monkeypatch, url):
    from medscrm.common import InvalidInput
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "0")
    get_settings.cache_clear()
    with pytest.raises(InvalidInput, match="private, loopback or reserved") as e:
        service.check_url(url)
    assert e.value.field == "url"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/hook", "http:///nohost", "http://u:p@example.com/"]
)
def test_bad_urls_are_refused_with_the_reason(url):
    from medscrm.common import InvalidInput

    with pytest.raises(InvalidInput) as e:
        service.check_url(url)
    assert e.value.field == "url"


def test_the_secret_is_stored_sealed(tenant):
    sub = _subscribe(tenant, "http://127.0.0.1:9/none")
    with tenant.engine.connect() as c:
        from medscrm.db.schema import webhook_subscriptions as w

        stored = c.execute(sa.select(w.c.secret).where(w.c.id == sub["id"])).scalar()
        assert sub["secret"].startswith("whsec_") and sub["secret"] not in stored
        assert service.signing_secret(c, tenant_id=tenant.id, subscription_id=sub["id"]) == sub["secret"]
        assert "secret" not in service.get(c, tenant_id=tenant.id, subscription_id=sub["id"])


def test_the_incremental_refresher_announces_entries_too(tenant):
    """The real-time path (segments.fresh: the Refresher's per-person re-evaluation) writes the event
    in its own transaction, as the full recompute does."""
    from medscrm.db.schema import events
    from medscrm.segments import fresh
    from rules.dataset import NOW, load
    from segments.test_fresh import ACTIVE, _event

    with tenant.engine.begin() as c:
        ids = load(c, tenant.id)
        segs.create(c, tenant_id=tenant.id, key="active", rule=ACTIVE, now=NOW)
    _subscribe(tenant, "http://127.0.0.1:9/none", ["segment.entered"])
    with tenant.engine.begin() as c:
        c.execute(sa.insert(events), [_event(tenant.id, "Article Viewed", user_id="u2")])
        changed = fresh.refresh_persons(
            c, tenant_id=tenant.id, person_ids=[ids["p2"]], now=NOW + dt.timedelta(minutes=1)
        )
    assert changed == {"active": {"entered": 1, "exited": 0}}
    (row,) = _deliveries(tenant)
    assert row["event_type"] == "segment.entered"
    assert row["payload"]["data"] == {
        "segment_id": row["payload"]["data"]["segment_id"],
        "segment_key": "active",
        "person_ids": [ids["p2"]],
    }
