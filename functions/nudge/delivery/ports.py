"""Delivery's view of the outside world: channels, the activation log and the firings queue.

``nudge.adapters`` implements these over SES, SNS, End User Messaging, EventBridge, DynamoDB and
SQS; the domain (``service``, ``deliverer``, ``preview``) sees only these interfaces, so it runs
the same against AWS, moto, and the stubs of a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..contracts import FiringMessage
from ..redact import scrub

if TYPE_CHECKING:  # the evaluator reads the activation statuses, and must not load Jinja2 for them
    from .templates import Rendered


class ActivationStatus(StrEnum):
    """Where a firing stands: the status the activations table records and each delivery reports.

    One name each, the one stored: a status written by an older version reads back the same (an
    older version's ``sending`` covered both ``claimed`` and ``sending``; it is read as ``sending``,
    the cautious reading).
    """

    CLAIMED = "claimed"
    """Held by an attempt that has not called the provider: if it vanishes, nothing went out."""
    SENDING = "sending"
    """The provider call started and its outcome is not recorded yet."""
    SENT = "sent"
    RETRYING = "retrying"
    """A transient failure: the message stays on the queue and comes back after a backoff."""
    DEAD_LETTERED = "dead_lettered"
    """Parked in the firings DLQ with a reason, nothing sent, for a person and ``nudge redrive``."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """Parked: an attempt vanished after its provider call started. Sent again only when a person
    says so (``nudge redrive --resend-unknown``), never by a retry or a copy of the message."""
    FAILED = "failed_permanent"
    """The provider refused it for good (unverified sender, opted-out number, invalid address): never retried."""
    NO_RECIPIENT = "no_recipient"
    """The profile has no address for the channel: nothing to send."""
    DUPLICATE = "duplicate"
    """Reported, never recorded: the firing was already settled by an earlier delivery."""
    DEFERRED = "deferred"
    """Reported, never recorded: the message came before the firing's ``send_at`` and was put back
    on the queue, delayed, to come again then."""


RECLAIMABLE = frozenset({ActivationStatus.RETRYING, ActivationStatus.DEAD_LETTERED})
"""Statuses a new attempt may claim again: nothing was sent (a retry after backoff, a redrive).

A lapsed ``claimed`` is reclaimable too, but only once its lease is over (``ActivationLog.claim``)."""


class Claim(StrEnum):
    """The answer of ``ActivationLog.claim``: whose the firing is, not a status of its own."""

    NEW = "new"
    """Ours to send: the log now says ``claimed``, with our holder id."""
    DONE = "done"
    """Already settled (or parked as outcome unknown): a duplicate."""
    BUSY = "busy"
    """Another attempt holds a live claim: try again later."""
    UNKNOWN = "unknown"
    """An earlier attempt's lease lapsed after its provider call started: never risk a second message."""


class ActivationLogUnavailable(Exception):
    """The activations table did not answer (throttled past the client's retries, or down): retry later."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class ClaimLost(Exception):
    """Our claim lapsed and another attempt took the firing before we started sending: do not send."""


class SendError(Exception):
    """Base of channel failures; ``code`` is the provider's error code, safe to log.

    The provider's ``detail`` often quotes the recipient, so it is scrubbed here, where every
    reason of a failed send is made (``nudge.redact``).
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(scrub(f"{code}: {detail}" if detail else code))
        self.code = code


class InvalidRecipient(SendError):
    """The profile's address for the channel is there but is not one valid address: never sent."""


class TransientSendError(SendError):
    """Not sent, and worth retrying with backoff: throttling, a connection that never opened."""


class UncertainSendError(SendError):
    """The request went out and the answer leaves open whether it was sent (a 5xx, a read timeout):
    never retried automatically, since the message may already be in the customer's inbox."""


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
    """Who was contacted, when and why, and the claim that makes a send happen once.

    Every method raises ``ActivationLogUnavailable`` when the table cannot be reached.
    """

    def claim(self, firing: FiringMessage, now_ms: int, holder: str, resend_unknown: bool = False) -> Claim:
        """Take the firing for the attempt ``holder`` (status ``claimed``), or say whose it is.

        ``resend_unknown`` (a person's explicit redrive) lets a firing parked as outcome unknown be
        claimed again.
        """
        ...

    def start_sending(self, firing: FiringMessage, now_ms: int, holder: str) -> None:
        """Mark the claim ``sending``, just before the provider call; raises ``ClaimLost`` if it is not ours.

        Idempotent for its holder, so a retried write whose first answer was lost succeeds.
        """
        ...

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

    def park(self, body: str, reason: str, outcome: str | None = None) -> None:
        """Put ``body`` in the firings DLQ with ``reason`` beside it (for ``nudge redrive``).

        ``outcome`` says what is known of the send when it is not "nothing was sent": ``unknown``,
        or ``sent:<provider message id>`` for a send the activations table did not record.
        """
        ...

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Keep a received message hidden for ``seconds`` before it is delivered again."""
        ...

    def requeue(self, body: str, attributes: Mapping[str, str], seconds: int) -> None:
        """Put a copy of ``body`` (with its string ``attributes``) back on the queue, hidden for ``seconds``.

        The caller then lets the received message go: the copy starts again at its first receive,
        so waiting for a send time never uses up a firing's attempts.
        """
        ...


class OptOutLog(Protocol):
    """Where the unsubscribe endpoint records an opt-out: the events stream, like any other event."""

    def record(self, event: dict[str, Any]) -> None:
        """Put the ``unsubscribed`` event, partitioned by its customer id."""
        ...
