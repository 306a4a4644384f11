"""Delivery's view of the outside world: channels, the activation log and the firings queue.

``nudge.adapters`` implements these over SES, SNS, End User Messaging, EventBridge, DynamoDB and
SQS; the domain (``service``, ``deliverer``, ``preview``) sees only these interfaces, so it runs
the same against AWS, moto, and the stubs of a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ..contracts import FiringMessage
from .templates import Rendered


class ActivationStatus(StrEnum):
    """Where a firing stands: the status the activations table records and each delivery reports.

    One name each, the one stored: a status written by an older version reads back the same.
    """

    SENDING = "sending"
    """Claimed by an attempt that has not recorded its outcome yet."""
    SENT = "sent"
    RETRYING = "retrying"
    """A transient failure: the message stays on the queue and comes back after a backoff."""
    DEAD_LETTERED = "dead_lettered"
    """Parked in the firings DLQ with a reason, for a person and ``nudge redrive``."""
    FAILED = "failed_permanent"
    """The provider refused it for good (unverified sender, opted-out number): never retried."""
    NO_RECIPIENT = "no_recipient"
    """The profile has no address for the channel: nothing to send."""
    DUPLICATE = "duplicate"
    """Reported, never recorded: the firing was already settled by an earlier delivery."""


RECLAIMABLE = frozenset({ActivationStatus.RETRYING, ActivationStatus.DEAD_LETTERED})
"""Statuses a new attempt may claim again: a retry after backoff, or a redrive from the DLQ."""


class Claim(StrEnum):
    """The answer of ``ActivationLog.claim``: whose the firing is, not a status of its own."""

    NEW = "new"
    """Ours to send: the log now says ``sending``."""
    DONE = "done"
    """Already settled: a duplicate."""
    BUSY = "busy"
    """Another attempt holds a live claim: try again later."""
    UNKNOWN = "unknown"
    """An earlier attempt's claim lapsed mid-send: never risk a second message."""


class SendError(Exception):
    """Base of channel failures; ``code`` is the provider's error code, safe to log."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class TransientSendError(SendError):
    """Throttling, timeouts, 5xx: worth retrying with backoff."""


class PermanentSendError(SendError):
    """Unverified sender, opted-out number, invalid token: retrying cannot help."""


@dataclass(frozen=True)
class Outgoing:
    """One message, ready for its channel: the firing, who it goes to, and what it says."""

    firing: FiringMessage
    recipient: Any
    rendered: Rendered | None
    unsubscribe_url: str


class ChannelRequest(Protocol):
    """The pure half of a channel: who it would send to, and the exact request it would make.

    ``preview`` needs only this half, so showing what a firing would send never needs a client.
    """

    name: str

    def recipient(self, firing: FiringMessage) -> Any:
        """Who to send to, from the profile (or the stack's settings); ``None`` if nobody."""
        ...

    def build(self, message: Outgoing) -> dict[str, Any]:
        """The keyword arguments of the provider call that sends ``message``."""
        ...


class Channel(ChannelRequest, Protocol):
    def send(self, message: Outgoing) -> str:
        """Send what ``build`` describes; return the provider's message id, or raise a ``SendError``."""
        ...


class ActivationLog(Protocol):
    """Who was contacted, when and why, and the claim that makes a send happen once."""

    def claim(self, firing: FiringMessage, now_ms: int) -> Claim: ...

    def record(
        self,
        firing: FiringMessage,
        *,
        status: ActivationStatus,
        now_ms: int,
        attempt: int,
        provider_message_id: str | None = None,
        reason: str | None = None,
    ) -> None: ...


class FiringQueue(Protocol):
    """The firings queue, as the consumer of one message sees it."""

    def park(self, body: str, reason: str) -> None:
        """Put ``body`` in the firings DLQ with ``reason`` beside it (for ``nudge redrive``)."""
        ...

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Keep a received message hidden for ``seconds`` before it is delivered again."""
        ...


class OptOutLog(Protocol):
    """Where the unsubscribe endpoint records an opt-out: the events stream, like any other event."""

    def record(self, event: dict[str, Any]) -> None:
        """Put the ``unsubscribed`` event, partitioned by its customer id."""
        ...
