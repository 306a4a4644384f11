"""One SES event (the ``detail`` of an ``aws.ses`` EventBridge event) -> message events.

The detail is SES's event-publishing record: ``eventType``, ``mail`` (with the message's tags) and
one object named for the type. Each type maps as follows:

========================  ======================  =========================================
``eventType``             event                   properties beyond channel/rule/firing/step
========================  ======================  =========================================
``Delivery``              ``message_delivered``
``Open``                  ``message_opened``
``Click``                 ``message_clicked``     ``url``: ``click.link``
``Bounce``                ``message_bounced``     ``bounce_type``: ``permanent`` for
                                                  ``Permanent``, else ``transient``;
                                                  ``reason``: ``bounceSubType``
``Complaint``             ``message_complained``  ``reason``: ``complaintFeedbackType``
``Rendering Failure``     ``message_failed``      ``reason``: ``failure.errorMessage``
``Reject``                ``message_failed``      ``reason``: ``reject.reason``
========================  ======================  =========================================

Three types put nothing (``Skip.IGNORED``), and the stack does not subscribe to them: ``Send``
says only that SES accepted the message, which delivery already recorded from ``SendEmail``'s
answer; ``DeliveryDelay`` is not an outcome (SES keeps trying, and a ``Delivery`` or a ``Bounce``
follows); ``Subscription`` belongs to SES's own list management, which Nudge does not use (its
unsubscribe link records ``unsubscribed`` itself).

A bounce SES calls ``Undetermined`` is read as transient: suppressing a customer's email needs
the certainty of a ``Permanent``. The event's time is the report's own (``delivery.timestamp``
and the like; ``mail.timestamp``, the send, for a rejection or a rendering failure), and its id
is ``feedback_event_id("ses", "<messageId>:<eventType>:<that time>[:<link>]")``: the same report
delivered twice is the same event, which the engine then drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contracts import (
    MESSAGE_BOUNCED,
    MESSAGE_CLICKED,
    MESSAGE_COMPLAINED,
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_OPENED,
    feedback_event_id,
)
from ..redact import scrub
from ..timefmt import iso, parse_iso
from .mapped import Mapped, Skip
from .message_tags import read_tags

PROVIDER = "ses"
CHANNEL = "email"

EVENTS = {
    "Delivery": (MESSAGE_DELIVERED, "delivery"),
    "Open": (MESSAGE_OPENED, "open"),
    "Click": (MESSAGE_CLICKED, "click"),
    "Bounce": (MESSAGE_BOUNCED, "bounce"),
    "Complaint": (MESSAGE_COMPLAINED, "complaint"),
    "Rendering Failure": (MESSAGE_FAILED, "failure"),
    "Reject": (MESSAGE_FAILED, "reject"),
}
"""``eventType`` -> (the event it becomes, the detail's object about it)."""
IGNORED = frozenset({"Send", "DeliveryDelay", "Subscription"})

PUBLISHED_TYPES = ("DELIVERY", "OPEN", "CLICK", "BOUNCE", "COMPLAINT", "RENDERING_FAILURE", "REJECT")
"""What the configuration set's EventBridge destination publishes: the ``EVENTS`` above, by the
names the SES API gives them (``infra/feedback.py``)."""
DETAIL_TYPES = (
    "Email Delivered",
    "Email Opened",
    "Email Clicked",
    "Email Bounced",
    "Email Complaint Received",
    "Email Rendering Failed",
    "Email Rejected",
)
"""The EventBridge ``detail-type`` of each of them, which the stack's rule matches."""

MAX_REASON = 256
MAX_URL = 2048


def map_ses_event(detail: Mapping[str, Any]) -> Mapped:
    """The message event one SES event record is, or why there is none (never raises)."""
    event_type = detail.get("eventType")
    if not isinstance(event_type, str):
        return Mapped.skipped("?", Skip.UNREADABLE)
    if event_type in IGNORED:
        return Mapped.skipped(event_type, Skip.IGNORED)
    if event_type not in EVENTS:
        return Mapped.skipped("?", Skip.UNREADABLE)
    mail = detail.get("mail")
    about = detail.get(EVENTS[event_type][1])
    if not isinstance(mail, Mapping) or not isinstance(about, Mapping):
        return Mapped.skipped(event_type, Skip.UNREADABLE)
    sent = read_tags(mail.get("tags"))
    if sent is None:
        return Mapped.skipped(event_type, Skip.NOT_OURS)
    message_id = mail.get("messageId")
    stamp = about.get("timestamp") if event_type not in ("Reject", "Rendering Failure") else None
    stamp = stamp or mail.get("timestamp")
    if not isinstance(message_id, str) or not message_id or not isinstance(stamp, str):
        return Mapped.skipped(event_type, Skip.UNREADABLE)
    try:
        at = parse_iso(stamp)
    except ValueError:
        return Mapped.skipped(event_type, Skip.UNREADABLE)
    name, _ = EVENTS[event_type]
    properties = {"channel": CHANNEL, **sent.properties(), **_details(event_type, about)}
    report = f"{message_id}:{event_type}:{stamp}"
    if event_type == "Click":
        report += f":{about.get('link', '')}"
    envelope = {
        "event_id": feedback_event_id(PROVIDER, report),
        "customer_id": sent.customer_id,
        "event": name,
        "timestamp": iso(at),
        "properties": properties,
    }
    return Mapped(kind=event_type, envelopes=(envelope,))


def _details(event_type: str, about: Mapping[str, Any]) -> dict[str, Any]:
    """The properties particular to the type: the link, the bounce's type, the reason."""
    if event_type == "Click":
        link = about.get("link")
        return {"url": link[:MAX_URL]} if isinstance(link, str) and link else {}
    if event_type == "Bounce":
        bounce_type = "permanent" if about.get("bounceType") == "Permanent" else "transient"
        return {"bounce_type": bounce_type, **_reason(about.get("bounceSubType"))}
    if event_type == "Complaint":
        return _reason(about.get("complaintFeedbackType"))
    if event_type == "Rendering Failure":
        return _reason(about.get("errorMessage"))
    if event_type == "Reject":
        return _reason(about.get("reason"))
    return {}


def _reason(text: object) -> dict[str, str]:
    """``reason``, scrubbed of addresses (a provider's text may quote the recipient) and kept short."""
    if not isinstance(text, str) or not text.strip():
        return {}
    return {"reason": scrub(text.strip())[:MAX_REASON]}
