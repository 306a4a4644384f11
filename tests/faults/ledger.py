"""What moto itself saw: every message any queue accepted, every email SES accepted, what queues hold.

The suite counts at the services, never in Nudge's code: a firing "queued twice" is two messages
moto's SQS accepted, a "double send" is two emails in moto's SES backend. A fault that makes the
code believe a call failed after the service executed it ("executed, response lost") is exactly
where our own counters would be wrong.

- Queued messages: ``SQSBackend.send_message`` is wrapped (``SendMessage`` and each entry of
  ``SendMessageBatch`` go through it), so a message counts even when it was consumed and deleted
  long before the end of the run.
- Emails: ``ses_backends[...].sent_messages`` (SES v2's ``SendEmail`` with raw content lands there),
  grouped by firing: the firing id's first 16 characters are in the ``Message-ID`` header
  (``nudge.delivery.requests.SesEmail.mime``); an email without it groups by (to, subject, text).
- What a queue holds at the end (dead-letter queues, including messages moto's redrive policy
  moved there, which never pass through ``send_message``): read from moto's queue model.
"""

from __future__ import annotations

import contextlib
import email
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from typing import Any
from unittest import mock

from .moto_stack import ACCOUNT, REGION

_FIRING_IN_MESSAGE_ID = re.compile(r"\.([0-9a-f]{16})@")


@dataclass(frozen=True)
class QueuedMessage:
    """One message as moto's SQS accepted (or holds) it."""

    queue: str
    body: str
    attributes: dict[str, str]
    """String message attributes by name (``reason``, ``outcome``, ``rule``...)."""
    at_ms: int


@dataclass(frozen=True)
class SentEmail:
    """One email moto's SES accepted."""

    firing_prefix: str | None
    """The first 16 characters of the firing id, from the ``Message-ID`` header."""
    to: tuple[str, ...]
    subject: str
    fingerprint: tuple[str, ...]
    """(to, subject, text): what groups emails that carry no firing id."""


def _string_attributes(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, dict):
            text = value.get("StringValue", value.get("string_value", value.get("stringValue")))
            if text is not None:
                out[name] = str(text)
    return out


class MotoLedger:
    """Taps moto's SQS and reads its SES; see the module docstring."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.sent: list[QueuedMessage] = []

    def install(self) -> contextlib.ExitStack:
        from moto.sqs.models import SQSBackend

        original = SQSBackend.send_message
        ledger = self

        def send_message(backend: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
            message = original(backend, queue_name, message_body, *args, **kwargs)
            attributes = _string_attributes(getattr(message, "message_attributes", None))
            ledger.sent.append(QueuedMessage(queue_name, message_body, attributes, ledger.now_ms()))
            return message

        stack = contextlib.ExitStack()
        stack.enter_context(mock.patch.object(SQSBackend, "send_message", send_message))
        return stack

    def sent_to(self, queue_name: str) -> list[QueuedMessage]:
        """Every message ``queue_name`` ever accepted, in order."""
        return [message for message in self.sent if message.queue == queue_name]

    def held_by(self, queue_name: str) -> list[QueuedMessage]:
        """What ``queue_name`` holds now (visible or in flight), from moto's model of the queue."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT][REGION].queues[queue_name]
        return [
            QueuedMessage(queue_name, m.body, _string_attributes(m.message_attributes), int(m.sent_timestamp or 0))
            for m in list(queue._messages)
        ]

    def emails(self) -> list[SentEmail]:
        """Every email moto's SES accepted (SES v2 ``SendEmail`` lands in the v1 backend)."""
        from moto.ses.models import ses_backends

        out: list[SentEmail] = []
        for message in ses_backends[ACCOUNT][REGION].sent_messages:
            raw = getattr(message, "raw_data", None)
            if raw is None:  # a simple (non-raw) email: Nudge sends none
                out.append(SentEmail(None, tuple(getattr(message, "destinations", ())), "", ("simple", message.id)))
                continue
            parsed = email.message_from_string(raw, policy=policy.default)
            match = _FIRING_IN_MESSAGE_ID.search(str(parsed.get("Message-ID", "")))
            body = parsed.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            to = tuple(str(parsed.get("To", "")).split(","))
            subject = str(parsed.get("Subject", ""))
            out.append(SentEmail(match.group(1) if match else None, to, subject, (*to, subject, text)))
        return out
