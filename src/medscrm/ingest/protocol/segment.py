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
* 32 KB per serialised message, 500 KB per batch request, 200 characters for ``messageId``,
  ``userId``, ``anonymousId``, ``previousId``, ``groupId``, ``event`` and ``name``.

What every request body must be, checked before anything is spooled (:func:`check_text`,
:func:`find_bad_value`; a 400 naming the field, never a 5xx, and the connection stays usable):

* valid UTF-8 (``body``: ``is not valid UTF-8 at byte N``, code ``invalid_utf8``);
* nested at most :data:`MAX_DEPTH` (64) levels of objects and arrays, the body itself being level
  1 (``body``: ``nests deeper than 64 levels``, code ``too_deep``): deeper values overflow the
  decoders' stacks and cannot be read back from the databases;
* numbers that both databases and every JSON library on the way store and return exactly:
  integers from -2^63 to 2^63-1 (64-bit), other numbers finite with a magnitude below 2^63
  (PostgreSQL's jsonb gives ``1e300`` back as a 301-digit integer); ``NaN`` and ``Infinity`` are not
  JSON (code ``invalid_number``, the field named by its JSON path: ``properties.n``,
  ``batch[2].properties.n``);
* strings that are Unicode: an escaped lone UTF-16 surrogate such as ``\\ud800`` is refused
  (code ``invalid_string``). A request with such a value is refused as a whole (a batch too) and
  quarantined with the value kept as text.

Clock skew: when the client sends its event time (``timestamp``, else ``originalTimestamp``) and
``sentAt``, the stored ``timestamp`` is ``receivedAt - (sentAt - eventTime)``; with no ``sentAt``
the client's time is kept; with neither, ``receivedAt``.

``messageId`` is the de-duplication key. Clients should always send one: when it is missing a
random ``ms-<uuid4>`` is assigned, so a retried message without an id cannot be de-duplicated.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_DEPTH",
    "MAX_ID_CHARS",
    "TYPES",
    "Message",
    "MessageError",
    "decode_body",
    "decode_fast",
    "encode_lines",
    "encode_messages",
    "check_text",
    "find_bad_value",
    "line_problem",
    "load_json",
    "read_body",
    "suspect_lines",
    "parse_batch",
    "parse_message",
    "parse_timestamp",
    "write_key_from",
]

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_CHARS = 200  # messageId, userId, anonymousId, previousId, groupId, event, name (the columns' size)
TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_DEPTH = 64  # levels of objects/arrays in a request body (the body itself is level 1)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # integers: 64-bit (DuckDB BIGINT, orjson)
NUMBER_LIMIT = 2.0**63  # other numbers: finite and below this magnitude (stored exactly on both engines)

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
    for key, value in (
        ("messageId", message_id),
        ("userId", user_id),
        ("anonymousId", anonymous_id),
        ("previousId", previous_id),
        ("groupId", group_id),
        ("event", event),
        ("name", name),
    ):
        if value is not None and len(value) > MAX_ID_CHARS:
            raise MessageError(
                _join(path, key), f"is {len(value)} characters long; the limit is {MAX_ID_CHARS}", "too_long"
            )

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


def read_body(raw: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """Request bytes → JSON text: gunzips on ``Content-Encoding: gzip`` (or when the body starts
    with the gzip magic), with the size ``limit`` enforced on the raw bytes *and* on the
    decompressed bytes (zip bombs stop at ``limit + 1`` bytes of output). Raises
    :class:`MessageError` with ``field="body"``."""
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
    return raw


def load_json(raw: bytes) -> Any:
    """JSON text → value; ``invalid_json`` (field ``body``) when it is empty or not JSON."""
    if not raw.strip():
        raise MessageError("body", "is empty", "invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageError("body", f"is not valid JSON: {exc}", "invalid_json") from exc
    except RecursionError as exc:
        raise MessageError("body", f"nests deeper than {MAX_DEPTH} levels", "too_deep") from exc


# -- what a body must be before it is spooled: UTF-8, bounded depth, storable numbers --------------
#
# The checks run on every request, so they are made of C-level byte operations (decode, translate,
# split, replace, one regex search over a reduced copy); the exact (Python) walk runs only when the
# cheap screen finds a candidate.

_BRACKETS_TABLE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"\\')
# numbers: digits → "0", "." → "d", "E" → "e", the bytes that may precede a value ("[", ",") → ":";
# everything else but "-", "N", "I" and '"' is deleted (whitespace included)
_NUM_TABLE = bytearray(range(256))
for _c in b"0123456789":
    _NUM_TABLE[_c] = ord("0")
_NUM_TABLE[ord(".")] = ord("d")
_NUM_TABLE[ord("E")] = ord("e")
_NUM_TABLE[ord("[")] = _NUM_TABLE[ord(",")] = ord(":")
_NUM_TABLE = bytes(_NUM_TABLE)
_NUM_DELETE = bytes(b for b in range(256) if b not in b'0123456789.eE:,[-NI"')
# a value that starts like an exponent number, a 19+ digit integer part, NaN or Infinity
_NUM_CANDIDATE = re.compile(rb":-?(?:0[0d]*e|0{19}|[NI])")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether objects/arrays nest more than ``limit`` levels (brackets inside strings ignored)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    s = raw.translate(_BRACKETS_TABLE, _NOT_STRUCTURE)  # only [ ] " \ are left
    if b"\\" not in s and s.count(b'""') * 2 == s.count(b'"'):
        s = s.translate(None, b'"')  # no escapes and no bracket inside any string (the usual case)
    else:
        if b"\\" in s:  # escaped backslashes, then escaped quotes, then other escapes
            s = s.replace(b"\\\\", b"").replace(b'\\"', b"").replace(b"\\", b"")
        s = b"".join(s.split(b'"')[::2])  # drop what lies inside strings
    # each round removes the innermost pairs: a balanced text of depth d is empty after d rounds
    for _ in range(limit):
        reduced = s.replace(b"[]", b"")
        if not reduced:
            return False
        if reduced == s:  # unbalanced (not JSON): deep only if more than `limit` opening brackets pile up
            return b"[" * (limit + 1) in s
        s = reduced
    return True


def check_text(raw: bytes, *, field: str = "body") -> None:
    """UTF-8 and nesting depth (at most :data:`MAX_DEPTH`); :class:`MessageError` naming ``field``."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError(field, f"is not valid UTF-8 at byte {exc.start}", "invalid_utf8") from exc
    if _too_deep(raw):
        raise MessageError(field, f"nests deeper than {MAX_DEPTH} levels", "too_deep")


class _Literal(str):
    """A number (or NaN/Infinity) outside what is stored, kept as the text it was sent as."""


def _parse_int(text: str) -> int | _Literal:
    digits = len(text) - (text[0] == "-")
    if digits > 19:
        return _Literal(text)
    v = int(text)
    return v if INT_MIN <= v <= INT_MAX else _Literal(text)


def _parse_float(text: str) -> float | _Literal:
    v = float(text)
    return v if math.isfinite(v) and abs(v) < NUMBER_LIMIT else _Literal(text)


def _number_reason(text: str) -> str:
    if text.lstrip("-") in ("NaN", "Infinity"):
        return f"is {text}, which is not a JSON number (numbers must be finite)"
    if "." not in text and "e" not in text.lower():
        return f"is {text[:40]}; integers must lie between {INT_MIN} and {INT_MAX} (64-bit)"
    if not math.isfinite(float(text)):
        return f"is {text[:40]}, which is not a finite number"
    return f"is {text[:40]}; numbers must lie between -2^63 and 2^63 (about 9.2e18)"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _visible(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _walk(value: Any, path: str, found: list[MessageError]) -> Any:
    """The value with bad numbers as their text and lone surrogates escaped; the first problem
    (with its JSON path) appended to ``found``."""
    if isinstance(value, _Literal):
        if not found:
            found.append(MessageError(path or "body", _number_reason(value), "invalid_number"))
        return str(value)
    if isinstance(value, str):
        if _has_surrogate(value):
            if not found:
                found.append(
                    MessageError(
                        path or "body",
                        "holds a lone UTF-16 surrogate (e.g. \\ud800), which is not Unicode",
                        "invalid_string",
                    )
                )
            return _visible(value)
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _visible(k) if _has_surrogate(k) else k
            if key is not k and not found:
                found.append(
                    MessageError(
                        _join(path, key),
                        "this key holds a lone UTF-16 surrogate (e.g. \\ud800), which is not Unicode",
                        "invalid_string",
                    )
                )
            out[key] = _walk(v, _join(path, key), found)
        return out
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _suspect(raw: bytes) -> bool:
    """Cheap screen: could the text hold a number or string that :func:`find_bad_value` refuses?"""
    # a colon before a quote starts a string value, never a number: dropping those colons leaves the
    # regex a tenth of the places to try (most values are strings)
    if _NUM_CANDIDATE.search(raw.translate(_NUM_TABLE, _NUM_DELETE).replace(b':"', b'"')) is not None:
        return True
    return _SURROGATE_ESCAPE.search(raw) is not None


def find_bad_value(raw: bytes) -> tuple[MessageError, Any] | None:
    """The first value of a JSON text (checked with :func:`check_text`) that cannot be stored —
    an out-of-range or non-finite number, ``NaN``/``Infinity``, a lone surrogate — as an error
    naming its JSON path, with the body where such values are kept as text (for the quarantine);
    ``None`` when there is none (or the text is not JSON at all: the decoders say so)."""
    if not _suspect(raw):
        return None
    try:
        value = json.loads(
            raw.decode("utf-8"),
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_Literal,
        )
    except (ValueError, RecursionError):
        return None
    found: list[MessageError] = []
    clean = _walk(value, "", found)
    return (found[0], clean) if found else None


def line_problem(line: bytes) -> str | None:
    """Why one spooled JSON line cannot be stored (the flusher's own check, for records that did not
    pass :func:`check_text` / :func:`find_bad_value`), or ``None``."""
    try:
        check_text(line, field="message")
        bad = find_bad_value(line)
        if bad is None:
            orjson.loads(line)
    except MessageError as exc:
        return str(exc)
    except (ValueError, RecursionError) as exc:
        return f"message: is not valid JSON: {exc}"
    return None if bad is None else str(bad[0])


def suspect_lines(chunk: bytes) -> bool:
    """Cheap screen of a spool record of JSON lines: could one of them be refused by
    :func:`line_problem`?"""
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _too_deep(chunk, MAX_DEPTH) or _suspect(chunk)


def decode_body(raw: bytes, content_encoding: str | None, *, limit: int) -> Any:
    """Request bytes → JSON value (:func:`read_body` then :func:`load_json`)."""
    return load_json(read_body(raw, content_encoding, limit=limit))


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


# -- the fast path: typed decoding straight to spool lines ----------------------------------------
#
# ``parse_batch`` builds a Python dict per message and a ``Message`` per event: about 40 µs an
# event, most of the CPU of a busy collector. The fast path below decodes the body with msgspec
# into typed structs (in C), keeps ``properties`` / ``traits`` / ``context`` as raw JSON text (never
# turned into Python objects unless a rule needs to look inside), applies the same rules, and
# encodes the result as newline-delimited JSON, one line per event — the spool form that the
# database parses itself. Anything unusual (a value of the wrong type, a bad item, a batch-level
# context, a message near the size limit) goes through ``parse_message`` instead, so errors,
# field names and normalisation are exactly those of the reference path.


class _Slow(Exception):
    """This message (or request) needs the reference path."""


_RAW_NULL = msgspec.Raw(b"null")
_RAW_EMPTY = msgspec.Raw(b"{}")
_Id = str | int | float | None


class _Event(msgspec.Struct):
    type: str | None = None
    messageId: _Id = None
    event: str | None = None
    userId: _Id = None
    anonymousId: _Id = None
    previousId: _Id = None
    groupId: _Id = None
    name: str | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    properties: msgspec.Raw = _RAW_NULL
    traits: msgspec.Raw = _RAW_NULL
    context: msgspec.Raw = _RAW_NULL
    integrations: msgspec.Raw = _RAW_NULL  # not stored, but must be an object
    channel: Any = None
    category: Any = None
    writeKey: str | None = None


class _Batch(msgspec.Struct):
    batch: list[_Event]
    sentAt: str | None = None
    context: msgspec.Raw = _RAW_NULL
    writeKey: str | None = None


class SpoolLine(msgspec.Struct):
    """One accepted message in spool form (times in microseconds since the epoch, UTC; objects as
    JSON). The keys are those of :func:`medscrm.ingest.events.message_record`."""

    k: str
    t: str
    s: str
    type: str
    mid: str
    event: str | None
    uid: str | None
    aid: str | None
    pid: str | None
    gid: str | None
    name: str | None
    ts: int
    ots: int | None
    sat: int | None
    rat: int
    props: msgspec.Raw
    traits: msgspec.Raw
    ctx: msgspec.Raw


_batch_decoder = msgspec.json.Decoder(_Batch)
_event_decoder = msgspec.json.Decoder(_Event)
_line_encoder = msgspec.json.Encoder()
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH_UTC) // _ONE_US
_MAX_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH_UTC) // _ONE_US
_SIZE_MARGIN = 8192  # messages whose objects come this close to the limit are measured exactly


def to_us(value: datetime | None) -> int | None:
    """A tz-aware time → integer microseconds since the epoch (the spool form)."""
    return None if value is None else (value - _EPOCH_UTC) // _ONE_US


def _ts_us(text: str | None, field_path: str) -> int | None:
    if text is None:
        return None
    return (parse_timestamp(text, field_path) - _EPOCH_UTC) // _ONE_US  # type: ignore[operator]


def _fast_id(v: Any) -> str | None:
    if v is None:
        return None
    c = v.__class__
    if c is str:
        return v if v.strip() else None
    if c is int:
        return str(v)
    if c is float and v == v and v not in (float("inf"), float("-inf")):
        return str(int(v)) if v.is_integer() else repr(v)
    raise _Slow


def _load(raw: msgspec.Raw) -> Any:
    return orjson.loads(memoryview(raw))


def _obj(raw: msgspec.Raw) -> msgspec.Raw:
    if raw == _RAW_NULL:
        return _RAW_EMPTY
    if memoryview(raw)[0] != 0x7B:  # "{": anything else is the reference path's wrong_type
        raise _Slow
    return raw


def _line(
    ev: _Event,
    tags: tuple[str, str],
    rat: int,
    type_hint: str | None,
    batch_sat: int | None,
    batch_ctx: dict[str, Any] | None,
    check_size: bool,
) -> SpoolLine:
    t = ev.type
    if t is None:
        t = type_hint
    elif type_hint is not None and t != type_hint:
        raise _Slow
    if t not in TYPES:
        raise _Slow
    uid = _fast_id(ev.userId)
    aid = _fast_id(ev.anonymousId)
    pid = _fast_id(ev.previousId)
    gid = _fast_id(ev.groupId)
    if t == "alias":
        if pid is None or uid is None:
            raise _Slow
    elif uid is None and aid is None:
        raise _Slow
    if t == "group" and gid is None:
        raise _Slow
    event = ev.event
    if t == "track" and (event is None or not event.strip()):
        raise _Slow
    for x in (uid, aid, pid, gid, event, ev.name):
        if x is not None and len(x) > MAX_ID_CHARS:
            raise _Slow
    props, traits, ctx = _obj(ev.properties), _obj(ev.traits), _obj(ev.context)
    _obj(ev.integrations)
    # the other fields are bounded (7 × 200 characters, 3 timestamps): only the objects can make a
    # message too large; near the limit the reference path measures it exactly
    if check_size and len(props) + len(traits) + len(ctx) > MAX_EVENT_BYTES - _SIZE_MARGIN:
        raise _Slow
    if batch_ctx is not None:
        ctx = msgspec.Raw(orjson.dumps(_merge(batch_ctx, _load(ctx))))
    channel = ev.channel
    if channel is not None and channel.__class__ is str and channel:
        c = _load(ctx)
        if "channel" not in c:
            c["channel"] = channel
            ctx = msgspec.Raw(orjson.dumps(c))
    if t == "identify" and b'"traits"' in bytes(ctx):
        ct = _load(ctx).get("traits")
        if isinstance(ct, dict) and ct:
            traits = msgspec.Raw(orjson.dumps({**ct, **_load(traits)}))
    elif t == "page":
        category = ev.category
        if category is not None and category.__class__ is str and category:
            p = _load(props)
            p.setdefault("category", category)
            props = msgspec.Raw(orjson.dumps(p))
    mid = _fast_id(ev.messageId) or f"ms-{uuid.uuid4()}"
    if len(mid) > MAX_ID_CHARS:
        raise _Slow
    client = _ts_us(ev.timestamp, "timestamp")
    original = _ts_us(ev.originalTimestamp, "originalTimestamp")
    sat = _ts_us(ev.sentAt, "sentAt")
    if sat is None:
        sat = batch_sat
    event_time = client if client is not None else original
    if event_time is None:
        ts = rat
    elif sat is None:
        ts = event_time
    else:
        ts = rat - (sat - event_time)
        if not _MIN_US <= ts <= _MAX_US:
            raise _Slow
    return SpoolLine(
        "event",
        tags[0],
        tags[1],
        t,
        mid,
        event,
        uid,
        aid,
        pid,
        gid,
        ev.name,
        ts,
        original if original is not None else client,
        sat,
        rat,
        props,
        traits,
        ctx,
    )


def line_from_message(m: Message, tags: tuple[str, str]) -> SpoolLine:
    """The spool line of a message that went through the reference path."""
    return SpoolLine(
        "event",
        tags[0],
        tags[1],
        m.type,
        m.message_id,
        m.event,
        m.user_id,
        m.anonymous_id,
        m.previous_id,
        m.group_id,
        m.name,
        to_us(m.timestamp),  # type: ignore[arg-type]
        to_us(m.original_timestamp),
        to_us(m.sent_at),
        to_us(m.received_at),  # type: ignore[arg-type]
        msgspec.Raw(orjson.dumps(m.properties)),
        msgspec.Raw(orjson.dumps(m.traits)),
        msgspec.Raw(orjson.dumps(m.context)),
    )


def encode_messages(messages: list[Message], tags: tuple[str, str]) -> bytes:
    """Spool lines (ndjson) of messages that went through the reference path."""
    if not messages:
        return b""
    return _line_encoder.encode_lines([line_from_message(m, tags) for m in messages])


@dataclass
class Decoded:
    """A request body decoded by the fast path (``None`` from :func:`decode_fast` means: use the
    reference path, which also produces the exact error)."""

    raw: bytes
    body: _Batch | _Event
    is_batch: bool

    @property
    def write_key(self) -> str | None:
        k = self.body.writeKey
        return k if k and k.strip() else None


def decode_fast(raw: bytes, *, is_batch: bool) -> Decoded | None:
    try:
        body = (_batch_decoder if is_batch else _event_decoder).decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        return None  # the reference path decodes it again and names the problem
    return Decoded(raw, body, is_batch)


def encode_lines(
    d: Decoded,
    *,
    received_at: datetime,
    tags: tuple[str, str],
    type_hint: str | None = None,
) -> tuple[bytes, int, list[tuple[int, MessageError, Any]]]:
    """Validate and normalise a fast-decoded body: ``(ndjson lines, count, bad items)``.

    Same rules and results as :func:`parse_batch` / :func:`parse_message` (which handle every
    message the fast path does not). A request-level problem raises :class:`MessageError`.
    """
    rat = to_us(_as_utc(received_at))
    assert rat is not None
    body = d.body
    slow_body: Any = None
    if d.is_batch:
        assert isinstance(body, _Batch)
        items = body.batch
        batch_ctx = None
        if body.context != _RAW_NULL:
            batch_ctx = _load(body.context)
            if not isinstance(batch_ctx, dict):
                raise MessageError("context", "must be an object", "wrong_type")
        batch_sent = parse_timestamp(body.sentAt, "sentAt")
        batch_sat = to_us(batch_sent)
    else:
        items, batch_ctx, batch_sent, batch_sat = [body], None, None, None
    check_size = len(d.raw) > MAX_EVENT_BYTES - _SIZE_MARGIN
    out: list[SpoolLine] = []
    bad: list[tuple[int, MessageError, Any]] = []
    for index, ev in enumerate(items):
        try:
            out.append(_line(ev, tags, rat, type_hint, batch_sat, batch_ctx, check_size))
            continue
        except (_Slow, MessageError):
            pass
        if slow_body is None:
            slow_body = orjson.loads(d.raw)
        item = slow_body["batch"][index] if d.is_batch else slow_body
        try:
            m = parse_message(
                item,
                received_at=received_at,
                type_hint=type_hint,
                batch_sent_at=batch_sent,
                batch_context=batch_ctx,
                path=f"batch[{index}]" if d.is_batch else "",
            )
        except MessageError as exc:
            if not d.is_batch:
                raise
            bad.append((index, exc, item))
            continue
        out.append(line_from_message(m, tags))
    return (_line_encoder.encode_lines(out) if out else b""), len(out), bad
