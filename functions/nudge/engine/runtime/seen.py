"""Which event ids a customer has sent lately: duplicates are recognized by id alone, for a set time.

Event ids are unique per customer. A second event with an id already seen has no effect, whatever
its name, payload or timestamp, and whether or not the first is still stored: the memory outlives
the events it was made from (an ``add_to_cart`` kept 1 h is still recognized 24 h later, so is an
``identify`` that is never stored). Each id is remembered for ``window`` after its own timestamp,
counted on the customer's clock (``now``, the latest stored event time), and forgotten on the
next full hour of that clock (``expiry``).

Only the ids of events the event log no longer holds are kept here (and every ``identify``'s,
which is never stored): a stored event's id is its own, and ``EventLog.has_id`` answers for it;
when the log lets an event go, the engine moves its id here for the rest of the window.

Ids are kept as 64-bit digests, 11 characters of base64 each, beside the event time in seconds.
In the encoded state they are one string of digests and the times as offsets from the oldest,
``[oldest, "digests", [offsets]]``: about 16 bytes an id, whatever the length of the id. Two
different ids of one customer share a digest with a probability near 2^-64 per pair.
"""

from __future__ import annotations

import base64
import hashlib

from .eventlog import NEVER

HOUR = 3_600_000

_WIDTH = 11
"""Characters of one digest: 8 bytes in unpadded base64."""


def digest(event_id: str) -> str:
    """The 11-character form an id is remembered in."""
    raw = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(raw).decode()[:11]


def expiry(ts: int, window: int) -> int:
    """When (ms) an id of event time ``ts`` is forgotten: the first full hour after ``ts + window``.

    Forgetting on the hour lets a busy customer's memory be swept once an hour of event time,
    not on every event; an id is remembered at least ``window``, at most an hour longer.
    """
    return ((ts // 1000 * 1000 + window) // HOUR + 1) * HOUR


class SeenIds:
    """Digest of each id seen -> its event time in whole seconds."""

    __slots__ = ("_ids", "_oldest")

    def __init__(self, ids: dict[str, int] | None = None, oldest: int | None = None) -> None:
        self._ids: dict[str, int] = {} if ids is None else ids
        self._oldest = oldest if oldest is not None or not self._ids else min(self._ids.values())
        """The earliest event time (s) among the ids, whose expiry is the next one."""

    def __contains__(self, key: str) -> bool:
        """Whether the id of this digest was seen (``key`` is ``digest(event_id)``)."""
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, key: str, ts: int, window: int) -> int:
        """Remember the id of digest ``key`` and event time ``ts``; return when it is forgotten."""
        seconds = ts // 1000
        self._ids[key] = seconds
        if self._oldest is None or seconds < self._oldest:
            self._oldest = seconds
        return expiry(ts, window)

    def prune(self, now: int, window: int) -> int:
        """Forget the ids whose expiry ``now`` has reached; return the next expiry (ms).

        The oldest id expires first, so nothing is swept until ``now`` reaches its expiry.
        """
        if self._oldest is None:
            return NEVER
        due = expiry(self._oldest * 1000, window)
        if now < due:
            return due
        # expiry(ts) > now exactly when ts >= the hour of now, less the window: keep from that second on.
        first_kept = -(-(now // HOUR * HOUR - window) // 1000)
        self._ids = {key: ts for key, ts in self._ids.items() if ts >= first_kept}
        self._oldest = min(self._ids.values()) if self._ids else None
        return NEVER if self._oldest is None else expiry(self._oldest * 1000, window)

    def encode(self) -> list[object]:
        """``[oldest second, the digests as one string, [second - oldest, ...]]``, in the order seen.

        The order is the order the ids came in (a decoded memory keeps its order), so a state kept
        in memory and one decoded between events encode alike without a sort on every write.
        """
        oldest = self._oldest if self._oldest is not None else 0
        return [oldest, "".join(self._ids), [ts - oldest for ts in self._ids.values()]]

    @classmethod
    def decode(cls, data: list[object] | None) -> SeenIds:
        if not data:
            return cls()
        oldest, digests, offsets = data
        assert isinstance(oldest, int) and isinstance(digests, str) and isinstance(offsets, list)
        keys = [digests[i : i + _WIDTH] for i in range(0, len(digests), _WIDTH)]
        return cls({key: oldest + offset for key, offset in zip(keys, offsets, strict=True)}, oldest)
