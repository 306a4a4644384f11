"""End User Messaging SMS reports -> message events, and an opt-out reply -> ``unsubscribed``.

Two shapes arrive, both published to the stack's SMS feedback topic:

**Delivery events**, from the configuration set's SNS event destination: ``eventType``,
``messageId``, ``eventTimestamp`` (epoch ms), ``isFinal``, ``messageStatus`` and the ``context``
the send passed (``message_tags.sms_context``: customer, rule, firing, step).

- ``TEXT_DELIVERED`` (the handset's receipt) -> ``message_delivered``;
- ``TEXT_SUCCESSFUL`` with ``isFinal`` (the carrier accepted it and will send no receipt: its last
  word) -> ``message_delivered``;
- ``TEXT_INVALID``, ``TEXT_INVALID_MESSAGE``, ``TEXT_UNREACHABLE``, ``TEXT_CARRIER_UNREACHABLE``,
  ``TEXT_BLOCKED``, ``TEXT_CARRIER_BLOCKED``, ``TEXT_SPAM``, ``TEXT_UNKNOWN``, ``TEXT_TTL_EXPIRED``,
  ``TEXT_PROTECT_BLOCKED`` (the text did not, or cannot be known to, reach the phone) ->
  ``message_failed`` with the event type as its ``reason``.

Ignored (``Skip.IGNORED``): ``TEXT_QUEUED``, ``TEXT_PENDING`` and ``TEXT_SENT`` (on the way; the
outcome follows), ``TEXT_SUCCESSFUL`` that is not final (a ``TEXT_DELIVERED`` follows), and the
voice, MMS and RCS types (Nudge sends none). SMS has no bounce or complaint: a failure is only a
``message_failed``, which suppresses nothing.

**Inbound replies**, from the two-way channel of the origination number (``originationNumber`` is
the customer's phone, ``messageBody`` the text). A reply that is one of the opt-out keywords End
User Messaging honours (``STOP``, ``UNSUBSCRIBE``...) becomes ``unsubscribed {channel: sms, source:
sms_stop}`` for the customer the phone index (``phone_index``) says was last texted at that
number. The service already refuses further texts to an opted-out number; the event puts the
choice in the customer's consent record too, so the engine stops deciding texts it cannot send.
Any other reply is ignored. Only the body is read: the payload's ``messageKeyword`` is a keyword
registered on the number, which the documentation's own example shows beside a body that is not
it. A reply carries no time of its own: the event's time is when SNS published it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..contracts import MESSAGE_DELIVERED, MESSAGE_FAILED, UNSUBSCRIBED, feedback_event_id
from ..timefmt import in_range, iso
from .mapped import Mapped, Skip
from .message_tags import read_context
from .ports import RecipientLookup

PROVIDER = "sms"
CHANNEL = "sms"
STOP_SOURCE = "sms_stop"

DELIVERED = frozenset({"TEXT_DELIVERED"})
FAILED = frozenset(
    {
        "TEXT_INVALID",
        "TEXT_INVALID_MESSAGE",
        "TEXT_UNREACHABLE",
        "TEXT_CARRIER_UNREACHABLE",
        "TEXT_BLOCKED",
        "TEXT_CARRIER_BLOCKED",
        "TEXT_SPAM",
        "TEXT_UNKNOWN",
        "TEXT_TTL_EXPIRED",
        "TEXT_PROTECT_BLOCKED",
    }
)
ACCEPTED = "TEXT_SUCCESSFUL"
PUBLISHED_TYPES = tuple(sorted({*DELIVERED, ACCEPTED, *FAILED}))
"""What the stack's SMS configuration set publishes to the feedback topic (``infra/feedback.py``)."""

OPT_OUT_KEYWORDS = frozenset(
    {"ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD", "UNSUBSCRIBE"}
)
"""The opt-out keywords End User Messaging SMS requires and honours on every number."""
_TRIM = re.compile(r"^[\s.!]+|[\s.!]+$")


def map_sms_event(event: Mapping[str, Any]) -> Mapped:
    """The message event one delivery event is, or why there is none (never raises)."""
    event_type = event.get("eventType")
    if not isinstance(event_type, str):
        return Mapped.skipped("?", Skip.UNREADABLE)
    delivered = event_type in DELIVERED or (event_type == ACCEPTED and event.get("isFinal") is True)
    if not delivered and event_type not in FAILED:
        known = event_type.startswith(("TEXT_", "VOICE_", "MEDIA_", "RCS_"))
        return Mapped.skipped(event_type if known else "?", Skip.IGNORED if known else Skip.UNREADABLE)
    sent = read_context(event.get("context"))
    if sent is None:
        return Mapped.skipped(event_type, Skip.NOT_OURS)
    message_id, at = event.get("messageId"), event.get("eventTimestamp")
    if not isinstance(message_id, str) or not message_id or type(at) is not int or not in_range(at):
        return Mapped.skipped(event_type, Skip.UNREADABLE)
    properties: dict[str, Any] = {"channel": CHANNEL, **sent.properties()}
    if not delivered:
        properties["reason"] = event_type
    envelope = {
        "event_id": feedback_event_id(PROVIDER, f"{message_id}:{event_type}:{at}"),
        "customer_id": sent.customer_id,
        "event": MESSAGE_DELIVERED if delivered else MESSAGE_FAILED,
        "timestamp": iso(at),
        "properties": properties,
    }
    return Mapped(kind=event_type, envelopes=(envelope,))


def is_opt_out(body: object) -> bool:
    """Whether a reply is exactly one opt-out keyword (any case, stray spaces and ``.``/``!`` aside)."""
    return isinstance(body, str) and _TRIM.sub("", body).upper() in OPT_OUT_KEYWORDS


def map_inbound(message: Mapping[str, Any], received_ms: int, recipients: RecipientLookup | None) -> Mapped:
    """An inbound reply -> ``unsubscribed`` when it opts out and its number is known.

    ``recipients`` answers which customer was last texted at a number; it may raise when it cannot
    be reached, and the invocation is then retried. Without one (no index deployed), no reply maps.
    """
    inbound_id, phone = message.get("inboundMessageId"), message.get("originationNumber")
    if not isinstance(inbound_id, str) or not inbound_id or not isinstance(phone, str):
        return Mapped.skipped("inbound", Skip.UNREADABLE)
    if not is_opt_out(message.get("messageBody")):
        return Mapped.skipped("inbound", Skip.IGNORED)
    customer_id = recipients.customer_of(phone) if recipients is not None else None
    if customer_id is None:
        return Mapped.skipped("inbound", Skip.UNKNOWN_NUMBER)
    envelope = {
        "event_id": feedback_event_id(PROVIDER, f"inbound:{inbound_id}"),
        "customer_id": customer_id,
        "event": UNSUBSCRIBED,
        "timestamp": iso(received_ms),
        "properties": {"channel": CHANNEL, "source": STOP_SOURCE},
    }
    return Mapped(kind="inbound", envelopes=(envelope,))
