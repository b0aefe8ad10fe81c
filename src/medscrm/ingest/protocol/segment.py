"""Segment-spec collection messages: decode, validate, normalise.

Pure protocol code — no web framework, no database. The HTTP layer calls :func:`decode_body`,
:func:`write_key_from` and :func:`parse_batch` / :func:`parse_message`, and stores each
:class:`Message` as one row.

What is accepted, per the Segment spec and what real clients send:

* ``type`` from the body or the endpoint (``/v1/track`` → ``type_hint="track"``); if both are
  given they must agree;
* ``userId`` or ``anonymousId`` (one of them non-null and non-empty; numbers become strings);
  ``alias`` needs ``previousId`` and ``userId``; ``group`` needs ``groupId`` too; ``track`` needs
  a string ``event``;
* ``null`` for any optional field (segment-analytics-python sends ``"anonymousId": null``);
* timestamps as ISO-8601 strings ('Z', offsets, fractional seconds; naive means UTC);
* ``sentAt`` on the message or on the batch; ``context`` on the batch is merged under the
  message's own;
* 32 KB per serialised message, 500 KB per batch request.

Clock skew: when the client sends its event time (``timestamp``, else ``originalTimestamp``) and
``sentAt``, the stored ``timestamp`` is ``receivedAt - (sentAt - eventTime)``; with no ``sentAt``
the client's time is kept; with neither, ``receivedAt``.

``messageId`` is the de-duplication key. Clients should always send one: when it is missing a
random ``ms-<uuid4>`` is assigned, so a retried message without an id cannot be de-duplicated.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "TYPES",
    "Message",
    "MessageError",
    "decode_body",
    "parse_batch",
    "parse_message",
    "parse_timestamp",
    "write_key_from",
]

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
TYPES = ("track", "identify", "page", "screen", "group", "alias")

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class MessageError(Exception):
    """A problem with one field of a message (or with the request body)."""

    field: str  # JSON path like "batch[3].userId" or "event"
    reason: str  # English, names what is wrong
    code: str  # missing_field, wrong_type, too_large, unknown_type, invalid_timestamp, ...

    def __str__(self) -> str:
        return f"{self.field}: {self.reason} ({self.code})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason, self.code))

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "code": self.code}


# A frozen dataclass forbids *every* attribute assignment, which breaks exception machinery that
# sets dunder attributes (contextlib sets __traceback__, add_note sets __notes__). Keep the
# fields frozen, let the interpreter's own attributes through.
_frozen_setattr = MessageError.__setattr__


def _exception_setattr(self: MessageError, name: str, value: Any) -> None:
    if name.startswith("__") and name.endswith("__"):
        object.__setattr__(self, name, value)
    else:
        _frozen_setattr(self, name, value)


MessageError.__setattr__ = _exception_setattr  # type: ignore[method-assign]


@dataclass
class Message:
    """One normalised message, ready to store as a row in the events table."""

    type: str
    message_id: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    name: str | None  # page/screen name
    timestamp: datetime  # corrected, tz-aware UTC
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    integrations: dict[str, Any] = field(default_factory=dict)


# -- helpers ---------------------------------------------------------------------------------------
def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_timestamp(value: Any, field_path: str) -> datetime | None:
    """ISO-8601 string → tz-aware UTC datetime; ``None`` → ``None``; else ``invalid_timestamp``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError(field_path, "must be an ISO-8601 date-time string", "invalid_timestamp")
    text = value.strip()
    if not text or len(text) > 64:
        raise MessageError(field_path, "must be an ISO-8601 date-time string", "invalid_timestamp")
    try:
        return _as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError) as exc:
        raise MessageError(
            field_path, f"is not an ISO-8601 date-time: {text[:40]!r}", "invalid_timestamp"
        ) from exc


def _id(obj: dict[str, Any], key: str, path: str) -> str | None:
    """An identifier: string or number (→ str); null, empty or blank → None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise MessageError(_join(path, key), "must be a string or a number", "wrong_type")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MessageError(_join(path, key), "must be a finite number", "wrong_type")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise MessageError(_join(path, key), "must be a string or a number", "wrong_type")


def _text(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MessageError(_join(path, key), "must be a string", "wrong_type")


def _object(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise MessageError(_join(path, key), "must be an object", "wrong_type")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` onto ``base`` (``over`` wins; nested objects merge)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _serialised_size(obj: Any, path: str) -> int:
    try:
        return len(orjson.dumps(obj))
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise MessageError(path or "message", "is not JSON-serialisable", "wrong_type") from exc


# -- messages --------------------------------------------------------------------------------------
def parse_message(
    obj: Any,
    *,
    received_at: datetime,
    type_hint: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    path: str = "",
) -> Message:
    """Validate and normalise one Segment message. Raises :class:`MessageError` only."""
    where = path or "message"
    if not isinstance(obj, dict):
        raise MessageError(where, "must be a JSON object", "wrong_type")
    if any(not isinstance(k, str) for k in obj):
        raise MessageError(where, "keys must be strings", "wrong_type")
    size = _serialised_size(obj, path)
    if size > MAX_EVENT_BYTES:
        raise MessageError(where, f"is {size} bytes serialised; the limit is {MAX_EVENT_BYTES}", "too_large")

    # type
    raw_type = obj.get("type")
    if raw_type is not None and not isinstance(raw_type, str):
        raise MessageError(_join(path, "type"), "must be a string", "wrong_type")
    if raw_type is not None and type_hint is not None and raw_type != type_hint:
        raise MessageError(
            _join(path, "type"),
            f"is {raw_type[:40]!r} but the endpoint accepts {type_hint!r}",
            "type_mismatch",
        )
    msg_type = raw_type if raw_type is not None else type_hint
    if msg_type is None:
        raise MessageError(_join(path, "type"), "is required", "missing_field")
    if msg_type not in TYPES:
        raise MessageError(
            _join(path, "type"),
            f"{msg_type[:40]!r} is not one of {', '.join(TYPES)}",
            "unknown_type",
        )

    # identities
    user_id = _id(obj, "userId", path)
    anonymous_id = _id(obj, "anonymousId", path)
    previous_id = _id(obj, "previousId", path)
    group_id = _id(obj, "groupId", path)
    if msg_type == "alias":
        if previous_id is None:
            raise MessageError(_join(path, "previousId"), "is required for alias", "missing_field")
        if user_id is None:
            raise MessageError(_join(path, "userId"), "is required for alias", "missing_field")
    elif user_id is None and anonymous_id is None:
        raise MessageError(
            _join(path, "userId"), "userId or anonymousId is required (non-empty)", "missing_field"
        )
    if msg_type == "group" and group_id is None:
        raise MessageError(_join(path, "groupId"), "is required for group", "missing_field")

    # event / name
    event = _text(obj, "event", path)
    if msg_type == "track" and (event is None or not event.strip()):
        if event is None:
            raise MessageError(_join(path, "event"), "is required for track", "missing_field")
        raise MessageError(_join(path, "event"), "must not be empty", "missing_field")
    name = _text(obj, "name", path)

    message_id = _id(obj, "messageId", path) or f"ms-{uuid.uuid4()}"

    # objects
    properties = _object(obj, "properties", path)
    traits = _object(obj, "traits", path)
    context = _object(obj, "context", path)
    integrations = _object(obj, "integrations", path)
    if batch_context:
        context = _merge(batch_context, context)
    channel = obj.get("channel")
    if isinstance(channel, str) and channel and "channel" not in context:
        context["channel"] = channel  # rudder-sdk adds "channel": "server"
    if msg_type == "identify":
        context_traits = context.get("traits")
        if isinstance(context_traits, dict) and context_traits:
            traits = {**context_traits, **traits}
    if msg_type == "page":
        category = obj.get("category")
        if isinstance(category, str) and category:
            properties.setdefault("category", category)

    # timestamps
    received = _as_utc(received_at)
    client_ts = parse_timestamp(obj.get("timestamp"), _join(path, "timestamp"))
    original_ts = parse_timestamp(obj.get("originalTimestamp"), _join(path, "originalTimestamp"))
    sent_at = parse_timestamp(obj.get("sentAt"), _join(path, "sentAt"))
    if sent_at is None and batch_sent_at is not None:
        sent_at = _as_utc(batch_sent_at)
    event_time = client_ts if client_ts is not None else original_ts
    ts_field = "timestamp" if client_ts is not None else "originalTimestamp"
    if event_time is None:
        timestamp = received
    elif sent_at is None:
        timestamp = event_time
    else:
        try:
            timestamp = received - (sent_at - event_time)
        except OverflowError as exc:
            raise MessageError(
                _join(path, ts_field),
                "clock-skew correction against sentAt falls outside the representable range",
                "invalid_timestamp",
            ) from exc

    return Message(
        type=msg_type,
        message_id=message_id,
        event=event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        group_id=group_id,
        name=name,
        timestamp=timestamp,
        original_timestamp=original_ts if original_ts is not None else client_ts,
        sent_at=sent_at,
        received_at=received,
        properties=properties,
        traits=traits,
        context=context,
        integrations=integrations,
    )


def parse_batch(
    body: Any, *, received_at: datetime
) -> tuple[list[Message], list[tuple[int, MessageError, Any]]]:
    """Parse ``{"batch": [...], "sentAt": ..., "context": {...}, "writeKey": ...}``.

    Returns the good messages and, for each bad item, ``(index, error, raw item)``: one bad item
    does not reject the others. A body that is not a batch at all (or whose batch-level ``sentAt``
    / ``context`` is invalid) raises :class:`MessageError`.
    """
    if not isinstance(body, dict):
        raise MessageError("body", "must be a JSON object", "wrong_type")
    items = body.get("batch")
    if items is None:
        raise MessageError("batch", "is required", "missing_field")
    if not isinstance(items, list):
        raise MessageError("batch", "must be an array", "wrong_type")
    batch_sent_at = parse_timestamp(body.get("sentAt"), "sentAt")
    batch_context = body.get("context")
    if batch_context is not None and not isinstance(batch_context, dict):
        raise MessageError("context", "must be an object", "wrong_type")

    good: list[Message] = []
    bad: list[tuple[int, MessageError, Any]] = []
    for index, item in enumerate(items):
        try:
            good.append(
                parse_message(
                    item,
                    received_at=received_at,
                    batch_sent_at=batch_sent_at,
                    batch_context=batch_context,
                    path=f"batch[{index}]",
                )
            )
        except MessageError as exc:
            bad.append((index, exc, item))
    return good, bad


# -- request bodies --------------------------------------------------------------------------------
def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress (possibly multi-member) gzip, never producing more than ``limit`` bytes."""
    out = bytearray()
    data = raw
    while True:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decompressor.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise MessageError("body", f"is not valid gzip: {exc}", "invalid_encoding") from exc
        out += chunk
        if len(out) > limit:
            raise MessageError("body", f"decompresses to more than {limit} bytes", "too_large")
        if not decompressor.eof:
            if decompressor.unconsumed_tail:  # stopped by max_length with input left over
                raise MessageError("body", f"decompresses to more than {limit} bytes", "too_large")
            raise MessageError("body", "is truncated gzip", "invalid_encoding")
        data = decompressor.unused_data
        if not data.strip(b"\x00"):
            return bytes(out)
        if not data.startswith(_GZIP_MAGIC):
            raise MessageError("body", "has trailing bytes after the gzip stream", "invalid_encoding")


def decode_body(raw: bytes, content_encoding: str | None, *, limit: int) -> Any:
    """Request bytes → JSON value.

    Gunzips on ``Content-Encoding: gzip`` (or when the body starts with the gzip magic), with the
    size ``limit`` enforced on the raw bytes *and* on the decompressed bytes (zip bombs stop at
    ``limit + 1`` bytes of output). Raises :class:`MessageError` with ``field="body"``.
    """
    if raw is None:
        raw = b""
    raw = bytes(raw)
    if len(raw) > limit:
        raise MessageError("body", f"is {len(raw)} bytes; the limit is {limit}", "too_large")
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    gzipped = False
    for encoding in encodings:
        if encoding in ("gzip", "x-gzip"):
            gzipped = True
        elif encoding != "identity":
            raise MessageError(
                "body", f"Content-Encoding {encoding!r} is not supported", "unsupported_encoding"
            )
    if gzipped or raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(raw, limit)
    if not raw.strip():
        raise MessageError("body", "is empty", "invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageError("body", f"is not valid JSON: {exc}", "invalid_json") from exc


def write_key_from(authorization: str | None, body: Any) -> str | None:
    """The write key: HTTP Basic user (``base64("key:")``), else ``body["writeKey"]``."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic" and credentials.strip():
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                decoded = ""
            user = decoded.partition(":")[0]
            if user:
                return user
    if isinstance(body, dict):
        key = body.get("writeKey")
        if isinstance(key, str) and key.strip():
            return key
    return None
