"""Deliver one firing: claim it once, render it, send it, record every attempt.

Exactly once over at-least-once queues: before sending, the firing id is *claimed* with a
conditional write in the activations table. A redelivered message finds its claim and sends
nothing. If an earlier attempt claimed it and vanished without recording the outcome (a crash
mid-send), the outcome is unknown: rather than risk a second message, the firing is parked in the
dead-letter queue with that reason for a person to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts import FiringMessage
from .ports import ActivationLog, ActivationStatus, Channel, Claim, Outgoing, PermanentSendError, TransientSendError
from .rendering import DeliverySettings, render_firing
from .templates import Rendered, RenderError, TemplateSet


@dataclass(frozen=True)
class DeliveryResult:
    status: ActivationStatus
    firing: FiringMessage
    channel: str
    recipient: Any = None
    rendered: Rendered | None = None
    provider_message_id: str | None = None
    reason: str | None = None


class DeliveryService:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        templates: TemplateSet,
        log: ActivationLog,
        settings: DeliverySettings,
    ) -> None:
        self.channels = channels
        self.templates = templates
        self.log = log
        self.settings = settings

    def deliver(self, firing: FiringMessage, attempt: int, now_ms: int) -> DeliveryResult:
        """``attempt`` is the queue's receive count (1 on first delivery)."""
        channel = self.channels.get(firing.channel)
        if channel is None:
            return self._settle(
                firing, ActivationStatus.DEAD_LETTERED, now_ms, attempt, reason=f"no channel '{firing.channel}'"
            )
        claim = self.log.claim(firing, now_ms)
        if claim is Claim.DONE:
            return DeliveryResult(ActivationStatus.DUPLICATE, firing, firing.channel)
        if claim is Claim.BUSY:
            return DeliveryResult(
                ActivationStatus.RETRYING, firing, firing.channel, reason="another attempt is sending it"
            )
        if claim is Claim.UNKNOWN:
            return self._settle(
                firing,
                ActivationStatus.DEAD_LETTERED,
                now_ms,
                attempt,
                reason="an earlier attempt ended mid-send: outcome unknown",
            )
        recipient = channel.recipient(firing)
        if recipient is None:
            return self._settle(
                firing, ActivationStatus.NO_RECIPIENT, now_ms, attempt, reason=f"no {firing.channel} address"
            )
        try:
            rendered, link = render_firing(firing, self.templates, self.settings)
        except RenderError as exc:
            return self._settle(firing, ActivationStatus.DEAD_LETTERED, now_ms, attempt, reason=f"template: {exc}")
        message = Outgoing(firing, recipient, rendered, link)
        try:
            provider_id = channel.send(message)
        except PermanentSendError as exc:
            return self._settle(firing, ActivationStatus.FAILED, now_ms, attempt, reason=str(exc), message=message)
        except TransientSendError as exc:
            if attempt >= self.settings.max_attempts:
                return self._settle(
                    firing,
                    ActivationStatus.DEAD_LETTERED,
                    now_ms,
                    attempt,
                    reason=f"gave up after {attempt} attempts: {exc}",
                )
            self.log.record(firing, status=ActivationStatus.RETRYING, now_ms=now_ms, attempt=attempt, reason=str(exc))
            return DeliveryResult(
                ActivationStatus.RETRYING, firing, firing.channel, recipient, rendered, reason=str(exc)
            )
        self.log.record(
            firing, status=ActivationStatus.SENT, now_ms=now_ms, attempt=attempt, provider_message_id=provider_id
        )
        return DeliveryResult(ActivationStatus.SENT, firing, firing.channel, recipient, rendered, provider_id)

    def _settle(
        self,
        firing: FiringMessage,
        status: ActivationStatus,
        now_ms: int,
        attempt: int,
        reason: str,
        message: Outgoing | None = None,
    ) -> DeliveryResult:
        self.log.record(firing, status=status, now_ms=now_ms, attempt=attempt, reason=reason)
        return DeliveryResult(
            status,
            firing,
            firing.channel,
            message.recipient if message else None,
            message.rendered if message else None,
            reason=reason,
        )
