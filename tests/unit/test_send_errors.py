"""What a failed provider call says about the send, and so whether it may be retried."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from nudge.adapters.channels import classify
from nudge.delivery.ports import PermanentSendError, TransientSendError, UncertainSendError


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("TooManyRequestsException", 429), TransientSendError),  # refused: not sent
        (client_error("ThrottlingException", 400), TransientSendError),
        (client_error("SendingPausedException", 400), TransientSendError),
        (client_error("InternalFailure", 500), UncertainSendError),  # may have been sent
        (client_error("ServiceUnavailable", 503), UncertainSendError),
        (client_error("MessageRejected", 400), PermanentSendError),
        (EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com"), TransientSendError),
        (ConnectTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com"), TransientSendError),
        (ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com"), UncertainSendError),
        (ConnectionClosedError(endpoint_url="https://email.eu-west-1.amazonaws.com"), UncertainSendError),
    ],
)
def test_only_a_call_known_not_to_have_sent_is_retried(error: Exception, kind: type[Exception]):
    assert type(classify(error)) is kind


def test_a_reason_never_carries_the_recipient():
    error = classify(client_error("InvalidParameter", 400, "Invalid parameter: PhoneNumber Reason: +351912345678"))
    assert str(error) == "InvalidParameter: Invalid parameter: PhoneNumber Reason: <number>"
    error = classify(client_error("MessageRejected", 400, "Address blacklisted: ana.silva@example.com."))
    assert "ana.silva" not in str(error) and "<email>" in str(error)
