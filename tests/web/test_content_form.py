"""The content form's parsing of what the browser posts (date pickers in China time, topics, the
provider template's JSON), by property: every valid value round-trips, everything else is refused
naming its field."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medscrm.common import InvalidInput
from medscrm.web.routes.content import CHINA, _as_date, _china_date, _fields_of

DATES = st.dates(min_value=dt.date(1970, 1, 2), max_value=dt.date(9998, 12, 30))


def _form(**kw):
    base = {"title": "t", "kind": "article", "audience": "hcp_only", "therapy_area": "", "product": "",
            "prescription": False, "topics": "", "subject": "", "body": "b", "url": "", "template": "",
            "valid_from": "", "expires_at": ""}  # fmt: skip
    return {**base, **kw}


@given(DATES, st.booleans())
def test_a_picked_date_is_that_day_in_china_and_reads_back(d, end):
    t = _china_date(d.isoformat(), "expires_at", end_of_day=end)
    assert t.tzinfo is not None and t.astimezone(CHINA).date() == d
    assert t.astimezone(CHINA).time() == (dt.time(23, 59, 59) if end else dt.time(0, 0))
    assert _as_date(t) == d.isoformat() == _as_date(t.astimezone(dt.UTC).replace(tzinfo=None))


@given(st.text(max_size=30))
def test_anything_else_is_refused_naming_the_field(text):
    try:
        dt.date.fromisoformat(text.strip())
        return  # a valid date in another ISO spelling is accepted
    except ValueError:
        pass
    if not text.strip():
        assert _china_date(text, "valid_from", end_of_day=False) is None
        return
    with pytest.raises(InvalidInput) as exc:
        _china_date(text, "valid_from", end_of_day=False)
    assert (exc.value.field, exc.value.code) == ("valid_from", "date")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(JSON)
def test_the_provider_template_must_be_a_json_object(value):
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and value:
        assert _fields_of(_form(template=text))["template"] == value
    elif value == {}:
        assert _fields_of(_form(template=text))["template"] == {}
    else:
        with pytest.raises(InvalidInput) as exc:
            _fields_of(_form(template=text))
        assert (exc.value.field, exc.value.code) == ("template", "json")


@given(st.lists(st.text(alphabet="abc心衰 ,，", max_size=6), max_size=5))
def test_topics_split_on_either_comma_and_drop_blanks(parts):
    text = ",".join(parts)
    topics = _fields_of(_form(topics=text))["topics"]
    assert all(t and t == t.strip() and "," not in t and "，" not in t for t in topics)
    # nothing but the separators and the blanks around them is lost, and the order is kept
    assert "".join(topics).replace(" ", "") == text.replace(",", "").replace("，", "").replace(" ", "")
