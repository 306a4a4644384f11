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
from enum import StrEnum
from typing import Any, Protocol

from .context import FiringMessage, template_context
from .templates import Rendered, RenderError, TemplateSet
from .unsubscribe import unsubscribe_url


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
    firing: FiringMessage
    recipient: Any
    rendered: Rendered | None
    unsubscribe_url: str


class Channel(Protocol):
    name: str

    def recipient(self, firing: FiringMessage) -> Any:
        """Who to send to, from the profile (or the stack's settings); ``None`` if nobody."""
        ...

    def send(self, message: Outgoing) -> str:
        """Send and return the provider's message id; raise a ``SendError`` subclass on failure."""
        ...


class Claim(StrEnum):
    NEW = "new"  # ours to send
    DONE = "done"  # already sent or settled: a duplicate
    BUSY = "busy"  # another attempt holds a live claim: try again later
    UNKNOWN = "unknown"  # an earlier attempt died mid-send: never risk a second message


class ActivationLog(Protocol):
    def claim(self, firing: FiringMessage, now_ms: int) -> Claim: ...

    def record(
        self,
        firing: FiringMessage,
        *,
        status: str,
        now_ms: int,
        attempt: int,
        provider_message_id: str | None = None,
        reason: str | None = None,
    ) -> None: ...


class Status(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    NO_RECIPIENT = "no_recipient"
    FAILED = "failed_permanent"
    RETRY = "retry"
    DEAD_LETTER = "dead_lettered"


@dataclass(frozen=True)
class DeliveryResult:
    status: Status
    firing: FiringMessage
    channel: str
    recipient: Any = None
    rendered: Rendered | None = None
    provider_message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DeliverySettings:
    site_url: str
    unsubscribe_base_url: str
    unsubscribe_secret: bytes
    max_attempts: int = 5


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

    def render(self, firing: FiringMessage) -> tuple[Rendered | None, str]:
        """The message a firing would send, and its unsubscribe link (also what ``nudge preview`` shows)."""
        link = unsubscribe_url(
            self.settings.unsubscribe_base_url, self.settings.unsubscribe_secret, firing.customer_id, firing.channel
        )
        if firing.template is None:
            return None, link
        template = self.templates.get(firing.channel, firing.template)
        if template is None:
            raise RenderError(f"no {firing.channel} template named {firing.template}")
        context = template_context(firing, site_url=self.settings.site_url, unsubscribe_url=link)
        return template.render(context), link

    def deliver(self, firing: FiringMessage, attempt: int, now_ms: int) -> DeliveryResult:
        """``attempt`` is the queue's receive count (1 on first delivery)."""
        channel = self.channels.get(firing.channel)
        if channel is None:
            return self._settle(firing, Status.DEAD_LETTER, now_ms, attempt, reason=f"no channel '{firing.channel}'")
        claim = self.log.claim(firing, now_ms)
        if claim is Claim.DONE:
            return DeliveryResult(Status.DUPLICATE, firing, firing.channel)
        if claim is Claim.BUSY:
            return DeliveryResult(Status.RETRY, firing, firing.channel, reason="another attempt is sending it")
        if claim is Claim.UNKNOWN:
            return self._settle(
                firing, Status.DEAD_LETTER, now_ms, attempt, reason="an earlier attempt ended mid-send: outcome unknown"
            )
        recipient = channel.recipient(firing)
        if recipient is None:
            return self._settle(firing, Status.NO_RECIPIENT, now_ms, attempt, reason=f"no {firing.channel} address")
        try:
            rendered, link = self.render(firing)
        except RenderError as exc:
            return self._settle(firing, Status.DEAD_LETTER, now_ms, attempt, reason=f"template: {exc}")
        message = Outgoing(firing, recipient, rendered, link)
        try:
            provider_id = channel.send(message)
        except PermanentSendError as exc:
            return self._settle(firing, Status.FAILED, now_ms, attempt, reason=str(exc), message=message)
        except TransientSendError as exc:
            if attempt >= self.settings.max_attempts:
                return self._settle(
                    firing, Status.DEAD_LETTER, now_ms, attempt, reason=f"gave up after {attempt} attempts: {exc}"
                )
            self.log.record(firing, status="retrying", now_ms=now_ms, attempt=attempt, reason=str(exc))
            return DeliveryResult(Status.RETRY, firing, firing.channel, recipient, rendered, reason=str(exc))
        self.log.record(firing, status=Status.SENT, now_ms=now_ms, attempt=attempt, provider_message_id=provider_id)
        return DeliveryResult(Status.SENT, firing, firing.channel, recipient, rendered, provider_id)

    def _settle(
        self,
        firing: FiringMessage,
        status: Status,
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
