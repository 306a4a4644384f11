"""What a sent message carries so that what its provider reports about it finds the customer again.

SES publishes an email's tags (``EmailTags``) with every event about it, and End User Messaging SMS
a text's ``Context``; delivery writes both (``ses_tags``, ``sms_context``) and the feedback function
reads them back (``read_tags``, ``read_context``). This module is the only place that knows how.

Both carry ``rule``, ``firing``, ``step`` and the customer id. A rule id (``[a-z0-9_]+``), a firing
id (hex) and a step (digits) are always valid values; a customer id is any text of 1 to 256
characters, while an SES tag value may hold only ASCII letters, digits, ``_`` and ``-`` (at most 256
of them; the SES API reference, ``MessageTag``) and an SMS context value at most 800 characters.
So an id made only of those characters travels as it is, under ``customer``; any other id travels
as the unpadded base64url of its UTF-8 (an alphabet of exactly the allowed characters) under
``customer_b64``, cut into ``customer_b64``, ``customer_b64_1``, ``customer_b64_2``... when it is
longer than one value may be. The name says which form a value is in, so reading it back is never
ambiguous, and every id round-trips (``tests/unit/test_feedback_ses.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts import FiringMessage

CUSTOMER = "customer"
CUSTOMER_B64 = "customer_b64"
RULE = "rule"
FIRING = "firing"
STEP = "step"

SES_VALUE_LIMIT = 256
"""An SES tag value's longest length."""
SMS_VALUE_LIMIT = 800
"""An End User Messaging ``Context`` value's longest length (the API allows 5 entries)."""
MAX_STEP = 100
"""The highest escalation step a firing message may carry (``FiringMessage.step``)."""

_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class SentMessage:
    """Who a reported message was sent to, and which firing sent it (what the tags said)."""

    customer_id: str
    rule: str | None = None
    firing_id: str | None = None
    step: int | None = None

    def properties(self) -> dict[str, Any]:
        """The ``rule``, ``firing_id`` and ``step`` properties of a message event, where known."""
        found: dict[str, Any] = {"rule": self.rule, "firing_id": self.firing_id, "step": self.step}
        return {name: value for name, value in found.items() if value is not None}


def customer_fields(customer_id: str, limit: int) -> dict[str, str]:
    """The customer id as tag (or context) entries whose values are at most ``limit`` characters."""
    if len(customer_id) <= limit and _SAFE.fullmatch(customer_id):
        return {CUSTOMER: customer_id}
    encoded = base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")
    chunks = [encoded[start : start + limit] for start in range(0, len(encoded), limit)]
    return {_chunk_name(index): chunk for index, chunk in enumerate(chunks)}


def customer_from(get: Callable[[str], str | None]) -> str | None:
    """The customer id ``customer_fields`` wrote, read through ``get`` (name -> value); ``None`` if
    there is none, or if what is there is not an id this module could have written."""
    plain = get(CUSTOMER)
    if plain is not None:
        return plain if _SAFE.fullmatch(plain) else None
    chunks, index = [], 0
    while (chunk := get(_chunk_name(index))) is not None:
        chunks.append(chunk)
        index += 1
    if not chunks:
        return None
    encoded = "".join(chunks)
    if not _SAFE.fullmatch(encoded):
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _chunk_name(index: int) -> str:
    return CUSTOMER_B64 if index == 0 else f"{CUSTOMER_B64}_{index}"


def _fields(firing: FiringMessage, limit: int) -> dict[str, str]:
    return {
        RULE: firing.rule,
        FIRING: firing.firing_id,
        STEP: str(firing.step),
        **customer_fields(firing.customer_id, limit),
    }


def ses_tags(firing: FiringMessage) -> list[dict[str, str]]:
    """``SendEmail``'s ``EmailTags`` for a firing's email."""
    return [{"Name": name, "Value": value} for name, value in _fields(firing, SES_VALUE_LIMIT).items()]


def sms_context(firing: FiringMessage) -> dict[str, str]:
    """``SendTextMessage``'s ``Context`` for a firing's text: at most 5 entries, as the API allows
    (rule, firing, step and one or two for the customer: 256 characters of UTF-8 are at most 1,366
    of base64url)."""
    return _fields(firing, SMS_VALUE_LIMIT)


def read_tags(tags: object) -> SentMessage | None:
    """An SES event's ``mail.tags`` (name -> list of values) -> what was sent, or ``None`` for an
    email Nudge did not tag (sent by something else through the same configuration set)."""
    if not isinstance(tags, Mapping):
        return None

    def get(name: str) -> str | None:
        values = tags.get(name)
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0]
        return None

    return _read(get)


def read_context(context: object) -> SentMessage | None:
    """An SMS event's ``context`` (name -> value) -> what was sent, or ``None`` without a customer."""
    if not isinstance(context, Mapping):
        return None

    def get(name: str) -> str | None:
        value = context.get(name)
        return value if isinstance(value, str) else None

    return _read(get)


def _read(get: Callable[[str], str | None]) -> SentMessage | None:
    customer_id = customer_from(get)
    if customer_id is None:
        return None
    step_text = get(STEP)
    step = int(step_text) if step_text is not None and step_text.isascii() and step_text.isdigit() else None
    return SentMessage(
        customer_id=customer_id,
        rule=_name(get(RULE)),
        firing_id=_name(get(FIRING)),
        step=step if step is not None and step <= MAX_STEP else None,
    )


def _name(value: str | None) -> str | None:
    """A rule or firing id as the message events accept it (1 to 128 characters), else nothing."""
    return value if value and len(value) <= 128 else None
