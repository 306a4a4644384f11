"""Durations as rule authors write them (``30s 15m 2h 7d 4w``), held as integer milliseconds.

Integer milliseconds keep window arithmetic exact: ``T + wait`` never drifts by a float rounding,
so replay, the Lambda evaluator and the tests agree on every boundary to the millisecond.
"""

from __future__ import annotations

import re

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

_UNITS = {"s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


class DurationError(ValueError):
    """A duration string that is not ``<whole number><unit>``."""


def parse_duration(text: object) -> int:
    """Parse ``"90m"`` into milliseconds.

    >>> parse_duration("2h")
    7200000
    """
    if isinstance(text, bool) or not isinstance(text, str):
        raise DurationError(
            f"bad duration {text!r}: write a whole number and a unit, one of s, m, h, d, w (e.g. 30m, 7d)"
        )
    match = _DURATION.match(text)
    if match is None:
        raise DurationError(
            f"bad duration {text!r}: write a whole number and a unit, one of s, m, h, d, w (e.g. 30m, 7d)"
        )
    amount = int(match.group(1))
    if amount <= 0:
        raise DurationError(f"bad duration {text!r}: it must be longer than zero")
    return amount * _UNITS[match.group(2)]


def format_duration(ms: int) -> str:
    """Render milliseconds in the largest unit that divides them exactly (``3600000`` → ``1h``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
