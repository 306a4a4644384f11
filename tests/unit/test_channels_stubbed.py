"""Push and End User Messaging SMS adapters, with botocore's Stubber.

moto implements neither Pinpoint ``SendMessages`` (End User Messaging Push, addressed to device
tokens) nor ``pinpoint-sms-voice-v2`` ``SendTextMessage``, so these tests stub the clients. The
Stubber still validates every request against the real service model shipped with botocore, so a
wrong parameter name or shape fails here as it would on AWS.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from nudge.adapters.channels import EndUserMessagingSmsChannel, PushChannel
from nudge.contracts import FiringMessage
from nudge.delivery.ports import Outgoing, PermanentSendError, TransientSendError
from nudge.delivery.templates import Rendered

FIRING = FiringMessage.model_validate(
    {
        "firing_id": "f" * 32,
        "rule": "repeated_product_views",
        "customer_id": "c-1",
        "key": "SKU-1",
        "fired_at": "2026-11-22T12:00:00Z",
        "armed_at": "2026-11-22T10:00:00Z",
        "channel": "push",
        "template": "still_thinking",
        "profile": {
            "push_tokens": [
                {"token": "apns-token-1", "platform": "ios"},
                {"token": "fcm-token-2", "platform": "android"},
            ],
            "phone": "+351912345678",
        },
    }
)
PUSH = Rendered(
    channel="push", template="still_thinking", title="Still thinking?", text="Yoga mat is €29.90", data={"sku": "SKU-1"}
)


PUSH_DATA = {"sku": "SKU-1", "nudge_firing_id": "f" * 32, "nudge_rule": "repeated_product_views", "nudge_step": "0"}
"""The template's data, and what the app reports an open with (``Tracker.message_opened``)."""


def client(service: str):  # type: ignore[no-untyped-def]
    return boto3.session.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").client(
        service
    )


def test_push_is_addressed_to_device_tokens_not_endpoints_and_carries_its_firing():
    pinpoint = client("pinpoint")
    channel = PushChannel(pinpoint, "app-123")
    recipient = channel.recipient(FIRING)
    assert recipient == {"apns-token-1": "APNS", "fcm-token-2": "GCM"}
    with Stubber(pinpoint) as stub:
        stub.add_response(
            "send_messages",
            {
                "MessageResponse": {
                    "ApplicationId": "app-123",
                    "RequestId": "req-1",
                    "Result": {
                        "apns-token-1": {"DeliveryStatus": "SUCCESSFUL", "StatusCode": 200},
                        "fcm-token-2": {"DeliveryStatus": "SUCCESSFUL", "StatusCode": 200},
                    },
                }
            },
            {
                "ApplicationId": "app-123",
                "MessageRequest": {
                    "Addresses": {"apns-token-1": {"ChannelType": "APNS"}, "fcm-token-2": {"ChannelType": "GCM"}},
                    "MessageConfiguration": {
                        "APNSMessage": {
                            "Action": "OPEN_APP",
                            "Title": "Still thinking?",
                            "Body": "Yoga mat is €29.90",
                            "Data": PUSH_DATA,
                        },
                        "GCMMessage": {
                            "Action": "OPEN_APP",
                            "Title": "Still thinking?",
                            "Body": "Yoga mat is €29.90",
                            "Data": PUSH_DATA,
                        },
                    },
                    "TraceId": "f" * 32,
                },
            },
        )
        assert channel.send(Outgoing(FIRING, recipient, PUSH, "https://u")) == "req-1"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("status", "error"),
    [("PERMANENT_FAILURE", PermanentSendError), ("OPT_OUT", PermanentSendError), ("THROTTLED", TransientSendError)],
)
def test_push_results_map_to_permanent_or_transient_errors(status: str, error: type[Exception]):
    pinpoint = client("pinpoint")
    channel = PushChannel(pinpoint, "app-123")
    with Stubber(pinpoint) as stub:
        stub.add_response(
            "send_messages",
            {
                "MessageResponse": {
                    "ApplicationId": "app-123",
                    "Result": {"apns-token-1": {"DeliveryStatus": status, "StatusCode": 410}},
                }
            },
        )
        with pytest.raises(error):
            channel.send(Outgoing(FIRING, {"apns-token-1": "APNS"}, PUSH, "https://u"))


def test_end_user_messaging_sms_uses_the_origination_identity_and_configuration_set_and_tags_its_customer():
    sms = client("pinpoint-sms-voice-v2")
    channel = EndUserMessagingSmsChannel(sms, "+15555550100", "nudge-sms")
    text = Rendered(channel="sms", template="loyalty_perk", text="Thank you! 15% off")
    with Stubber(sms) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "sms-1"},
            {
                "DestinationPhoneNumber": "+351912345678",
                "OriginationIdentity": "+15555550100",
                "MessageBody": "Thank you! 15% off",
                "MessageType": "TRANSACTIONAL",
                "ConfigurationSetName": "nudge-sms",
                "Context": {"rule": "repeated_product_views", "firing": "f" * 32, "step": "0", "customer": "c-1"},
            },
        )
        assert channel.send(Outgoing(FIRING, channel.recipient(FIRING), text, "https://u")) == "sms-1"


def test_opted_out_number_is_a_permanent_error():
    sms = client("pinpoint-sms-voice-v2")
    channel = EndUserMessagingSmsChannel(sms, "+15555550100")
    with Stubber(sms) as stub:
        stub.add_client_error("send_text_message", service_error_code="ConflictException", http_status_code=400)
        with pytest.raises(PermanentSendError, match="ConflictException"):
            channel.send(Outgoing(FIRING, "+351912345678", Rendered(channel="sms", template="t", text="hi"), "u"))
    with Stubber(sms) as stub:
        stub.add_client_error("send_text_message", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(TransientSendError):
            channel.send(Outgoing(FIRING, "+351912345678", Rendered(channel="sms", template="t", text="hi"), "u"))


class Recipients:
    """A phone index that records what delivery remembered, or fails like an unreachable table."""

    def __init__(self, error: Exception | None = None) -> None:
        self.remembered: list[tuple[str, str]] = []
        self.error = error

    def remember(self, phone: str, customer_id: str) -> None:
        if self.error is not None:
            raise self.error
        self.remembered.append((phone, customer_id))


def test_with_a_phone_index_the_number_is_remembered_before_the_text_goes():
    sms, recipients = client("pinpoint-sms-voice-v2"), Recipients()
    channel = EndUserMessagingSmsChannel(sms, "+15555550100", recipients=recipients)
    with Stubber(sms) as stub:
        stub.add_response("send_text_message", {"MessageId": "sms-1"})
        channel.send(Outgoing(FIRING, "+351912345678", Rendered(channel="sms", template="t", text="hi"), "u"))
    assert recipients.remembered == [("+351912345678", "c-1")]


def test_a_phone_index_that_cannot_be_written_stops_the_text_and_the_firing_is_retried():
    sms = client("pinpoint-sms-voice-v2")
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
    channel = EndUserMessagingSmsChannel(sms, "+15555550100", recipients=Recipients(throttled))
    with Stubber(sms) as stub:  # no response queued: a send would fail the test
        with pytest.raises(TransientSendError, match="SmsRecipientIndexUnavailable"):
            channel.send(Outgoing(FIRING, "+351912345678", Rendered(channel="sms", template="t", text="hi"), "u"))
        stub.assert_no_pending_responses()
