"""The delivery channels, each a small adapter behind ``nudge.delivery.service.Channel``.

Error codes are sorted once, here: throttling and server-side codes are transient (retried with
backoff), everything the customer's address or our configuration causes is permanent.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..delivery.context import FiringMessage
from ..delivery.service import Outgoing, PermanentSendError, TransientSendError

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerException",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
        "SendingPausedException",
    }
)


def classify(exc: Exception) -> Exception:
    """Map a botocore failure to a transient or permanent send error (codes only, no payloads)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        if code in TRANSIENT_CODES or status >= 500:
            return TransientSendError(code)
        return PermanentSendError(code, exc.response.get("Error", {}).get("Message", ""))
    if isinstance(exc, BotoCoreError):  # connection errors, timeouts
        return TransientSendError(type(exc).__name__)
    return exc


class SesEmailChannel:
    """SES v2 ``SendEmail`` with a raw MIME message: text and HTML parts, a configuration set for
    open/click/bounce/complaint events, and RFC 8058 one-click unsubscribe headers."""

    name = "email"

    def __init__(self, client: Any, from_address: str, configuration_set: str | None = None) -> None:
        self.client = client
        self.from_address = from_address
        self.configuration_set = configuration_set

    def recipient(self, firing: FiringMessage) -> str | None:
        email = firing.profile.get("email")
        return email if isinstance(email, str) and "@" in email else None

    def mime(self, message: Outgoing) -> EmailMessage:
        assert message.rendered is not None
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = message.rendered.subject or ""
        mail["Message-ID"] = make_msgid(idstring=message.firing.firing_id[:16])
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.rendered.text or "")
        if message.rendered.html:
            mail.add_alternative(message.rendered.html, subtype="html")
        return mail

    def send(self, message: Outgoing) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": self.mime(message).as_bytes()}},
            "EmailTags": [
                {"Name": "rule", "Value": message.firing.rule},
                {"Name": "firing", "Value": message.firing.firing_id},
            ],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            return str(self.client.send_email(**request)["MessageId"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None


class SnsSmsChannel:
    """SMS through SNS ``Publish`` to a phone number: the default, no origination setup needed."""

    name = "sms"

    def __init__(self, client: Any, sender_id: str | None = None, sms_type: str = "Transactional") -> None:
        self.client = client
        self.sender_id = sender_id
        self.sms_type = sms_type

    def recipient(self, firing: FiringMessage) -> str | None:
        phone = firing.profile.get("phone")
        return phone if isinstance(phone, str) and phone.startswith("+") else None

    def send(self, message: Outgoing) -> str:
        assert message.rendered is not None
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": self.sms_type}}
        if self.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sender_id}
        try:
            response = self.client.publish(
                PhoneNumber=message.recipient, Message=message.rendered.text or "", MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None
        return str(response["MessageId"])


class EndUserMessagingSmsChannel(SnsSmsChannel):
    """SMS through AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``), with
    an origination identity and a configuration set: for registered senders and delivery events."""

    def __init__(self, client: Any, origination_identity: str, configuration_set: str | None = None) -> None:
        super().__init__(client)
        self.origination_identity = origination_identity
        self.configuration_set = configuration_set

    def send(self, message: Outgoing) -> str:
        assert message.rendered is not None
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.recipient,
            "OriginationIdentity": self.origination_identity,
            "MessageBody": message.rendered.text or "",
            "MessageType": "TRANSACTIONAL",
            "Context": {"rule": message.firing.rule, "firing": message.firing.firing_id},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            return str(self.client.send_text_message(**request)["MessageId"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None


class PushChannel:
    """Mobile push through End User Messaging Push: Pinpoint ``SendMessages`` addressed straight to
    device tokens (no endpoints, segments or journeys, which ended with Amazon Pinpoint)."""

    name = "push"
    _CHANNELS = {"ios": "APNS", "apns": "APNS", "android": "GCM", "fcm": "GCM", "gcm": "GCM"}

    def __init__(self, client: Any, application_id: str) -> None:
        self.client = client
        self.application_id = application_id

    def recipient(self, firing: FiringMessage) -> dict[str, str] | None:
        """``push_tokens`` trait: ``[{"token": ..., "platform": "ios"|"android"}]``."""
        tokens = firing.profile.get("push_tokens")
        found = {}
        if isinstance(tokens, list):
            for entry in tokens:
                if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                    channel = self._CHANNELS.get(str(entry.get("platform", "")).lower())
                    if channel:
                        found[entry["token"]] = channel
        return found or None

    def send(self, message: Outgoing) -> str:
        assert message.rendered is not None
        push = {
            "Action": "OPEN_APP",
            "Title": message.rendered.title or "",
            "Body": message.rendered.text or "",
            "Data": message.rendered.data,
        }
        request = {
            "ApplicationId": self.application_id,
            "MessageRequest": {
                "Addresses": {token: {"ChannelType": channel} for token, channel in message.recipient.items()},
                "MessageConfiguration": {"APNSMessage": push, "GCMMessage": push},
                "TraceId": message.firing.firing_id,
            },
        }
        try:
            response = self.client.send_messages(**request)["MessageResponse"]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None
        results = response.get("Result", {})
        statuses = {r.get("DeliveryStatus") for r in results.values()}
        if "SUCCESSFUL" in statuses:
            return str(response.get("RequestId", message.firing.firing_id))
        if statuses & {"THROTTLED", "TEMPORARY_FAILURE", "UNKNOWN_FAILURE"}:
            raise TransientSendError(",".join(sorted(s for s in statuses if s)))
        raise PermanentSendError(",".join(sorted(s for s in statuses if s)) or "NO_RESULT")


class EventBridgeChannel:
    """``webhook`` and ``event`` firings onto the stack's EventBridge bus.

    ``event`` firings are for any consumer of the bus. ``webhook`` firings carry their destination
    name, and the stack routes each destination to an EventBridge API destination (a connection
    with auth, a rate limit and retries) that calls the marketing platform's HTTP API.
    """

    def __init__(self, client: Any, bus_name: str, channel: str, default_destination: str | None = None) -> None:
        self.client = client
        self.bus_name = bus_name
        self.name = channel
        self.default_destination = default_destination

    def recipient(self, firing: FiringMessage) -> str | None:
        if self.name == "webhook":
            return firing.destination or self.default_destination
        return self.bus_name

    def send(self, message: Outgoing) -> str:
        firing = message.firing
        detail = {
            "firing_id": firing.firing_id,
            "customer_id": firing.customer_id,
            "rule": firing.rule,
            "variant": firing.variant,
            "key": firing.key,
            "fired_at": firing.fired_at,
            "armed_at": firing.armed_at,
            "events": [e.model_dump() for e in firing.events],
        }
        if self.name == "webhook":
            detail["destination"] = message.recipient
        if message.rendered is not None and message.rendered.data:
            detail["payload"] = message.rendered.data
        entry = {
            "EventBusName": self.bus_name,
            "Source": "nudge",
            "DetailType": f"nudge.{self.name}",
            "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        }
        try:
            response = self.client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None
        [result] = response["Entries"]
        if "EventId" in result:
            return str(result["EventId"])
        code = result.get("ErrorCode", "Unknown")
        error = TransientSendError if code in TRANSIENT_CODES or code == "InternalFailure" else PermanentSendError
        raise error(code)
