"""Console webhooks (admin: ``webhooks.manage``): the tenant's outbound subscriptions with their last
delivery, creating one (its signing secret shown once, in the answer to the form), pause/resume,
secret rotation, deletion, and each subscription's delivery log with a replay per delivery.

Every change goes through :mod:`medscrm.webhooks.service`, which writes the audit row (the console
user is the actor), exactly as the API does.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import Response

from medscrm.common import InvalidInput, NotFound
from medscrm.web.auth import Ctx
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render
from medscrm.webhooks import service
from medscrm.webhooks.outbox import EVENT_TYPES

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

#: what the create form offers: every event (``*``) or single types
TOPICS = ("*", *EVENT_TYPES)
#: actions on a subscription that change its state and go back to where the form was
STATE_ACTIONS = {"pause": {"active": False}, "resume": {"active": True}}


def _manager(ctx: Ctx) -> None:
    ctx.require("webhooks.manage")


def _list_page(ctx: Ctx, status: int = 200, **kw: Any) -> Response:
    with _engine(ctx.request).connect() as conn:
        subs = service.list_subscriptions(conn, tenant_id=ctx.tenant_id)
        for s in subs:
            last = service.list_deliveries(
                conn, tenant_id=ctx.tenant_id, subscription_id=s["id"], limit=1, attempts=False
            )
            s["last_delivery"] = last[0] if last else None
    kw.setdefault("error", None)
    kw.setdefault("new_secret", None)
    kw.setdefault("form", {"url": "", "description": "", "events": ["*"]})
    return render(ctx, "webhooks.html", status, subs=subs, topics=TOPICS, **kw)


@router.get("/webhooks")
def webhooks_page(ctx: Page) -> Response:
    _manager(ctx)
    return _list_page(ctx)


@router.post("/webhooks")
def webhook_create(
    ctx: Page,
    _: Csrf,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a subscription; the answer is the page itself with the secret, which is never shown again
    (a redirect would have to carry it in the URL)."""
    _manager(ctx)
    form = {"url": url, "description": description, "events": events or []}
    if not events:
        return _list_page(ctx, 400, form=form, error=ctx.t("wh.err_no_topics"))
    try:
        with _engine(ctx.request).begin() as conn:
            created = service.create(
                conn,
                tenant_id=ctx.tenant_id,
                url=url,
                events=events,
                description=description.strip() or None,
                actor=ctx.actor,
            )
    except InvalidInput as exc:
        return _list_page(ctx, 400, form=form, error=f"{exc.field}: {exc.reason}")
    return _list_page(
        ctx, new_secret={"id": created["id"], "url": created["url"], "secret": created["secret"]}
    )


@router.post("/webhooks/{subscription_id}/{action}")
def webhook_action(ctx: Page, _: Csrf, subscription_id: str, action: str) -> Response:
    """pause, resume and delete go back to the list; rotate answers with the new secret, once."""
    _manager(ctx)
    engine = _engine(ctx.request)
    if action in STATE_ACTIONS:
        with engine.begin() as conn:
            service.update(
                conn,
                tenant_id=ctx.tenant_id,
                subscription_id=subscription_id,
                actor=ctx.actor,
                **STATE_ACTIONS[action],
            )
        return _redirect(ctx, "/webhooks")
    if action == "delete":
        with engine.begin() as conn:
            service.delete(conn, tenant_id=ctx.tenant_id, subscription_id=subscription_id, actor=ctx.actor)
        return _redirect(ctx, "/webhooks")
    if action == "rotate":
        with engine.begin() as conn:
            updated = service.update(
                conn,
                tenant_id=ctx.tenant_id,
                subscription_id=subscription_id,
                actor=ctx.actor,
                rotate_secret=True,
            )
        return _list_page(
            ctx, new_secret={"id": updated["id"], "url": updated["url"], "secret": updated["secret"]}
        )
    raise NotFound(f"action {action!r}")


@router.get("/webhooks/{subscription_id}")
def webhook_deliveries(ctx: Page, subscription_id: str, replayed: str = "") -> Response:
    _manager(ctx)
    with _engine(ctx.request).connect() as conn:
        sub = service.get(conn, tenant_id=ctx.tenant_id, subscription_id=subscription_id)
        deliveries = service.list_deliveries(
            conn, tenant_id=ctx.tenant_id, subscription_id=subscription_id, limit=100
        )
    return render(ctx, "webhook_deliveries.html", sub=sub, deliveries=deliveries, replayed=replayed)


@router.post("/webhooks/{subscription_id}/deliveries/{delivery_id}/replay")
def webhook_replay(ctx: Page, _: Csrf, subscription_id: str, delivery_id: str) -> Response:
    _manager(ctx)
    with _engine(ctx.request).begin() as conn:
        service.replay(
            conn,
            tenant_id=ctx.tenant_id,
            subscription_id=subscription_id,
            delivery_id=delivery_id,
            actor=ctx.actor,
        )
    return _redirect(ctx, f"/webhooks/{quote(subscription_id)}?replayed={quote(delivery_id)}")
