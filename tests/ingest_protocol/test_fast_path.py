"""The fast path (msgspec decoding straight to spool lines) against the reference path
(``parse_batch`` / ``parse_message``): same messages accepted, same normalisation, same errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from medscrm.ingest.protocol.segment import (
    MAX_ID_CHARS,
    TYPES,
    MessageError,
    decode_fast,
    encode_lines,
    encode_messages,
    parse_batch,
    parse_message,
)

RECEIVED = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
TAGS = ("ten_1", "src_1")


def _lines(raw: bytes) -> list[dict]:
    out = [orjson.loads(x) for x in raw.splitlines() if x]
    for d in out:
        if d["mid"].startswith("ms-"):  # generated ids differ between the two runs
            d["mid"] = "ms-generated"
    return out


def reference(body: Any, *, batch: bool, hint: str | None = None) -> tuple:
    try:
        if batch:
            good, bad = parse_batch(body, received_at=RECEIVED)
        else:
            good, bad = [parse_message(body, received_at=RECEIVED, type_hint=hint)], []
    except MessageError as e:
        return ("error", e.field, e.code)
    return ("ok", _lines(encode_messages(good, TAGS)), [(i, e.field, e.code) for i, e, _ in bad])


def fast(raw: bytes, *, batch: bool, hint: str | None = None) -> tuple | None:
    d = decode_fast(raw, is_batch=batch)
    if d is None:
        return None  # the API takes the reference path for this body
    try:
        lines, n, bad = encode_lines(d, received_at=RECEIVED, tags=TAGS, type_hint=hint)
    except MessageError as e:
        return ("error", e.field, e.code)
    assert n == len(_lines(lines))
    return ("ok", _lines(lines), [(i, e.field, e.code) for i, e, _ in bad])


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
ident = (
    st.sampled_from(["u1", "  ", "", "hcp-00042", "张伟"]) | st.integers(-5, 10**12) | st.floats(-1e6, 1e6)
)
timestamp_text = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2050, 1, 1), timezones=st.timezones() | st.none()
).map(lambda d: d.isoformat()) | st.sampled_from(["2026-01-01T10:00:00Z", "not a date", ""])
fields = {
    "type": st.sampled_from(TYPES) | st.sampled_from(["bogus", ""]) | json_leaf,
    "userId": ident | json_value,
    "anonymousId": ident,
    "previousId": ident,
    "groupId": ident,
    "messageId": ident | st.just("m" * (MAX_ID_CHARS + 1)),
    "event": st.sampled_from(["Article Viewed", "文章阅读", " ", "e" * (MAX_ID_CHARS + 1)]) | json_leaf,
    "name": st.sampled_from(["Home", "内容详情"]) | json_leaf,
    "timestamp": timestamp_text | json_leaf,
    "originalTimestamp": timestamp_text,
    "sentAt": timestamp_text,
    "properties": st.dictionaries(st.text(max_size=6), json_value, max_size=4) | json_leaf,
    "traits": st.dictionaries(st.sampled_from(["name", "phone", "email", "x"]), json_value, max_size=3),
    "context": st.fixed_dictionaries(
        {}, optional={"traits": st.dictionaries(st.text(max_size=4), json_leaf, max_size=2) | json_leaf}
    )
    | st.dictionaries(st.sampled_from(["ip", "channel", "library"]), json_value, max_size=2)
    | json_leaf,
    "integrations": st.dictionaries(st.text(max_size=4), st.booleans(), max_size=2) | json_leaf,
    "channel": st.sampled_from(["server", ""]) | json_leaf,
    "category": st.sampled_from(["docs", ""]) | json_leaf,
}
good_ts = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2050, 1, 1), timezones=st.timezones() | st.none()
).map(lambda d: d.isoformat())
good_ids = st.sampled_from(["u1", "hcp-00042", "张伟"]) | st.integers(0, 10**12)
props = st.dictionaries(st.text(max_size=6), json_value, max_size=4)
valid = st.fixed_dictionaries(
    {
        "type": st.sampled_from(TYPES),
        "userId": good_ids,
        "previousId": good_ids,
        "groupId": good_ids,
        "event": st.sampled_from(["Article Viewed", "文章阅读"]),
    },
    optional={
        "anonymousId": good_ids,
        "messageId": st.sampled_from(["m1", "m2"]) | st.integers(0, 99),
        "name": st.sampled_from(["Home", "内容详情"]),
        "timestamp": good_ts,
        "originalTimestamp": good_ts,
        "sentAt": good_ts,
        "properties": props,
        "traits": props,
        "context": st.fixed_dictionaries(
            {}, optional={"traits": props, "channel": st.just("web"), "ip": st.just("1.2.3.4")}
        ),
        "integrations": st.dictionaries(st.text(max_size=4), st.booleans(), max_size=2),
        "channel": st.sampled_from(["server", ""]),
        "category": st.sampled_from(["docs", ""]),
    },
)
one_change = st.sampled_from(sorted(fields)).flatmap(lambda k: fields[k].map(lambda v: {k: v}))
# mostly valid messages (so that the fast path produces lines), some with one field changed to
# anything, some made of random fields
message = (
    valid
    | st.builds(lambda m, change: {**m, **change}, valid, one_change)
    | st.fixed_dictionaries({}, optional=fields)
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(message, max_size=6),
    sent_at=st.none() | timestamp_text,
    context=st.none() | st.dictionaries(st.sampled_from(["ip", "locale"]), json_leaf, max_size=2),
)
def test_batches_agree_with_the_reference_path(items, sent_at, context) -> None:
    body: dict[str, Any] = {"batch": items}
    if sent_at is not None:
        body["sentAt"] = sent_at
    if context is not None:
        body["context"] = context
    raw = orjson.dumps(body)
    got = fast(raw, batch=True)
    if got is not None:
        assert got == reference(orjson.loads(raw), batch=True)
    event("fast path: " + ("no" if got is None else "lines" if got[0] == "ok" and got[1] else "no lines"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=message, hint=st.sampled_from(TYPES))
def test_single_calls_agree_with_the_reference_path(obj, hint) -> None:
    raw = orjson.dumps(obj)
    got = fast(raw, batch=False, hint=hint)
    if got is not None:
        assert got == reference(orjson.loads(raw), batch=False, hint=hint)
    event("fast path: " + ("no" if got is None else got[0]))


def test_typical_batches_take_the_fast_path() -> None:
    """The point of the fast path: real client batches never fall back."""
    body = {
        "batch": [
            {
                "type": "track",
                "event": "文章阅读",
                "userId": "hcp-1",
                "anonymousId": "a-1",
                "messageId": f"m{i}",
                "timestamp": "2026-03-01T07:59:00Z",
                "properties": {"科室": "心内科", "秒": 30},
                "context": {"library": {"name": "analytics.js"}},
            }
            for i in range(50)
        ],
        "sentAt": "2026-03-01T08:00:00Z",
    }
    d = decode_fast(orjson.dumps(body), is_batch=True)
    assert d is not None
    lines, n, bad = encode_lines(d, received_at=RECEIVED, tags=TAGS)
    assert n == 50 and not bad
    first = orjson.loads(lines.splitlines()[0])
    # clock skew: the event happened 60 s before the client sent it, so 60 s before receipt
    assert RECEIVED.timestamp() * 1e6 - first["ts"] == pytest.approx(60e6)
    assert first["props"] == {"科室": "心内科", "秒": 30} and first["t"] == "ten_1"


def test_too_long_identifiers_are_refused_naming_the_field() -> None:
    with pytest.raises(MessageError) as info:
        parse_message(
            {"userId": "u" * (MAX_ID_CHARS + 1), "event": "E"}, received_at=RECEIVED, type_hint="track"
        )
    assert info.value.field == "userId" and info.value.code == "too_long"
    good, bad = parse_batch(
        {"batch": [{"type": "track", "userId": "u", "event": "E" * 300}]}, received_at=RECEIVED
    )
    assert not good and bad[0][1].field == "batch[0].event"
