"""Events from the future: the one definition of a timestamp too far ahead of its clock to accept.

A device whose clock is wrong can stamp an event years ahead. Accepted, it would become its
customer's latest event time, and every later event of that customer would arrive more than the
allowed lateness behind it: judged late, never arming a rule again. So an event stamped more than
the policy's ``max_future_skew`` ahead of the clock that receives it is refused before any state
sees it. The clock is the event's arrival on the stream in AWS and in ``nudge local`` (the record's
approximate arrival time), and the present in ``nudge replay`` (``--now`` pins it): a history has no
arrival times, and its quiet hours cannot be told from the future by its timestamps alone.
"""

from __future__ import annotations

from ...timefmt import iso
from ..language.durations import format_duration


def future_problem(ts: int, clock: int, max_future_skew: int) -> str | None:
    """Why an event stamped ``ts`` is refused when received at ``clock``, or ``None`` if it is not.

    The reason names only instants and durations (never a payload value), so it is safe to log and
    is what the rejected-events queue and replay's bad-line report both show.
    """
    ahead = ts - clock
    if ahead <= max_future_skew:
        return None
    return (
        f"from the future: timestamp {iso(ts)} is {roughly(ahead)} ahead of the clock ({iso(clock)}); "
        f"max_future_skew is {format_duration(max_future_skew)} (policy.yaml)"
    )


def roughly(ms: int) -> str:
    """A positive duration in its two largest whole units, rounded down: ``3318d 4h``, ``1h 0m``, ``59s``."""
    units = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))
    for index, (name, size) in enumerate(units):
        if ms >= size:
            whole, rest = divmod(ms, size)
            if index + 1 == len(units):
                return f"{whole}{name}"
            smaller, smaller_size = units[index + 1]
            return f"{whole}{name} {rest // smaller_size}{smaller}"
    return f"{ms}ms"
