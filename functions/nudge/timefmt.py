"""Conversions between ISO 8601 text and the engine's integer epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, by integer arithmetic (no float rounding)."""
    return (moment - _EPOCH) // _ONE_MS


def iso(ms: int) -> str:
    """``2026-11-22T10:00:00Z`` (milliseconds shown only when present), always UTC."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    """Parse an ISO 8601 timestamp that carries an offset (``Z`` or ``+01:00``) into epoch ms."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset: add Z or +HH:MM")
    return to_ms(moment)
