"""Segment-spec messages: validation, normalisation, clock skew, bodies, write keys."""

from __future__ import annotations

import base64
import contextlib
import gzip
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from medscrm.ingest.protocol.segment import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    TYPES,
    Message,
    MessageError,
    decode_body,
    parse_batch,
    parse_message,
    write_key_from,
)

RECEIVED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def parse(obj: Any, **kw: Any) -> Message:
    return parse_message(obj, received_at=RECEIVED, **kw)


def error_of(obj: Any, **kw: Any) -> MessageError:
    with pytest.raises(MessageError) as info:
        parse(obj, **kw)
    return info.value


# -- what real clients send -------------------------------------------------------------------------
# segment-analytics-python 2.x: writeKey in the body, sentAt at batch level, "anonymousId": null,
# "integrations": {}, context.library; rudder-sdk-python adds "channel": "server".
ANALYTICS_PYTHON_BATCH = {
    "batch": [
        {
            "integrations": {},
            "anonymousId": None,
            "properties": {"product": "Xarelto 10mg", "detail_minutes": 12},
            "event": "Detailing Completed",
            "messageId": "6c3b5f0e-2f7d-4b8b-9a5a-4ed1f0a6b0a1",
            "timestamp": "2025-03-01T11:59:58.250000+00:00",
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
            "userId": "hcp-100234",
            "type": "track",
        },
        {
            "integrations": {},
            "anonymousId": None,
            "traits": {"hospital": "北京协和医院", "title": "主任医师"},
            "messageId": "0d9c7a8e-7a5b-4e5c-8b8f-2a3a4b5c6d7e",
            "timestamp": "2025-03-01T11:59:58.300000+00:00",
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
            "userId": "hcp-100234",
            "type": "identify",
        },
    ],
    "sentAt": "2025-03-01T11:59:59.000000+00:00",
    "writeKey": "wk_live_abc",
}

RUDDER_MESSAGE = {
    "channel": "server",
    "type": "page",
    "anonymousId": "a-77",
    "name": "Dosage Calculator",
    "category": "Tools",
    "properties": {"url": "https://hcp.example.cn/tools/dose"},
    "originalTimestamp": "2025-03-01T11:59:00Z",
    "sentAt": "2025-03-01T11:59:30Z",
    "messageId": "r-1",
    "context": {"library": {"name": "rudder-analytics-python", "version": "2.1.0"}},
}


def test_analytics_python_batch() -> None:
    good, bad = parse_batch(ANALYTICS_PYTHON_BATCH, received_at=RECEIVED)
    assert bad == []
    track, identify = good
    assert track.type == "track"
    assert track.event == "Detailing Completed"
    assert track.user_id == "hcp-100234"
    assert track.anonymous_id is None
    assert track.message_id == "6c3b5f0e-2f7d-4b8b-9a5a-4ed1f0a6b0a1"
    assert track.properties == {"product": "Xarelto 10mg", "detail_minutes": 12}
    assert track.integrations == {}
    assert track.sent_at == datetime(2025, 3, 1, 11, 59, 59, tzinfo=UTC)
    # skew: event happened 0.75 s before sentAt → 0.75 s before receivedAt
    assert track.timestamp == RECEIVED - timedelta(milliseconds=750)
    assert track.original_timestamp == datetime(2025, 3, 1, 11, 59, 58, 250000, tzinfo=UTC)
    assert track.received_at == RECEIVED
    assert identify.type == "identify"
    assert identify.traits == {"hospital": "北京协和医院", "title": "主任医师"}


def test_rudder_page() -> None:
    msg = parse(RUDDER_MESSAGE)
    assert msg.type == "page"
    assert msg.name == "Dosage Calculator"
    assert msg.properties == {"url": "https://hcp.example.cn/tools/dose", "category": "Tools"}
    assert msg.context["channel"] == "server"
    assert msg.context["library"]["name"] == "rudder-analytics-python"
    # originalTimestamp corrected by the same rule: 30 s before sentAt → 30 s before receipt
    assert msg.timestamp == RECEIVED - timedelta(seconds=30)
    assert msg.original_timestamp == datetime(2025, 3, 1, 11, 59, tzinfo=UTC)


# -- required fields --------------------------------------------------------------------------------
def test_type_from_endpoint() -> None:
    msg = parse({"userId": "u1", "event": "Signed Up"}, type_hint="track")
    assert msg.type == "track"


def test_type_mismatch_with_endpoint() -> None:
    err = error_of({"type": "identify", "userId": "u1"}, type_hint="track")
    assert (err.field, err.code) == ("type", "type_mismatch")


@pytest.mark.parametrize(
    ("obj", "field", "code"),
    [
        ({"userId": "u"}, "type", "missing_field"),
        ({"type": "trak", "userId": "u"}, "type", "unknown_type"),
        ({"type": 3, "userId": "u"}, "type", "wrong_type"),
        ({"type": "track", "event": "E"}, "userId", "missing_field"),
        ({"type": "track", "event": "E", "userId": None, "anonymousId": None}, "userId", "missing_field"),
        ({"type": "track", "event": "E", "userId": "", "anonymousId": "  "}, "userId", "missing_field"),
        ({"type": "track", "userId": "u"}, "event", "missing_field"),
        ({"type": "track", "userId": "u", "event": ""}, "event", "missing_field"),
        ({"type": "track", "userId": "u", "event": 5}, "event", "wrong_type"),
        ({"type": "track", "userId": True, "event": "E"}, "userId", "wrong_type"),
        ({"type": "track", "userId": ["u"], "event": "E"}, "userId", "wrong_type"),
        ({"type": "alias", "userId": "u"}, "previousId", "missing_field"),
        ({"type": "alias", "previousId": "a", "anonymousId": "a"}, "userId", "missing_field"),
        ({"type": "group", "userId": "u"}, "groupId", "missing_field"),
        ({"type": "group", "groupId": "g"}, "userId", "missing_field"),
        ({"type": "track", "userId": "u", "event": "E", "properties": [1]}, "properties", "wrong_type"),
        ({"type": "identify", "userId": "u", "traits": "x"}, "traits", "wrong_type"),
        ({"type": "track", "userId": "u", "event": "E", "context": 1}, "context", "wrong_type"),
        ({"type": "page", "userId": "u", "name": 1}, "name", "wrong_type"),
        (
            {"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"},
            "timestamp",
            "invalid_timestamp",
        ),
        (
            {"type": "track", "userId": "u", "event": "E", "timestamp": 1700000000},
            "timestamp",
            "invalid_timestamp",
        ),
        (
            {"type": "track", "userId": "u", "event": "E", "sentAt": "2025-13-01T00:00:00Z"},
            "sentAt",
            "invalid_timestamp",
        ),
        (
            {"type": "track", "userId": "u", "event": "E", "originalTimestamp": "x"},
            "originalTimestamp",
            "invalid_timestamp",
        ),
    ],
)
def test_field_errors(obj: dict, field: str, code: str) -> None:
    err = error_of(obj)
    assert (err.field, err.code) == (field, code)
    assert err.reason


def test_not_an_object() -> None:
    err = error_of(["track"])
    assert (err.field, err.code) == ("message", "wrong_type")


def test_valid_other_types() -> None:
    alias = parse({"type": "alias", "previousId": "anon-1", "userId": "hcp-1"})
    assert (alias.previous_id, alias.user_id) == ("anon-1", "hcp-1")
    group = parse({"type": "group", "userId": "hcp-1", "groupId": "hosp-9", "traits": {"tier": "3A"}})
    assert group.group_id == "hosp-9" and group.traits == {"tier": "3A"}
    screen = parse({"type": "screen", "anonymousId": "d-1", "name": "Home", "properties": None})
    assert screen.name == "Home" and screen.properties == {}


def test_numeric_ids_become_strings() -> None:
    msg = parse({"type": "identify", "userId": 100234, "anonymousId": 7.0, "messageId": 99})
    assert (msg.user_id, msg.anonymous_id, msg.message_id) == ("100234", "7", "99")


def test_missing_message_id_is_generated() -> None:
    a = parse({"type": "identify", "userId": "u"})
    b = parse({"type": "identify", "userId": "u"})
    assert a.message_id.startswith("ms-") and b.message_id.startswith("ms-")
    assert a.message_id != b.message_id


def test_identify_traits_from_context() -> None:
    msg = parse(
        {
            "type": "identify",
            "userId": "u",
            "traits": {"title": "主任医师"},
            "context": {"traits": {"title": "old", "dept": "心内科"}},
        }
    )
    assert msg.traits == {"title": "主任医师", "dept": "心内科"}
    # for a track call, context.traits stay in the context
    track = parse({"type": "track", "userId": "u", "event": "E", "context": {"traits": {"a": 1}}})
    assert track.traits == {} and track.context == {"traits": {"a": 1}}


def test_batch_context_merged_under_message_context() -> None:
    msg = parse(
        {"type": "track", "userId": "u", "event": "E", "context": {"ip": "1.2.3.4", "app": {"version": "2"}}},
        batch_context={"ip": "9.9.9.9", "locale": "zh-CN", "app": {"name": "hcp", "version": "1"}},
    )
    assert msg.context == {"ip": "1.2.3.4", "locale": "zh-CN", "app": {"name": "hcp", "version": "2"}}


def test_nulls_become_empty_objects() -> None:
    msg = parse(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "properties": None,
            "context": None,
            "integrations": None,
            "traits": None,
        }
    )
    assert (msg.properties, msg.context, msg.integrations, msg.traits) == ({}, {}, {}, {})


# -- timestamps -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00.123Z", datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2025-03-01T10:00:00.123456789Z", datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T18:00:00+08:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),  # naive = UTC
    ],
)
def test_timestamp_formats_without_sent_at(text: str, expected: datetime) -> None:
    msg = parse({"type": "track", "userId": "u", "event": "E", "timestamp": text})
    assert msg.timestamp == expected
    assert msg.timestamp.tzinfo is not None and msg.timestamp.utcoffset() == timedelta(0)
    assert msg.original_timestamp == expected


def test_no_timestamps_means_received_at() -> None:
    msg = parse({"type": "track", "userId": "u", "event": "E"})
    assert msg.timestamp == RECEIVED
    assert msg.original_timestamp is None and msg.sent_at is None


def test_message_sent_at_wins_over_batch_sent_at() -> None:
    msg = parse(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "timestamp": "2025-03-01T08:00:00Z",
            "sentAt": "2025-03-01T08:00:10Z",
        },
        batch_sent_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert msg.sent_at == datetime(2025, 3, 1, 8, 0, 10, tzinfo=UTC)
    assert msg.timestamp == RECEIVED - timedelta(seconds=10)


def test_received_at_in_other_zone_is_normalised() -> None:
    cst = timezone(timedelta(hours=8))
    msg = parse_message(
        {"type": "identify", "userId": "u"}, received_at=datetime(2025, 3, 1, 20, 0, tzinfo=cst)
    )
    assert msg.received_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert msg.received_at.tzinfo == UTC


def test_skew_overflow_is_a_message_error() -> None:
    err = error_of(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "timestamp": "0001-01-01T00:00:00Z",
            "sentAt": "9999-12-31T00:00:00Z",
        }
    )
    assert (err.field, err.code) == ("timestamp", "invalid_timestamp")


# -- size ------------------------------------------------------------------------------------------
def test_event_too_large() -> None:
    obj = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    err = error_of(obj)
    assert err.code == "too_large"


def test_event_at_limit_is_fine() -> None:
    obj = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": ""}}
    obj["properties"]["blob"] = "x" * (MAX_EVENT_BYTES - len(orjson.dumps(obj)))
    assert len(orjson.dumps(obj)) == MAX_EVENT_BYTES
    assert parse(obj).properties["blob"]


# -- batches ---------------------------------------------------------------------------------------
def test_batch_bad_items_do_not_reject_the_others() -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": "m1"},
            {"type": "track", "userId": "u"},
            "not an object",
            {"type": "identify", "anonymousId": "a", "messageId": "m4"},
            {"type": "track", "userId": "u", "event": "B", "properties": {"x": "y" * MAX_EVENT_BYTES}},
        ],
        "context": {"library": {"name": "curl"}},
    }
    good, bad = parse_batch(body, received_at=RECEIVED)
    assert [m.message_id for m in good] == ["m1", "m4"]
    assert all(m.context == {"library": {"name": "curl"}} for m in good)
    assert [(i, e.field, e.code) for i, e, _ in bad] == [
        (1, "batch[1].event", "missing_field"),
        (2, "batch[2]", "wrong_type"),
        (4, "batch[4]", "too_large"),
    ]
    assert bad[0][2] == {"type": "track", "userId": "u"}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ([], "body", "wrong_type"),
        ({}, "batch", "missing_field"),
        ({"batch": {}}, "batch", "wrong_type"),
        ({"batch": [], "sentAt": "nope"}, "sentAt", "invalid_timestamp"),
        ({"batch": [], "context": []}, "context", "wrong_type"),
    ],
)
def test_batch_level_errors(body: Any, field: str, code: str) -> None:
    with pytest.raises(MessageError) as info:
        parse_batch(body, received_at=RECEIVED)
    assert (info.value.field, info.value.code) == (field, code)


def test_empty_batch() -> None:
    assert parse_batch({"batch": []}, received_at=RECEIVED) == ([], [])


# -- bodies ----------------------------------------------------------------------------------------
def test_decode_plain_and_gzip() -> None:
    raw = orjson.dumps(ANALYTICS_PYTHON_BATCH)
    assert decode_body(raw, None, limit=MAX_BATCH_BYTES) == ANALYTICS_PYTHON_BATCH
    gz = gzip.compress(raw)
    assert decode_body(gz, "gzip", limit=MAX_BATCH_BYTES) == ANALYTICS_PYTHON_BATCH
    assert decode_body(gz, "GZIP", limit=MAX_BATCH_BYTES) == ANALYTICS_PYTHON_BATCH
    # rudder gzips by default; detect the magic even without the header
    assert decode_body(gz, None, limit=MAX_BATCH_BYTES) == ANALYTICS_PYTHON_BATCH
    # multi-member gzip is still one body
    half = len(raw) // 2
    multi = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    assert decode_body(multi, "gzip", limit=MAX_BATCH_BYTES) == ANALYTICS_PYTHON_BATCH


def test_decode_limits_before_and_after_decompression() -> None:
    with pytest.raises(MessageError) as info:
        decode_body(b" " * 101, None, limit=100)
    assert (info.value.field, info.value.code) == ("body", "too_large")
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")
    assert len(bomb) < MAX_BATCH_BYTES
    with pytest.raises(MessageError) as info:
        decode_body(bomb, "gzip", limit=MAX_BATCH_BYTES)
    assert (info.value.field, info.value.code) == ("body", "too_large")


@pytest.mark.parametrize(
    ("raw", "encoding", "code"),
    [
        (b"", None, "invalid_json"),
        (b"{not json", None, "invalid_json"),
        (b"\x1f\x8bnot really gzip", "gzip", "invalid_encoding"),
        (gzip.compress(b'{"a": 1}')[:-6], "gzip", "invalid_encoding"),
        (gzip.compress(b'{"a": 1}') + b"junk", "gzip", "invalid_encoding"),
        (b'{"a": 1}', "br", "unsupported_encoding"),
    ],
)
def test_decode_errors(raw: bytes, encoding: str | None, code: str) -> None:
    with pytest.raises(MessageError) as info:
        decode_body(raw, encoding, limit=MAX_BATCH_BYTES)
    assert (info.value.field, info.value.code) == ("body", code)


def test_write_key() -> None:
    basic = "Basic " + base64.b64encode(b"wk_live_abc:").decode()
    assert write_key_from(basic, None) == "wk_live_abc"
    assert write_key_from(basic, {"writeKey": "other"}) == "wk_live_abc"
    assert write_key_from(None, {"writeKey": "wk_body"}) == "wk_body"
    assert write_key_from("Basic !!!", {"writeKey": "wk_body"}) == "wk_body"
    assert write_key_from("Bearer xyz", {"writeKey": "wk_body"}) == "wk_body"
    assert write_key_from("Basic " + base64.b64encode(b":").decode(), None) is None
    assert write_key_from(None, {"writeKey": 5}) is None
    assert write_key_from(None, ["writeKey"]) is None


# -- MessageError as an exception -------------------------------------------------------------------
def test_message_error_behaves_as_an_exception() -> None:
    err = MessageError("batch[3].userId", "is required", "missing_field")
    assert str(err) == "batch[3].userId: is required (missing_field)"
    assert pickle.loads(pickle.dumps(err)) == err
    with pytest.raises(AttributeError):
        err.field = "x"  # type: ignore[misc]

    @contextlib.contextmanager
    def passthrough():
        yield

    with pytest.raises(MessageError), passthrough():  # contextlib assigns __traceback__
        raise err
    err.add_note("notes work too")


# -- properties ------------------------------------------------------------------------------------
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "previousId",
        "groupId",
        "event",
        "name",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "properties",
        "traits",
        "context",
        "integrations",
        "channel",
        "category",
    ]
)
timestamp_text = st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
field_value = json_value | st.sampled_from(TYPES) | timestamp_text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    obj=st.dictionaries(field_names, field_value, max_size=10) | json_value,
    hint=st.none() | st.sampled_from(TYPES),
    batch_sent_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    batch_context=st.none() | st.dictionaries(st.text(max_size=5), json_value, max_size=3),
)
def test_parse_message_only_raises_message_error(obj, hint, batch_sent_at, batch_context) -> None:
    try:
        msg = parse_message(
            obj,
            received_at=RECEIVED,
            type_hint=hint,
            batch_sent_at=batch_sent_at,
            batch_context=batch_context,
        )
    except MessageError as err:
        assert err.field and err.reason and err.code
        return
    assert msg.type in TYPES
    assert msg.timestamp.utcoffset() == timedelta(0)
    assert msg.user_id or msg.anonymous_id


ids = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
plain_props = st.dictionaries(st.text(max_size=10), json_value, max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    msg_type=st.sampled_from(TYPES),
    user_id=ids,
    anonymous_id=st.none() | ids,
    message_id=ids,
    event=ids,
    properties=plain_props,
    traits=plain_props,
)
def test_valid_messages_round_trip(
    msg_type, user_id, anonymous_id, message_id, event, properties, traits
) -> None:
    obj: dict[str, Any] = {
        "type": msg_type,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "messageId": message_id,
        "event": event,
        "properties": properties,
        "traits": traits,
        "previousId": "prev",
        "groupId": "grp",
    }
    assume(len(orjson.dumps(obj)) <= MAX_EVENT_BYTES)
    # the body travels as JSON: round-trip through the wire first
    msg = parse(orjson.loads(orjson.dumps(obj)))
    assert (msg.type, msg.user_id, msg.anonymous_id, msg.message_id) == (
        msg_type,
        user_id,
        anonymous_id,
        message_id,
    )
    assert msg.event == event
    assert msg.properties == orjson.loads(orjson.dumps(properties))
    if msg_type != "identify":
        assert msg.traits == orjson.loads(orjson.dumps(traits))


aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.timezones())


@settings(max_examples=200, deadline=None)
@given(event_time=aware, sent_at=aware, received=aware, on_batch=st.booleans())
def test_skew_correction_preserves_offset(event_time, sent_at, received, on_batch) -> None:
    obj: dict[str, Any] = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": event_time.isoformat(),
    }
    kwargs: dict[str, Any] = {}
    if on_batch:
        kwargs["batch_sent_at"] = sent_at
    else:
        obj["sentAt"] = sent_at.isoformat()
    msg = parse_message(obj, received_at=received, **kwargs)
    # compare in UTC: subtracting two datetimes that share a tzinfo object ignores DST offsets
    offset = event_time.astimezone(UTC) - sent_at.astimezone(UTC)
    assert msg.timestamp - msg.received_at == offset
    assert msg.original_timestamp == event_time.astimezone(
        UTC
    )  # (ambiguous local times never compare equal across zones)
    assert msg.timestamp.utcoffset() == timedelta(0)
