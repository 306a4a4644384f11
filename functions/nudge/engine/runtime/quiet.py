"""Quiet hours in the customer's own time zone: is an instant inside them, and when do they end?

Local clock times are turned into instants with ``zoneinfo``, so a night that is 25 hours long
(the end of summer time) or 23 (its start) ends at the right instant: ``09:00`` in Lisbon on
2026-10-25 is 09:00Z, the day before it was 08:00Z. An end time that a change of offset skips
(``02:30`` on a spring-forward night) ends the quiet hours at the first instant after the gap;
one that happens twice (``01:30`` on a fall-back night) ends them at its first occurrence after
the instant held.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..plan.compiled import QuietPlan

TIMEZONE_TRAIT = "timezone"
"""The trait that names a customer's time zone (IANA, such as ``Europe/Lisbon``)."""


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    """The time zone called ``name``, or ``None`` when there is none by that name."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def customer_zone(quiet: QuietPlan, trait: object) -> tuple[ZoneInfo, str | None]:
    """The zone quiet hours use for a customer whose ``timezone`` trait is ``trait``.

    Without a trait, the policy's ``default_timezone``; with one that is not a time zone, the default
    too, and a reason that says so (never the value itself when it is long: it is the customer's data).
    """
    default = zone(quiet.default_timezone)
    assert default is not None, "the policy checked default_timezone"
    if trait is None:
        return default, None
    found = zone(trait) if isinstance(trait, str) else None
    if found is not None:
        return found, None
    shown = repr(trait) if isinstance(trait, str) and len(trait) <= 40 else f"a {type(trait).__name__}"
    return default, f"timezone {shown} is not an IANA time zone: quiet hours used {quiet.default_timezone}"


def quiet_until(quiet: QuietPlan, tz: ZoneInfo, at: int) -> int | None:
    """When the quiet hours that hold instant ``at`` (ms) end, in ms; ``None`` when ``at`` is not in them."""
    local = datetime.fromtimestamp(at / 1000, tz)
    second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    start, end = quiet.start * 60, quiet.end * 60
    if start < end:
        inside = start <= second < end
        day = local.date()
    else:  # across midnight: from start to 24:00, and from 00:00 to end
        inside = second >= start or second < end
        day = local.date() if second < end else local.date() + timedelta(days=1)
    if not inside:
        return None
    wall = datetime.combine(day, time(quiet.end // 60, quiet.end % 60))
    return _first_instant_at(wall, tz, at)


def _first_instant_at(wall: datetime, tz: ZoneInfo, after: int) -> int:
    """The first instant later than ``after`` whose local time in ``tz`` is ``wall`` or, in a gap, later."""
    found: list[int] = []
    for fold in (0, 1):
        instant = int(wall.replace(tzinfo=tz, fold=fold).timestamp() * 1000)
        if instant > after and datetime.fromtimestamp(instant / 1000, tz).replace(tzinfo=None) == wall:
            found.append(instant)
    if found:
        return min(found)
    # ``wall`` does not exist (the clocks jump over it): the first instant whose local time is past it.
    low = int(wall.replace(tzinfo=tz, fold=1).timestamp() * 1000)
    high = int(wall.replace(tzinfo=tz, fold=0).timestamp() * 1000)
    low, high = min(low, high), max(low, high)
    while high - low > 1000:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle / 1000, tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return max(high, after + 1)
