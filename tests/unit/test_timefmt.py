"""``timefmt.iso`` formats every integer time the engine can compute, and reads back where it can."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from nudge.timefmt import LATEST_MS, iso, parse_iso, to_ms

_YEAR_1 = to_ms(datetime(1, 1, 1, tzinfo=UTC))
_YEAR_9999_END = to_ms(datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC))


def _by_datetime(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


@given(st.integers(_YEAR_1, _YEAR_9999_END))
def test_iso_agrees_with_datetime_and_reads_back_wherever_datetime_reaches(ms: int) -> None:
    assert iso(ms) == _by_datetime(ms)
    assert parse_iso(iso(ms)) == ms


def test_iso_pads_four_digit_years_and_uses_the_expanded_form_beyond_them() -> None:
    assert iso(_YEAR_1) == "0001-01-01T00:00:00Z"
    assert iso(LATEST_MS) == "8999-12-31T23:59:59.999Z"
    # 9999-12-31T23:59:59Z plus a one-hour wait: once a ValueError in the middle of replay's output.
    assert iso(to_ms(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) + 3_600_000) == "+10000-01-01T00:59:59Z"
    assert iso(_YEAR_1 - 1) == "0000-12-31T23:59:59.999Z"


@given(st.integers(-(2**80), 2**80))
def test_iso_never_raises(ms: int) -> None:
    assert iso(ms).endswith("Z")
