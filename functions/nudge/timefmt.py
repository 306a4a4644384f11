"""Conversions between ISO 8601 text and the engine's integer epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, by integer arithmetic (no float rounding)."""
    return (moment - _EPOCH) // _ONE_MS


EARLIEST_MS = 0
"""The earliest event time accepted: 1970-01-01T00:00:00Z (epoch milliseconds are never negative)."""

LATEST_MS = to_ms(datetime(9000, 1, 1, tzinfo=UTC)) - 1
"""The latest event time accepted: just before 9000-01-01T00:00:00Z, a thousand years short of
where four-digit years run out, so a wait or window added to any accepted time still prints as
ordinary ISO 8601 text that reads back."""


def in_range(ms: int) -> bool:
    """Whether ``ms`` is an event time the envelope accepts (``EARLIEST_MS`` to ``LATEST_MS``)."""
    return EARLIEST_MS <= ms <= LATEST_MS


def iso(ms: int) -> str:
    """``2026-11-22T10:00:00Z`` (milliseconds shown only when present), always UTC.

    Total: any integer formats, by integer arithmetic (no ``datetime`` range, no float rounding).
    Years 0 to 9999 have four digits; beyond them, ISO 8601's expanded form (``+10000-01-01...``),
    so a firing whose wait runs past year 9999 still prints instead of stopping the output.
    """
    days, rest = divmod(ms, 86_400_000)
    seconds, millis = divmod(rest, 1000)
    year, month, day = _civil(days)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    text = f"{year_text}-{month:02d}-{day:02d}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of ``days`` since 1970-01-01 in the proleptic Gregorian calendar, for any integer."""
    days += 719_468  # days from 0000-03-01 to 1970-01-01: eras of 400 years start on a 1 March
    era, day_of_era = divmod(days, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153  # 0 = March
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (month <= 2)
    return year, month, day


def parse_iso(text: str) -> int:
    """Parse an ISO 8601 timestamp that carries an offset (``Z`` or ``+01:00``) into epoch ms."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset: add Z or +HH:MM")
    return to_ms(moment)
