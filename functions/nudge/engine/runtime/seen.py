"""Which event ids a customer has sent lately: duplicates are recognized by id alone, for a set time.

Event ids are unique per customer. A second event with an id already seen has no effect, whatever
its name, payload or timestamp, and whether or not the first is still stored: the memory outlives
the events it was made from (an ``add_to_cart`` kept 1 h is still recognized 24 h later, so does an
``identify`` that is never stored). Each id is remembered for ``window`` after its own timestamp,
counted on the customer's clock (``now``, the latest stored event time).

Ids are kept as 64-bit digests, 11 characters of base64 each, beside the event time in seconds. In
the encoded state they are one string of digests (in sorted order) and the times as offsets from
the oldest, ``[oldest, "digests", [offsets]]``: about 16 bytes an id, whatever the length of the id.
Two different ids of one customer share a digest with a probability near 2^-64 per pair.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

from .eventlog import NEVER

_WIDTH = 11
"""Characters of one digest: 8 bytes in unpadded base64."""


def digest(event_id: str) -> str:
    raw = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(raw).decode()[:11]


class SeenIds:
    """Digest of each id seen -> its event time in whole seconds (the memory's unit: a window is hours)."""

    __slots__ = ("_ids",)

    def __init__(self, ids: dict[str, int] | None = None) -> None:
        self._ids: dict[str, int] = {} if ids is None else ids

    def __contains__(self, event_id: str) -> bool:
        return digest(event_id) in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def add(self, event_id: str, ts: int) -> None:
        self._ids[digest(event_id)] = ts // 1000

    @staticmethod
    def due(ts: int, window: int) -> int:
        """The first ``now`` (ms) at which an id of event time ``ts`` is forgotten."""
        return (ts // 1000 + 1) * 1000 + window

    def prune(self, now: int, window: int) -> int:
        """Forget ids older than ``window`` before ``now``; return when the next one is due (ms)."""
        if not self._ids:
            return NEVER
        oldest = (now - window) // 1000
        kept = {key: ts for key, ts in self._ids.items() if ts >= oldest}
        if len(kept) != len(self._ids):
            self._ids = kept
        return NEVER if not kept else self.due(min(kept.values()) * 1000, window)

    def encode(self) -> list[object]:
        """``[oldest second, digests in sorted order as one string, [second - oldest, ...]]``."""
        items = sorted(self._ids.items())
        oldest = min(ts for _, ts in items)
        return [oldest, "".join(key for key, _ in items), [ts - oldest for _, ts in items]]

    @classmethod
    def decode(cls, data: list[object] | None) -> SeenIds:
        if not data:
            return cls()
        oldest, digests, offsets = data
        assert isinstance(oldest, int) and isinstance(digests, str) and isinstance(offsets, list)
        keys = [digests[i : i + _WIDTH] for i in range(0, len(digests), _WIDTH)]
        return cls({key: oldest + offset for key, offset in zip(keys, offsets, strict=True)})
