"""One message of the firings queue: read it, deliver it, then leave it, back it off or park it.

A transient failure leaves the message on the queue with a longer visibility timeout (exponential
backoff) and raises ``RetryLater`` so the caller reports a batch item failure; after
``max_attempts``, on a template that cannot render, on a body that is not a firing, or when the
outcome of a send is unknown, the message is parked in the firings DLQ with its reason, for
``nudge redrive``. Every message this code parks says why (the ``reason`` attribute); the queue's
own redrive (``maxReceiveCount``, two receives later) catches only a message whose every attempt
died before it could park it. Permanent failures are recorded in the activations table by the
service and not retried.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..clock import WALL_CLOCK, Clock
from ..contracts import ContractError, decode_firing
from ..timefmt import parse_iso
from .ports import ActivationStatus, FiringQueue
from .service import DeliveryResult, DeliveryService

MAX_BACKOFF_SECONDS = 900
"""The longest a retried message stays hidden before it comes back."""


class RetryLater(Exception):
    """Raised for a message to stay on the queue (a batch item failure)."""


MAX_DEFER_SECONDS = 900
"""The longest an early message is put back for (SQS's largest ``DelaySeconds``): one held longer
comes back and is put back again until its send time."""


def backoff_seconds(attempt: int) -> int:
    """10 s after the first attempt, doubling with each, at most ``MAX_BACKOFF_SECONDS``."""
    return min(MAX_BACKOFF_SECONDS, 10 * 2 ** max(attempt - 1, 0))


RESEND_UNKNOWN = "resend_unknown"
"""The message attribute of a person's redrive that may send a firing parked as outcome unknown."""
OUTCOME = "outcome"
"""The message attribute of a parked firing saying what is known of its send (see ``FiringQueue.park``)."""


class Deliverer:
    """The delivery service plus the queue mechanics around it."""

    def __init__(self, service: DeliveryService, queue: FiringQueue, clock: Clock = WALL_CLOCK) -> None:
        self.service = service
        self.queue = queue
        self.clock = clock

    def handle(
        self,
        body: str,
        attempt: int,
        receipt_handle: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> DeliveryResult | None:
        """Deliver one queue message (``attempt`` is its receive count); raise ``RetryLater`` to leave it queued.

        A message that is not a firing is parked at once with the reason and ``None`` is returned:
        retrying it could never help. Without a ``receipt_handle`` (the local stack) a retried
        message keeps the queue's own visibility timeout. ``attributes`` are the message's string
        attributes: a redriven message carries what its park said (``outcome``) and, when a person
        chose so, ``resend_unknown``.
        """
        try:
            firing = decode_firing(body)
        except ContractError as exc:
            self.queue.park(body, exc.reason)
            return None
        attributes = attributes or {}
        early = self._early_by(firing.send_at)
        if early > 0:
            # The evaluator queues a firing at its send time; a message can still come early (a
            # clock ahead of delivery's, an event stamped in the future). Never before ``send_at``.
            seconds = min(MAX_DEFER_SECONDS, -(-early // 1000))
            self.queue.requeue(body, attributes, seconds)
            reason = f"not before its send_at {firing.send_at}: put back for {seconds} s"
            return DeliveryResult(ActivationStatus.DEFERRED, firing, firing.channel, reason=reason)
        if attempt > self.service.settings.max_attempts:
            # Earlier receives ended without an outcome (the function died or timed out each
            # time): park it here, with a reason, before the queue's own redrive moves it without one.
            reason = f"received {attempt} times without an outcome: every attempt crashed or timed out"
            self.queue.park(body, reason, attributes.get(OUTCOME))
            return DeliveryResult(ActivationStatus.DEAD_LETTERED, firing, firing.channel, reason=reason)
        outcome = attributes.get(OUTCOME, "")
        result = self.service.deliver(
            firing,
            attempt,
            self.clock.now_ms(),
            resend_unknown=attributes.get(RESEND_UNKNOWN) == "true",
            sent_as=outcome.removeprefix("sent:") if outcome.startswith("sent:") else None,
        )
        if result.status is ActivationStatus.RETRYING:
            if receipt_handle is not None:
                self.queue.delay(receipt_handle, backoff_seconds(attempt))
            raise RetryLater(result.reason or "retry")
        if result.status is ActivationStatus.DEAD_LETTERED:
            self.queue.park(body, result.reason or "unknown")
        elif result.status is ActivationStatus.OUTCOME_UNKNOWN:
            self.queue.park(body, result.reason or "outcome unknown", "unknown")
        elif result.unrecorded:
            self.queue.park(body, result.reason or "sent, not recorded", f"sent:{result.provider_message_id}")
        return result

    def _early_by(self, send_at: str | None) -> int:
        """How many ms before ``send_at`` it is now (0 or less: it may go; a v1 message has none)."""
        return 0 if send_at is None else parse_iso(send_at) - self.clock.now_ms()  # the contract checked it
