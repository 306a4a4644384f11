"""Deliver one firing: claim it once, render it, send it, record every attempt.

Exactly once over at-least-once queues. Before anything, the firing id is *claimed* with a
conditional write in the activations table (``claimed``, with a lease and this attempt's holder
id); a redelivered message finds the claim and sends nothing. Just before the provider call the
claim becomes ``sending``. So when an attempt vanishes (a crash, a timeout), its lease tells the
next one what happened:

- ``claimed`` and lapsed: the provider was never called; the firing is claimed again and sent.
- ``sending`` and lapsed: the provider may have sent it. Rather than risk a second message, the
  firing is parked as ``outcome_unknown`` for a person, and only a person's explicit redrive
  (``nudge redrive --resend-unknown``) sends it again; copies of the message are duplicates.

A provider answer that leaves the outcome open (a 5xx or a read timeout after the request went
out) is parked the same way. A provider call is one attempt (``wiring/retries.SEND_ONCE``):
retries happen by claiming again, never inside the client.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts import FiringMessage
from ..redact import scrub
from .ports import (
    ActivationLog,
    ActivationLogUnavailable,
    ActivationStatus,
    Channel,
    Claim,
    ClaimLost,
    InvalidRecipient,
    Outgoing,
    PermanentSendError,
    TransientSendError,
    UncertainSendError,
)
from .rendering import DeliverySettings, render_firing
from .templates import Rendered, RenderError, TemplateSet

UNKNOWN_AFTER_CRASH = "an earlier attempt ended after its provider call started: outcome unknown"


@dataclass(frozen=True)
class DeliveryResult:
    status: ActivationStatus
    firing: FiringMessage
    channel: str
    recipient: Any = None
    rendered: Rendered | None = None
    provider_message_id: str | None = None
    reason: str | None = None
    unrecorded: bool = False
    """Sent, but the activations table could not record it: the message is parked saying so."""


class DeliveryService:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        templates: TemplateSet,
        log: ActivationLog,
        settings: DeliverySettings,
        holder_ids: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.channels = channels
        self.templates = templates
        self.log = log
        self.settings = settings
        self.holder_ids = holder_ids

    def deliver(
        self,
        firing: FiringMessage,
        attempt: int,
        now_ms: int,
        *,
        resend_unknown: bool = False,
        sent_as: str | None = None,
    ) -> DeliveryResult:
        """``attempt`` is the queue's receive count (1 on first delivery).

        ``resend_unknown`` is a person's decision to send a firing parked as outcome unknown;
        ``sent_as`` is the provider message id of a send the table did not record (a parked
        message redriven): the outcome is recorded and nothing is sent.
        """
        channel = self.channels.get(firing.channel)
        if channel is None:
            return self._settle(
                firing, ActivationStatus.DEAD_LETTERED, now_ms, attempt, f"no channel '{firing.channel}'"
            )
        try:
            if sent_as is not None:
                self.log.record(
                    firing, status=ActivationStatus.SENT, now_ms=now_ms, attempt=attempt, provider_message_id=sent_as
                )
                return DeliveryResult(ActivationStatus.SENT, firing, firing.channel, provider_message_id=sent_as)
            holder = self.holder_ids()
            claim = self.log.claim(firing, now_ms, holder, resend_unknown)
        except ActivationLogUnavailable as exc:
            return self._log_unavailable(firing, attempt, exc)
        if claim is Claim.DONE:
            return DeliveryResult(ActivationStatus.DUPLICATE, firing, firing.channel)
        if claim is Claim.BUSY:
            return DeliveryResult(ActivationStatus.RETRYING, firing, firing.channel, reason="another attempt holds it")
        if claim is Claim.UNKNOWN:
            return self._settle(firing, ActivationStatus.OUTCOME_UNKNOWN, now_ms, attempt, UNKNOWN_AFTER_CRASH)
        try:
            recipient = channel.recipient(firing)
        except InvalidRecipient as exc:
            return self._settle(firing, ActivationStatus.FAILED, now_ms, attempt, str(exc))
        if recipient is None:
            return self._settle(firing, ActivationStatus.NO_RECIPIENT, now_ms, attempt, f"no {firing.channel} address")
        try:
            rendered, link = render_firing(firing, self.templates, self.settings)
        except RenderError as exc:
            return self._settle(firing, ActivationStatus.DEAD_LETTERED, now_ms, attempt, f"template: {exc}")
        message = Outgoing(firing, recipient, rendered, link)
        try:
            self.log.start_sending(firing, now_ms, holder)
        except ClaimLost:
            return DeliveryResult(ActivationStatus.RETRYING, firing, firing.channel, reason="another attempt took it")
        except ActivationLogUnavailable as exc:
            return self._log_unavailable(firing, attempt, exc)
        return self._send(channel, message, attempt, now_ms)

    def _send(self, channel: Channel, message: Outgoing, attempt: int, now_ms: int) -> DeliveryResult:
        firing = message.firing
        try:
            provider_id = channel.send(message)
        except PermanentSendError as exc:
            return self._settle(firing, ActivationStatus.FAILED, now_ms, attempt, str(exc), message)
        except UncertainSendError as exc:
            reason = f"the provider answered {exc} after the request went out: outcome unknown"
            return self._settle(firing, ActivationStatus.OUTCOME_UNKNOWN, now_ms, attempt, reason, message)
        except TransientSendError as exc:
            if attempt >= self.settings.max_attempts:
                reason = f"gave up after {attempt} attempts: {exc}"
                return self._settle(firing, ActivationStatus.DEAD_LETTERED, now_ms, attempt, reason, message)
            return self._settle(firing, ActivationStatus.RETRYING, now_ms, attempt, str(exc), message)
        try:
            self.log.record(
                firing, status=ActivationStatus.SENT, now_ms=now_ms, attempt=attempt, provider_message_id=provider_id
            )
        except ActivationLogUnavailable as exc:
            reason = f"sent, but the activations table did not record it ({exc.code})"
            return DeliveryResult(
                ActivationStatus.SENT,
                firing,
                firing.channel,
                message.recipient,
                message.rendered,
                provider_id,
                reason,
                unrecorded=True,
            )
        return DeliveryResult(
            ActivationStatus.SENT, firing, firing.channel, message.recipient, message.rendered, provider_id
        )

    def _log_unavailable(self, firing: FiringMessage, attempt: int, exc: ActivationLogUnavailable) -> DeliveryResult:
        """Nothing was sent and the table cannot say so: retry, or park with the reason after the last attempt."""
        reason = f"activations table unavailable ({exc.code})"
        if attempt >= self.settings.max_attempts:
            reason = f"gave up after {attempt} attempts: {reason}"
            return DeliveryResult(ActivationStatus.DEAD_LETTERED, firing, firing.channel, reason=reason)
        return DeliveryResult(ActivationStatus.RETRYING, firing, firing.channel, reason=reason)

    def _settle(
        self,
        firing: FiringMessage,
        status: ActivationStatus,
        now_ms: int,
        attempt: int,
        reason: str,
        message: Outgoing | None = None,
    ) -> DeliveryResult:
        """Record ``status`` with its reason (scrubbed of addresses); a table that cannot record it does not
        change what the queue does with the message, only what the table says."""
        reason = scrub(reason)
        try:
            self.log.record(firing, status=status, now_ms=now_ms, attempt=attempt, reason=reason)
        except ActivationLogUnavailable as exc:
            reason = f"{reason} (not recorded: activations table unavailable, {exc.code})"
        return DeliveryResult(
            status,
            firing,
            firing.channel,
            message.recipient if message else None,
            message.rendered if message else None,
            reason=reason,
        )
