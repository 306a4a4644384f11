"""What mapping one provider event gave: the envelopes to put, or why there are none."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Skip(StrEnum):
    """Why a provider event puts nothing on the stream: counted, never an error."""

    NOT_OURS = "not_ours"
    """No customer in its tags or context: a message Nudge did not send (another sender on the
    same configuration set), or one sent before delivery tagged its customer."""
    IGNORED = "ignored"
    """An event type that says nothing the stream needs (a send, a delay, an intermediate status)."""
    UNREADABLE = "unreadable"
    """Not the shape the provider documents: a field missing or of the wrong type."""
    UNKNOWN_NUMBER = "unknown_number"
    """An opt-out reply from a number Nudge has sent no text to within the index's retention."""


@dataclass(frozen=True)
class Mapped:
    """Envelopes (``contracts`` event envelopes, as dicts) or the reason there are none.

    ``kind`` is the provider's event type (``Bounce``, ``TEXT_BLOCKED``, ``inbound``): what the
    function counts by, never anything personal.
    """

    kind: str
    envelopes: tuple[dict[str, Any], ...] = ()
    skip: Skip | None = None

    @classmethod
    def skipped(cls, kind: str, why: Skip) -> Mapped:
        return cls(kind=kind, skip=why)
