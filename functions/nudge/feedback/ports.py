"""The feedback path's view of the outside world: the events stream and the SMS phone index.

``nudge.adapters`` implements them over Kinesis and DynamoDB; the unit tests use plain objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class EventSink(Protocol):
    """Where message events go: the customer's stream, partitioned by customer id."""

    def put(self, envelopes: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Put every envelope (retrying those the stream refused); return ``event_id`` -> error code
        for each one that still could not be put: empty when all of them are on the stream."""
        ...


class RecipientLookup(Protocol):
    """Which customer was last texted at a phone number (what an SMS reply needs)."""

    def customer_of(self, phone: str) -> str | None:
        """The customer id, or ``None`` when no text went to ``phone`` within the index's retention."""
        ...


class RecipientIndex(Protocol):
    """What delivery writes before it texts a number, so that a reply from it finds the customer."""

    def remember(self, phone: str, customer_id: str) -> None: ...
