"""Frequency caps: does one more send fit every sliding window a cap allows?

A cap ``max per D`` allows at most ``max`` sends in every window ``(t - D, t]``. Sends are
decided in send-time order, so the newest window, ``(at - D, at]``, is nearly always the one
that decides; but a send decided late (an event later than the allowed lateness) lands before
sends already made, and the windows after it must hold too. So every window that would hold the
new send is checked: it ends at ``at`` or at a later send less than ``D`` after it.
"""

from __future__ import annotations

from collections.abc import Sequence


def fits(times: Sequence[int], at: int, per: int, most: int) -> bool:
    """Whether a send at ``at`` keeps every window of ``per`` ms at ``most`` sends or fewer.

    ``times`` are the send times the cap already counts (ms, any order).
    """
    ends = [at, *(t for t in times if at < t < at + per)]
    return all(sum(1 for t in times if end - per < t <= end) < most for end in ends)
