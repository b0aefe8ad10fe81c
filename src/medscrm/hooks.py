"""In-process domain events: a lower layer announces what happened, higher layers subscribe.

The layers import only downwards (presentation → workflows → read models → persons → identity,
ingest → rules → db, common). Some facts still have to travel upwards: when OneID merges two
persons, the consents, sends and journey enrolments of the old person must follow it to the
survivor, and those live in higher layers. The lower layer does not import them; it calls
:func:`emit` with a topic and a payload, and whoever cares has subscribed with :func:`subscribe`.

* Handlers run synchronously, in subscription order, inside the caller's transaction (they get its
  ``conn``): what they write commits or rolls back with the change that caused it, and a handler
  that fails fails the change (a merge never commits with consents left behind).
* Subscribers are modules listed in :data:`SUBSCRIBERS`; :func:`emit` imports them before the first
  event is delivered, so an event is never lost because the process (a CLI command, a test) happened
  not to import the higher layer. The names are strings on purpose: this module stays at the bottom.
* :func:`emit` returns each handler's result by handler key, for reports and audit.

Topics and their payloads are listed below; a new topic is documented here first.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

#: persons merged or split by OneID (identity runs, incremental linking, review decisions).
#: payload: ``conn, tenant_id, merged: {old_id: survivor_id}, split: {old_id: [new_ids]}, now, actor``
PERSONS_MERGED = "persons.merged"

#: persons entered or left a segment (full recompute in segments.service, or the Refresher's
#: incremental changes in segments.fresh); one emit per segment and refresh, with the lists.
#: payload: ``conn, tenant_id, segment_id, entered: [person_id], exited: [person_id], now``
SEGMENT_CHANGED = "segments.changed"

#: a consent was granted or withdrawn (set_consent, or carried over by a merge/split), or a person
#: was put on or taken off do-not-contact.
#: payload: ``conn, tenant_id, changes: [{"kind": "consent", "person_id", "channel", "purpose",
#: "from", "to", "source", "actor", "at"} | {"kind": "dnc", "person_id", "dnc": bool, "reason",
#: "actor", "at"}]``
CONSENT_CHANGED = "consent.changed"

#: a send reached a final or notable state: ``blocked`` (a guardrail refused it, at request or at
#: dispatch), ``sent`` (the provider accepted it), ``delivered`` (delivery receipt), ``failed``.
#: payload: ``conn, tenant_id, send: {"send_id", "person_id", "channel", "purpose", "origin",
#: "content_id", "status", "reason", "error"}, at``
SEND_STATUS = "sends.status"


#: a content item was withdrawn (content library); its pending sends must not go out.
#: payload: ``conn, tenant_id, content_id, reason``; handlers return how many sends they cancelled
CONTENT_WITHDRAWN = "content.withdrawn"

TOPICS = frozenset({PERSONS_MERGED, CONTENT_WITHDRAWN, SEGMENT_CHANGED, CONSENT_CHANGED, SEND_STATUS})

#: modules that subscribe to topics when imported (higher layers), in delivery order
SUBSCRIBERS: tuple[str, ...] = (
    "medscrm.outreach.consent",
    "medscrm.outreach.send",
    "medscrm.journeys.triggers",
    "medscrm.webhooks.outbox",
)

Handler = Callable[..., Any]

_handlers: dict[str, dict[str, Handler]] = {}
_loaded = False
_lock = threading.Lock()


def subscribe(topic: str, key: str) -> Callable[[Handler], Handler]:
    """Decorator: call the function on every :func:`emit` of ``topic``. ``key`` names the handler
    (results are reported under it); subscribing the same key again replaces the handler, so a
    module imported twice (reloads in tests) never delivers twice."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; known: {sorted(TOPICS)}")

    def register(fn: Handler) -> Handler:
        with _lock:
            _handlers.setdefault(topic, {})[key] = fn
        return fn

    return register


def _load_subscribers() -> None:
    global _loaded
    if _loaded:
        return
    for name in SUBSCRIBERS:
        importlib.import_module(name)
    _loaded = True


def emit(topic: str, **payload: Any) -> dict[str, Any]:
    """Deliver ``payload`` to every handler of ``topic``; returns ``{handler key: result}``."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; known: {sorted(TOPICS)}")
    _load_subscribers()
    with _lock:
        handlers = list(_handlers.get(topic, {}).items())
    return {key: fn(**payload) for key, fn in handlers}


def handlers(topic: str) -> list[str]:
    """The keys of the handlers that an :func:`emit` of ``topic`` reaches, in delivery order."""
    _load_subscribers()
    with _lock:
        return list(_handlers.get(topic, {}))
