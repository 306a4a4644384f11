"""Delivery under faults, on moto: where an attempt dies decides what the next one may do.

Each test injects its fault through botocore's event hooks on the real clients (the provider, the
activations table) or stops an attempt at an effect boundary, then counts sends at moto's SES
backend, never by our own code.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from moto.core.botocore_stubber import MockRawResponse

from nudge.adapters.activations import DynamoDBActivationLog
from nudge.adapters.sqs import Redriven, redrive
from nudge.clock import VirtualClock
from nudge.contracts import decode_firing, email_problem
from nudge.delivery.deliverer import Deliverer, RetryLater
from nudge.delivery.ports import ActivationStatus
from nudge.wiring.delivery import build_deliverer
from tests.support import at

from .test_delivery import cart_events, firing_body, sent_emails

LEASE_MS = 120_000


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(at("11:07"))  # the cart firing's send time: 11:05 plus the allowed lateness


@pytest.fixture
def deliverer(session, resources, clock) -> Deliverer:  # type: ignore[no-untyped-def]
    return build_deliverer(resources.delivery, session, clock)


def head(session: boto3.session.Session, resources: Any, body: str) -> dict[str, Any]:
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    [item] = [i for i in log.history(decode_firing(body).firing_id) if i["sk"] == "firing"]
    return item


def parked(session: boto3.session.Session, resources: Any) -> list[dict[str, str]]:
    """The attributes of the messages in the firings DLQ, left visible for the next reader."""
    sqs, url = session.client("sqs"), resources.delivery.firings_dlq_url
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MaxNumberOfMessages=10).get(
        "Messages", []
    )
    for message in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return [{k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()} for m in messages]


class Died(BaseException):
    """The function died here: no ``except Exception`` catches it, as none catches a timeout."""


def die_at(target: Any, method: str, after: bool = False) -> None:
    """Make ``target.method`` kill the attempt, before it runs (or just after it returned)."""
    real = getattr(target, method)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if after:
            real(*args, **kwargs)
        raise Died(method)

    setattr(target, method, dying)


def test_an_attempt_that_dies_between_claim_and_send_is_retried_and_sends_once(deliverer, session, resources, clock):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    log = deliverer.service.log
    die_at(log, "start_sending")
    with pytest.raises(Died):
        deliverer.handle(body, attempt=1)
    del log.start_sending  # the next attempt is a fresh process
    assert head(session, resources, body)["status"] == "claimed"
    with pytest.raises(RetryLater, match="another attempt holds it"):
        deliverer.handle(body, attempt=2)  # the lease still runs: it might be alive
    clock.advance(LEASE_MS + 1)
    result = deliverer.handle(body, attempt=3)
    assert result is not None and result.status is ActivationStatus.SENT
    assert len(sent_emails()) == 1
    assert parked(session, resources) == []


def test_an_attempt_that_dies_after_the_provider_call_started_is_parked_once_and_never_resent(
    deliverer, session, resources, clock
):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    channel = deliverer.service.channels["email"]
    die_at(channel, "send", after=True)  # SES accepted it; the attempt died before recording
    with pytest.raises(Died):
        deliverer.handle(body, attempt=1)
    del channel.send
    assert len(sent_emails()) == 1
    clock.advance(LEASE_MS + 1)
    result = deliverer.handle(body, attempt=2)
    assert result is not None and result.status is ActivationStatus.OUTCOME_UNKNOWN
    assert head(session, resources, body)["status"] == "outcome_unknown"
    copy = deliverer.handle(body, attempt=1)  # another copy of the firing, or a crash later in the batch
    assert copy is not None and copy.status is ActivationStatus.DUPLICATE
    assert len(sent_emails()) == 1
    [attributes] = parked(session, resources)
    assert attributes["outcome"] == "unknown"
    assert "outcome unknown" in attributes["reason"]


def test_only_a_persons_redrive_sends_an_unknown_outcome_again(deliverer, session, resources, clock):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    channel = deliverer.service.channels["email"]
    die_at(channel, "send")  # died as the call started: SES never got it
    with pytest.raises(Died):
        deliverer.handle(body, attempt=1)
    del channel.send
    clock.advance(LEASE_MS + 1)
    deliverer.handle(body, attempt=2)  # parked as outcome unknown
    sqs = session.client("sqs")
    dlq, queue = resources.delivery.firings_dlq_url, resources.delivery.firings_queue_url
    assert redrive(sqs, dlq, queue) == Redriven(0, kept_unknown=1)  # a plain redrive leaves it for a person
    assert len(parked(session, resources)) == 1
    assert redrive(sqs, dlq, queue, resend_unknown=True).moved == 1
    [message] = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    result = deliverer.handle(message["Body"], attempt=1, attributes=attributes)
    assert result is not None and result.status is ActivationStatus.SENT
    assert len(sent_emails()) == 1


def throttle(client: Any, operation: str | None = None) -> None:
    """Answer every call (or every ``operation``) of ``client`` with a throttling error, unexecuted."""

    def throttled(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        body = b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}'
        return AWSResponse(request.url, 400, {}, MockRawResponse(body))

    event = f"before-send.dynamodb.{operation}" if operation else "before-send.dynamodb"
    client.meta.events.register_first(event, throttled)


def no_retries(log: DynamoDBActivationLog) -> None:
    log.client = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))


def test_a_throttled_activations_table_retries_and_then_parks_with_the_reason(deliverer, session, resources):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    log = deliverer.service.log
    no_retries(log)
    throttle(log.client)
    with pytest.raises(RetryLater, match=r"activations table unavailable \(ThrottlingException\)"):
        deliverer.handle(body, attempt=1, receipt_handle=None)
    result = deliverer.handle(body, attempt=deliverer.service.settings.max_attempts)
    assert result is not None and result.status is ActivationStatus.DEAD_LETTERED
    [attributes] = parked(session, resources)
    assert attributes["reason"].startswith("gave up after 5 attempts: activations table unavailable")
    assert sent_emails() == []


def test_a_send_the_table_could_not_record_is_parked_as_sent_and_a_redrive_records_it(deliverer, session, resources):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    log = deliverer.service.log
    no_retries(log)
    throttle(log.client, "PutItem")  # the claim passes (below); recording the outcome does not
    real_claim = log.claim
    log.claim = lambda *args, **kwargs: DynamoDBActivationLog(  # type: ignore[method-assign]
        session.client("dynamodb"), resources.delivery.activations_table
    ).claim(*args, **kwargs)
    result = deliverer.handle(body, attempt=1)
    assert result is not None and result.status is ActivationStatus.SENT and result.unrecorded
    [attributes] = parked(session, resources)
    assert attributes["outcome"] == f"sent:{result.provider_message_id}"
    log.claim = real_claim  # type: ignore[method-assign]
    log.client = session.client("dynamodb")
    sqs = session.client("sqs")
    assert redrive(sqs, resources.delivery.firings_dlq_url, resources.delivery.firings_queue_url).moved == 1
    [message] = sqs.receive_message(QueueUrl=resources.delivery.firings_queue_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    again = deliverer.handle(message["Body"], attempt=1, attributes=attributes)
    assert again is not None and again.status is ActivationStatus.SENT
    assert head(session, resources, body)["status"] == "sent"
    assert len(sent_emails()) == 1


def test_a_message_received_past_the_attempts_is_parked_with_a_reason_before_sqs_moves_it(
    deliverer, session, resources
):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    attempts = deliverer.service.settings.max_attempts
    result = deliverer.handle(body, attempt=attempts + 1)
    assert result is not None and result.status is ActivationStatus.DEAD_LETTERED
    [attributes] = parked(session, resources)
    assert (
        attributes["reason"] == f"received {attempts + 1} times without an outcome: every attempt crashed or timed out"
    )
    assert sent_emails() == []


@pytest.mark.parametrize(
    "email",
    ["ana@example.com\r\nBcc: everyone@example.com", "ana@example.com, victim@evil.example", "Ana <ana@example.com>"],
)
def test_an_address_that_is_not_one_address_is_never_sent_and_the_reason_names_no_address(
    deliverer, session, resources, email
):  # type: ignore[no-untyped-def]
    body = json.loads(firing_body("cart_abandonment", cart_events()))
    body["profile"]["email"] = email  # a profile stored before identify checked addresses
    result = deliverer.handle(json.dumps(body), attempt=1)
    assert result is not None and result.status is ActivationStatus.FAILED
    assert result.reason == "InvalidRecipient: the email trait " + email_problem(email)  # type: ignore[operator]
    assert sent_emails() == []
    assert "@" not in head(session, resources, json.dumps(body))["reason"]


def test_a_provider_error_that_quotes_the_address_is_stored_without_it(deliverer, session, resources):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    client = deliverer.service.channels["email"].client

    def rejected(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        message = b"Email address is not verified. The following identities failed the check: ana@example.com"
        payload = b'{"message": "' + message + b'"}'
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "MessageRejected"}, MockRawResponse(payload))

    client.meta.events.register_first("before-send.sesv2.SendEmail", rejected)
    result = deliverer.handle(body, attempt=1)
    assert result is not None and result.status is ActivationStatus.FAILED
    stored = head(session, resources, body)["reason"]
    assert (
        stored == "MessageRejected: Email address is not verified. The following identities failed the check: <email>"
    )
    assert "ana@" not in (result.reason or "")
