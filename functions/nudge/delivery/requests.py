"""What each channel sends, as data: its recipient from the profile, and the provider request.

These are the pure halves of the channel adapters in ``nudge.adapters.channels``: an adapter
calls its client with exactly what ``build`` returns, and ``nudge preview`` shows the same request
without a client. Each is configured with the stack's settings only (sender, bus, application).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from ..contracts import ADDRESS_TRAITS, FiringMessage, key_value
from ..feedback.message_tags import ses_tags, sms_context
from .ports import InvalidRecipient, Outgoing
from .templates import Rendered

PUSH_PLATFORMS = {"ios": "APNS", "apns": "APNS", "android": "GCM", "fcm": "GCM", "gcm": "GCM"}
"""``push_tokens[].platform`` values and the push channel each is addressed on."""


def address_of(firing: FiringMessage, trait: str) -> str | None:
    """The ``email`` or ``phone`` trait, checked again at send time (``None``: the profile has none).

    Raises ``InvalidRecipient`` for a value that is not one address: a profile stored before the
    check at ``identify`` existed, or a firing body edited by hand, must not reach the provider.
    """
    value = firing.profile.get(trait)
    if value is None:
        return None
    problem = ADDRESS_TRAITS[trait](value)
    if problem is not None:
        raise InvalidRecipient("InvalidRecipient", f"the {trait} trait {problem}")
    return str(value)


def _rendered(message: Outgoing) -> Rendered:
    if message.rendered is None:
        raise ValueError(f"a {message.firing.channel} message needs a template")
    return message.rendered


@dataclass(frozen=True)
class SesEmail:
    """SES v2 ``SendEmail`` with a raw MIME message: text and HTML parts, a configuration set for
    open/click/bounce/complaint events, and RFC 8058 one-click unsubscribe headers.

    The tags (customer, rule, firing, step: ``feedback.message_tags``) come back with every event
    SES publishes about the email, which is how the feedback function knows whose it is."""

    from_address: str
    configuration_set: str | None = None
    name: str = "email"

    def recipient(self, firing: FiringMessage) -> str | None:
        return address_of(firing, "email")

    def mime(self, message: Outgoing) -> EmailMessage:
        rendered = _rendered(message)
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = rendered.subject or ""
        mail["Message-ID"] = make_msgid(idstring=message.firing.firing_id[:16])
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(rendered.text or "")
        if rendered.html:
            mail.add_alternative(rendered.html, subtype="html")
        return mail

    def build(self, message: Outgoing) -> dict[str, Any]:
        request: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": self.mime(message).as_bytes()}},
            "EmailTags": ses_tags(message.firing),
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request


def phone_of(firing: FiringMessage) -> str | None:
    """The ``phone`` trait, in E.164 form (``+``, the country code and the number)."""
    return address_of(firing, "phone")


@dataclass(frozen=True)
class SnsSms:
    """SMS through SNS ``Publish`` to a phone number: the default, no origination setup needed."""

    sender_id: str | None = None
    sms_type: str = "Transactional"
    name: str = "sms"

    def recipient(self, firing: FiringMessage) -> str | None:
        return phone_of(firing)

    def build(self, message: Outgoing) -> dict[str, Any]:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": self.sms_type}}
        if self.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sender_id}
        return {
            "PhoneNumber": message.recipient,
            "Message": _rendered(message).text or "",
            "MessageAttributes": attributes,
        }


@dataclass(frozen=True)
class EndUserMessagingSms:
    """SMS through AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``), with
    an origination identity and a configuration set: for registered senders and delivery events.

    ``Context`` (customer, rule, firing, step: ``feedback.message_tags``) is logged with each of the
    text's delivery events, which is how the feedback function knows whose it is."""

    origination_identity: str
    configuration_set: str | None = None
    name: str = "sms"

    def recipient(self, firing: FiringMessage) -> str | None:
        return phone_of(firing)

    def build(self, message: Outgoing) -> dict[str, Any]:
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.recipient,
            "OriginationIdentity": self.origination_identity,
            "MessageBody": _rendered(message).text or "",
            "MessageType": "TRANSACTIONAL",
            "Context": sms_context(message.firing),
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request


@dataclass(frozen=True)
class PinpointPush:
    """Mobile push through End User Messaging Push: Pinpoint ``SendMessages`` addressed straight to
    device tokens (no endpoints, segments or journeys, which ended with Amazon Pinpoint)."""

    application_id: str
    name: str = "push"

    def recipient(self, firing: FiringMessage) -> dict[str, str] | None:
        """``push_tokens`` trait: ``[{"token": ..., "platform": "ios"|"android"}]`` -> token: channel type."""
        tokens = firing.profile.get("push_tokens")
        found = {}
        if isinstance(tokens, list):
            for entry in tokens:
                if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                    channel = PUSH_PLATFORMS.get(str(entry.get("platform", "")).lower())
                    if channel:
                        found[entry["token"]] = channel
        return found or None

    def build(self, message: Outgoing) -> dict[str, Any]:
        """The template's ``data``, plus ``nudge_firing_id``, ``nudge_rule`` and ``nudge_step``: End User
        Messaging Push reports nothing after the send, so the app reports the open itself
        (``sdk.Tracker.message_opened``) with what the push carried."""
        rendered = _rendered(message)
        firing = message.firing
        data = {
            **rendered.data,
            "nudge_firing_id": firing.firing_id,
            "nudge_rule": firing.rule,
            "nudge_step": str(firing.step),
        }
        push = {"Action": "OPEN_APP", "Title": rendered.title or "", "Body": rendered.text or "", "Data": data}
        return {
            "ApplicationId": self.application_id,
            "MessageRequest": {
                "Addresses": {token: {"ChannelType": channel} for token, channel in message.recipient.items()},
                "MessageConfiguration": {"APNSMessage": push, "GCMMessage": push},
                "TraceId": message.firing.firing_id,
            },
        }


@dataclass(frozen=True)
class EventBridgeEntry:
    """``webhook`` and ``event`` firings as one ``PutEvents`` entry on the stack's bus.

    ``event`` firings are for any consumer of the bus. ``webhook`` firings carry their destination
    name, and the stack routes each destination to an EventBridge API destination (a connection
    with auth, a rate limit and retries) that calls the marketing platform's HTTP API.
    """

    bus_name: str
    name: str
    default_destination: str | None = None

    def recipient(self, firing: FiringMessage) -> str | None:
        if self.name == "webhook":
            return firing.destination or self.default_destination
        return self.bus_name

    def detail(self, message: Outgoing) -> dict[str, Any]:
        firing = message.firing
        detail = {
            "firing_id": firing.firing_id,
            "customer_id": firing.customer_id,
            "rule": firing.rule,
            "key": key_value(firing.key),
            "fired_at": firing.fired_at,
            "armed_at": firing.armed_at,
            "events": [e.model_dump() for e in firing.events],
        }
        if self.name == "webhook":
            detail["destination"] = message.recipient
        if message.rendered is not None and message.rendered.data:
            detail["payload"] = message.rendered.data
        return detail

    def build(self, message: Outgoing) -> dict[str, Any]:
        entry = {
            "EventBusName": self.bus_name,
            "Source": "nudge",
            "DetailType": f"nudge.{self.name}",
            "Detail": json.dumps(self.detail(message), separators=(",", ":"), ensure_ascii=False),
        }
        return {"Entries": [entry]}
