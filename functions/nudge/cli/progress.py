"""A dependency-free progress line for long replays, shown only on an interactive terminal."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws ``bytes read / total`` at most a few times a second on ``stream``."""

    def __init__(self, total: int, stream: TextIO, enabled: bool, label: str = "replay") -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = enabled
        self.label = label
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, events: int, firings: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.2:
            return
        self._last_draw = now
        self._draw(done, events, firings, now)

    def close(self, done: int, events: int, firings: int) -> None:
        if self.enabled:
            self._draw(done, events, firings, time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, done: int, events: int, firings: int, now: float) -> None:
        fraction = min(done / self.total, 1.0)
        width = 30
        filled = int(width * fraction)
        elapsed = max(now - self.started, 1e-9)
        rate = events / elapsed
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%} "
            f"{events:,} events  {firings:,} firings  {rate:,.0f} ev/s"
        )
        self.stream.flush()
