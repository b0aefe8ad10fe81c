"""Outbound webhook subscriptions: ``/api/v1/webhooks`` (permission ``webhooks.manage``: admin).

Create, list, read, change and delete subscriptions; list a subscription's deliveries with their
attempts; replay one delivery or every dead one; send a test ``ping``. The payloads and their
signature are described in docs/webhooks.md. Errors: ``{"error", "errors": [{"field", "reason"}]}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.webhooks import dispatch, service
from medscrm.webhooks.outbox import EVENT_TYPES

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=responses(*AUTH))
Manager = Annotated[Principal, require("webhooks.manage")]
NOT_FOUND = responses(404)

_EVENTS_DOC = (
    "Event types to receive: `*` (all), a type, or a group such as `segment.*`. Types: "
    + ", ".join(f"`{t}`" for t in EVENT_TYPES)
)


class SubscriptionIn(BaseModel):
    url: str = Field(
        max_length=2000, description="http(s) endpoint; private and loopback addresses are refused"
    )
    events: list[str] = Field(default_factory=lambda: ["*"], max_length=50, description=_EVENTS_DOC)
    description: str | None = Field(None, max_length=200)
    active: bool = True


class SubscriptionPatch(BaseModel):
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, max_length=50, description=_EVENTS_DOC)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None
    rotate_secret: bool = Field(
        False, description="Replace the signing secret; the answer shows the new one once"
    )


class Subscription(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    secret: str | None = Field(
        None, description="The signing secret: only in the answer of a create or a rotation, never again"
    )


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]
    event_types: list[str]


class Attempt(BaseModel):
    attempt: int
    attempted_at: dt.datetime
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class Delivery(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: Literal["pending", "delivering", "delivered", "dead"]
    attempts: int
    next_attempt_at: dt.datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    delivered_at: dt.datetime | None = None
    attempts_log: list[Attempt] = []


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


class Replayed(BaseModel):
    queued: int


@router.post(
    "",
    status_code=201,
    summary="Subscribe an endpoint to events",
    response_model=Subscription,
    responses=NOT_FOUND,
)
def create_subscription(body: SubscriptionIn, engine: EngineDep, p: Manager) -> Any:
    with engine.begin() as conn:
        return service.create(
            conn,
            tenant_id=p.tenant_id,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
            actor=p.actor,
        )


@router.get("", summary="The tenant's webhook subscriptions", response_model=SubscriptionList)
def list_subscriptions(engine: EngineDep, p: Manager) -> Any:
    with engine.connect() as conn:
        return {
            "subscriptions": service.list_subscriptions(conn, tenant_id=p.tenant_id),
            "event_types": list(EVENT_TYPES),
        }


@router.get(
    "/{subscription_id}", summary="One subscription", response_model=Subscription, responses=NOT_FOUND
)
def get_subscription(subscription_id: str, engine: EngineDep, p: Manager) -> Any:
    with engine.connect() as conn:
        return service.get(conn, tenant_id=p.tenant_id, subscription_id=subscription_id)


@router.patch(
    "/{subscription_id}",
    summary="Change a subscription (URL, events, active) or rotate its secret",
    response_model=Subscription,
    responses=NOT_FOUND,
)
def update_subscription(subscription_id: str, body: SubscriptionPatch, engine: EngineDep, p: Manager) -> Any:
    with engine.begin() as conn:
        return service.update(
            conn,
            tenant_id=p.tenant_id,
            subscription_id=subscription_id,
            actor=p.actor,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
            rotate_secret=body.rotate_secret,
        )


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Delete a subscription with its deliveries",
    responses=NOT_FOUND,
    response_class=Response,
    response_model=None,
)
def delete_subscription(subscription_id: str, engine: EngineDep, p: Manager) -> Response:
    with engine.begin() as conn:
        service.delete(conn, tenant_id=p.tenant_id, subscription_id=subscription_id, actor=p.actor)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    summary="Deliveries of a subscription, newest first, with every attempt",
    response_model=DeliveryList,
    responses=NOT_FOUND,
)
def list_deliveries(
    subscription_id: str,
    engine: EngineDep,
    p: Manager,
    status: Annotated[Literal["pending", "delivering", "delivered", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    with engine.connect() as conn:
        return {
            "deliveries": service.list_deliveries(
                conn,
                tenant_id=p.tenant_id,
                subscription_id=subscription_id,
                status=status,
                limit=limit,
                offset=offset,
            )
        }


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    summary="Queue one delivery again (fresh attempts; same event id)",
    response_model=Replayed,
    responses=NOT_FOUND,
)
def replay_delivery(subscription_id: str, delivery_id: str, engine: EngineDep, p: Manager) -> Any:
    with engine.begin() as conn:
        n = service.replay(
            conn,
            tenant_id=p.tenant_id,
            subscription_id=subscription_id,
            delivery_id=delivery_id,
            actor=p.actor,
        )
    return {"queued": n}


@router.post(
    "/{subscription_id}/replay",
    summary="Queue every dead delivery of the subscription again",
    response_model=Replayed,
    responses=NOT_FOUND,
)
def replay_dead(subscription_id: str, engine: EngineDep, p: Manager) -> Any:
    with engine.begin() as conn:
        n = service.replay(conn, tenant_id=p.tenant_id, subscription_id=subscription_id, actor=p.actor)
    return {"queued": n}


@router.post(
    "/{subscription_id}/ping",
    summary="Send a signed test event now and answer with its delivery",
    response_model=Delivery,
    responses=NOT_FOUND,
)
def ping(subscription_id: str, engine: EngineDep, p: Manager) -> Any:
    with engine.begin() as conn:
        did = service.queue_ping(conn, tenant_id=p.tenant_id, subscription_id=subscription_id)
        p.audit_write(conn, "webhook.ping", object_type="webhook_subscription", object_id=subscription_id)
    dispatch.deliver_now(engine, did, worker_id=f"ping:{p.token_id}")
    with engine.connect() as conn:
        rows = service.list_deliveries(conn, tenant_id=p.tenant_id, subscription_id=subscription_id, limit=5)
    return next(r for r in rows if r["id"] == did)
