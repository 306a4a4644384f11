"""The delivery channels: each sends what its request builder (``nudge.delivery.requests``) describes.

An adapter only calls its client and sorts the provider's errors: the recipient and the request
come from the pure builder, the same one ``nudge preview`` shows. Errors are sorted once, here,
by what they say about the send (``classify``).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)

from ..contracts import FiringMessage
from ..delivery.ports import ChannelRequest, Outgoing, PermanentSendError, TransientSendError, UncertainSendError
from ..delivery.requests import EndUserMessagingSms, EventBridgeEntry, PinpointPush, SesEmail, SnsSms
from ..feedback.ports import RecipientIndex

NOT_SENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
        "SendingPausedException",
    }
)
"""Codes the provider answers *instead of* doing the work: retrying cannot make a second message."""

NOT_SENT_ERRORS = (EndpointConnectionError, ConnectTimeoutError, NoCredentialsError, CredentialRetrievalError)
"""Connection failures before the request went out."""


def classify(exc: Exception) -> Exception:
    """Map a botocore failure to a send error by what it says about the send (codes only, no payloads).

    Throttling and a connection that never opened: not sent, retried. A 5xx, a read timeout or a
    connection closed mid-answer: the provider may have sent it, so the outcome is unknown. Any
    other 4xx is the address's or the configuration's fault: permanent.
    """
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        if code in NOT_SENT_CODES or status == 429:
            return TransientSendError(code)
        if status >= 500:
            return UncertainSendError(code)
        return PermanentSendError(code, exc.response.get("Error", {}).get("Message", ""))
    if isinstance(exc, NOT_SENT_ERRORS):
        return TransientSendError(type(exc).__name__)
    if isinstance(exc, ParamValidationError):
        return PermanentSendError(type(exc).__name__)
    if isinstance(exc, BotoCoreError):  # read timeouts, connections closed mid-answer
        return UncertainSendError(type(exc).__name__)
    return exc


class _Adapter:
    """A client beside a request builder: ``recipient`` and ``build`` are the builder's."""

    def __init__(self, client: Any, request: ChannelRequest) -> None:
        self.client = client
        self.request = request
        self.name = request.name

    def recipient(self, firing: FiringMessage) -> Any:
        return self.request.recipient(firing)

    def build(self, message: Outgoing) -> dict[str, Any]:
        return self.request.build(message)


class SesEmailChannel(_Adapter):
    """Email through SES v2 ``SendEmail`` (see ``SesEmail``)."""

    def __init__(self, client: Any, from_address: str, configuration_set: str | None = None) -> None:
        super().__init__(client, SesEmail(from_address, configuration_set))

    def send(self, message: Outgoing) -> str:
        try:
            return str(self.client.send_email(**self.build(message))["MessageId"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None


class SnsSmsChannel(_Adapter):
    """SMS through SNS ``Publish`` (see ``SnsSms``)."""

    def __init__(self, client: Any, sender_id: str | None = None, sms_type: str = "Transactional") -> None:
        super().__init__(client, SnsSms(sender_id, sms_type))

    def send(self, message: Outgoing) -> str:
        try:
            return str(self.client.publish(**self.build(message))["MessageId"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None


class EndUserMessagingSmsChannel(_Adapter):
    """SMS through End User Messaging SMS ``SendTextMessage`` (see ``EndUserMessagingSms``).

    With a ``recipients`` index, the number is remembered (as a keyed hash, with the customer id)
    before the text goes, so that a ``STOP`` reply from it finds the customer. If that write fails,
    nothing is sent and the firing is retried: every text sent can be opted out of.
    """

    def __init__(
        self,
        client: Any,
        origination_identity: str,
        configuration_set: str | None = None,
        recipients: RecipientIndex | None = None,
    ) -> None:
        super().__init__(client, EndUserMessagingSms(origination_identity, configuration_set))
        self.recipients = recipients

    def send(self, message: Outgoing) -> str:
        if self.recipients is not None:
            try:
                self.recipients.remember(message.recipient, message.firing.customer_id)
            except (ClientError, BotoCoreError) as exc:
                code = exc.response.get("Error", {}).get("Code", "Unknown") if isinstance(exc, ClientError) else ""
                raise TransientSendError("SmsRecipientIndexUnavailable", code or type(exc).__name__) from None
        try:
            return str(self.client.send_text_message(**self.build(message))["MessageId"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None


class PushChannel(_Adapter):
    """Push through Pinpoint ``SendMessages`` to device tokens (see ``PinpointPush``)."""

    def __init__(self, client: Any, application_id: str) -> None:
        super().__init__(client, PinpointPush(application_id))

    def send(self, message: Outgoing) -> str:
        try:
            response = self.client.send_messages(**self.build(message))["MessageResponse"]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None
        results = response.get("Result", {})
        statuses = {r.get("DeliveryStatus") for r in results.values()}
        if "SUCCESSFUL" in statuses:
            return str(response.get("RequestId", message.firing.firing_id))
        if statuses & {"THROTTLED", "TEMPORARY_FAILURE", "UNKNOWN_FAILURE"}:
            raise TransientSendError(",".join(sorted(s for s in statuses if s)))
        raise PermanentSendError(",".join(sorted(s for s in statuses if s)) or "NO_RESULT")


class EventBridgeChannel(_Adapter):
    """``webhook`` and ``event`` firings onto the stack's bus with ``PutEvents`` (see ``EventBridgeEntry``)."""

    def __init__(self, client: Any, bus_name: str, channel: str, default_destination: str | None = None) -> None:
        super().__init__(client, EventBridgeEntry(bus_name, channel, default_destination))

    def send(self, message: Outgoing) -> str:
        try:
            response = self.client.put_events(**self.build(message))
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from None
        [result] = response["Entries"]
        if "EventId" in result:
            return str(result["EventId"])
        code = result.get("ErrorCode", "Unknown")
        # The call answered and says this entry was not put: retrying it cannot make a second event.
        error = TransientSendError if code in NOT_SENT_CODES or code == "InternalFailure" else PermanentSendError
        raise error(code)
