"""The shared helpers of ``medscrm.common``: retry waits (``backoff``) and UTC normalisation (``as_utc``)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medscrm.common import as_utc, backoff

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)
caps = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
factors = st.sampled_from([1.5, 2.0, 4.0])


@given(attempts, bases, caps, unit, factors)
def test_equal_jitter_stays_in_the_upper_half_of_the_capped_ceiling(n, base, cap, r, factor):
    ceiling = min(cap, base * factor ** (n - 1)) if n < 200 else cap
    wait = backoff(n, base, cap, factor=factor, rand=lambda: r)
    assert ceiling / 2 - 1e-9 <= wait <= ceiling + 1e-9
    assert wait <= cap + 1e-9


@given(attempts, bases, caps, unit)
def test_full_jitter_is_between_zero_and_the_cap(n, base, cap, r):
    wait = backoff(n, base, cap, jitter="full", rand=lambda: r)
    assert 0 <= wait <= cap + 1e-9


@given(st.integers(min_value=1, max_value=60), bases, caps)
def test_the_ceiling_never_shrinks_from_one_attempt_to_the_next(n, base, cap):
    assert backoff(n, base, cap, jitter="none") <= backoff(n + 1, base, cap, jitter="none")


def test_known_values_and_the_random_source():
    assert [backoff(n, 30, 3600, jitter="none") for n in (1, 2, 3, 8, 9)] == [30, 60, 120, 3600, 3600]
    assert [backoff(n, 10, 3600, factor=4, jitter="none") for n in (1, 2, 3, 4)] == [10, 40, 160, 640]
    assert backoff(1, 30, 3600, rand=lambda: 0.0) == 15  # equal jitter: at least half
    assert backoff(1, 30, 3600, rand=lambda: 0.999) == pytest.approx(29.985)
    assert backoff(3, 30, 3600, jitter="full", rand=lambda: 0.5) == 60
    assert backoff(10**6, 30, 3600, jitter="none") == 3600  # no OverflowError far past the cap
    assert backoff(0, 30, 3600, jitter="none") == 30  # attempt 0 is treated as the first
    assert backoff(3, 0, 3600) == 0


def test_an_unknown_jitter_scheme_is_refused_by_name():
    with pytest.raises(ValueError, match="jitter"):
        backoff(1, 1, 1, jitter="half")  # type: ignore[arg-type]


@given(
    st.datetimes(
        min_value=dt.datetime(2, 1, 1),  # away from datetime.min/max, where +08:00 → UTC cannot be written
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]),
    )
)
def test_as_utc_keeps_the_instant_and_answers_utc(t):
    out = as_utc(t)
    assert out == t and out.utcoffset() == dt.timedelta(0)


@given(st.datetimes())
def test_as_utc_reads_a_naive_value_as_utc(t):
    assert as_utc(t) == t.replace(tzinfo=dt.UTC)


def test_as_utc_of_none_is_none():
    assert as_utc(None) is None
