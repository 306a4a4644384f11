"""The time every component reads: epoch milliseconds, from one ``Clock``.

Event times, the evaluator's wall, schedule expressions and activation records are all epoch
milliseconds, so a clock says milliseconds too: no component converts seconds. Production reads
``WallClock``; ``nudge local``, the bench and the tests hand the same components a
``VirtualClock`` they move themselves, so a day of waits runs in a second and a test says
exactly when "now" is.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """The current time, in epoch milliseconds."""
        ...


class WallClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


WALL_CLOCK = WallClock()
"""The default of every component that takes a clock."""


class VirtualClock:
    """A clock its owner sets: standing still at a given time, or running ``speed`` times as fast as ``wall``.

    Standing still (``speed=None``) is replay's clock: a driver sets it to each event's time and
    to each timer's due time. Running (``speed=2.0``) is ``nudge local``'s live mode: it starts at
    ``start_ms`` (the wall's time if not given) and advances ``speed`` ms per wall ms. Setting a
    running clock moves it to the new time and lets it run on from there.
    """

    def __init__(self, start_ms: int | None = None, *, speed: float | None = None, wall: Clock = WALL_CLOCK) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"a clock's speed must be positive, not {speed}")
        self.speed = speed
        self._wall = wall
        self._anchor_virtual = wall.now_ms() if start_ms is None and speed is not None else (start_ms or 0)
        self._anchor_wall = wall.now_ms() if speed is not None else 0

    def now_ms(self) -> int:
        if self.speed is None:
            return self._anchor_virtual
        return self._anchor_virtual + int((self._wall.now_ms() - self._anchor_wall) * self.speed)

    def set(self, now_ms: int) -> None:
        """Make it ``now_ms`` (earlier is allowed: a test may go back to replay a retry)."""
        self._anchor_virtual = now_ms
        if self.speed is not None:
            self._anchor_wall = self._wall.now_ms()

    def advance(self, by_ms: int) -> None:
        self.set(self.now_ms() + by_ms)

    def advance_to(self, now_ms: int) -> None:
        """Move forward to ``now_ms``; a time already passed leaves the clock where it is."""
        if now_ms > self.now_ms():
            self.set(now_ms)

    def __repr__(self) -> str:
        mode = "standing" if self.speed is None else f"{self.speed:g}x"
        return f"VirtualClock({self.now_ms()}, {mode})"
