"""Delivery against moto: SES v2, SNS, EventBridge, SQS and DynamoDB read back through moto.

Sent emails and SMS are read from moto's backends, because AWS has no API to read them back.
Push (Pinpoint ``SendMessages``) and End User Messaging SMS (``SendTextMessage``) are not
implemented by moto: those adapters are tested with botocore's Stubber against the real service
models in ``test_channels_stubbed.py``.
"""

from __future__ import annotations

import email
import json
from email import policy
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import MockRawResponse
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from nudge.adapters.activations import DynamoDBActivationLog
from nudge.clock import VirtualClock
from nudge.contracts import encode_firing
from nudge.delivery.deliverer import Deliverer, RetryLater
from nudge.delivery.ports import ActivationStatus
from nudge.delivery.unsubscribe import token
from nudge.engine import compile_rules, load_rules_or_raise, replay
from nudge.local.provision import LOCAL_UNSUBSCRIBE_SECRET
from nudge.timefmt import parse_iso
from nudge.wiring.delivery import build_deliverer, build_unsubscriber
from tests.support import at, ev

from .conftest import REGION, Stream

PLAN = compile_rules(load_rules_or_raise("rules"))


def firing_body(rule: str, events: list, **overrides: Any) -> str:
    firings = [f for f in replay(PLAN, events) if f.rule == rule]
    assert firings, f"{rule} did not fire"
    body = json.loads(encode_firing(firings[0]))
    body.update(overrides)
    return json.dumps(body)


def cart_events(customer: str = "c-1", **traits: Any) -> list:
    return [
        ev("identify", "09:00", customer, traits={"email": "ana@example.com", "first_name": "Ana", **traits}),
        ev("add_to_cart", "10:00", customer, sku="SKU-1", name="Yoga mat", price=29.9, url="/p/yoga-mat"),
        ev("add_to_cart", "10:01", customer, sku="SKU-2", name="Cork blocks", price=9.5, quantity=2),
        ev("checkout_viewed", "10:05", customer),
    ]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(at("11:07"))  # the cart firing's send time: 11:05 plus the allowed lateness


@pytest.fixture
def deliverer(session, resources, clock) -> Deliverer:  # type: ignore[no-untyped-def]
    return build_deliverer(resources.delivery, session, clock)


def sent_emails() -> list[email.message.EmailMessage]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [
        email.message_from_string(m.raw_data, policy=policy.default)  # type: ignore[misc]
        for m in backend.sent_messages
        if hasattr(m, "raw_data")
    ]


def sent_sms() -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def test_cart_email_lists_both_lines_with_unsubscribe_headers(deliverer: Deliverer):
    result = deliverer.handle(firing_body("cart_abandonment", cart_events()), attempt=1)
    assert result.status is ActivationStatus.SENT
    [message] = sent_emails()
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == "Ana, your cart is waiting for you"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    query = parse_qs(urlparse(link).query)
    assert query["c"] == ["c-1"]
    assert query["t"] == [token(LOCAL_UNSUBSCRIBE_SECRET.encode(), "c-1", "email")]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in (text, html):
        assert "Yoga mat" in part and "€29.90" in part
        assert "Cork blocks" in part and "€9.50" in part
        assert "https://shop.example.com/cart" in part
    assert "Hi Ana," in text


def test_same_firing_delivered_twice_sends_once(deliverer: Deliverer):
    body = firing_body("cart_abandonment", cart_events())
    assert deliverer.handle(body, attempt=1).status is ActivationStatus.SENT
    assert deliverer.handle(body, attempt=2).status is ActivationStatus.DUPLICATE
    assert len(sent_emails()) == 1


def test_every_attempt_is_in_the_activations_table_without_the_address(deliverer: Deliverer, resources, session):  # type: ignore[no-untyped-def]
    body = firing_body("cart_abandonment", cart_events())
    deliverer.handle(body, attempt=1)
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    items = log.history(json.loads(body)["firing_id"])
    head = next(i for i in items if i["sk"] == "firing")
    assert head["status"] == "sent" and head["channel"] == "email" and head["rule"] == "cart_abandonment"
    assert head["provider_message_id"]
    assert int(head["expires_at"]) > at("11:05") // 1000 + 399 * 86_400
    assert any(i["sk"].startswith("attempt#0001#sent") for i in items)
    assert "ana@example.com" not in json.dumps(items)


def test_sms_goes_through_sns(deliverer: Deliverer, clock: VirtualClock):
    events = [ev("identify", "09:00", traits={"phone": "+351912345678", "first_name": "Rui"})]
    events += [ev("consent_updated", "09:00", channel="sms", granted=True)]  # SMS is opt-in
    events += [ev("purchase", at("10:00") + day * 86_400_000, sku="S") for day in (1, 8, 9, 15, 16, 17)]
    body = firing_body("purchase_frequency_rising", events)
    clock.set(parse_iso(json.loads(body)["send_at"]))
    assert deliverer.handle(body, attempt=1).status is ActivationStatus.SENT
    [(phone, text)] = sent_sms()
    assert phone == "+351912345678"
    assert text.startswith("Rui, you've been on a roll") and "STOP" in text


def test_webhook_and_event_firings_go_to_the_bus(deliverer: Deliverer, session, resources, clock):  # type: ignore[no-untyped-def]
    events_client = session.client("events")
    sqs = session.client("sqs")
    capture = sqs.create_queue(QueueName="capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(
        Name="crm", EventBusName=resources.delivery.event_bus, EventPattern=json.dumps({"source": ["nudge"]})
    )
    events_client.put_targets(
        Rule="crm", EventBusName=resources.delivery.event_bus, Targets=[{"Id": "q", "Arn": capture_arn}]
    )
    events = [
        ev("identify", "09:00", traits={"email": "lead@example.com", "first_name": "Lea", "company": "Acme"}),
        ev("whitepaper_downloaded", "10:00"),
        *[ev("page_viewed", f"1{h}:00", section="services") for h in (1, 2, 3)],
    ]
    body = firing_body("whitepaper_engaged_lead", events)
    clock.set(parse_iso(json.loads(body)["send_at"]))
    assert deliverer.handle(body, attempt=1).status is ActivationStatus.SENT
    [message] = sqs.receive_message(QueueUrl=capture, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["detail-type"] == "nudge.webhook"
    detail = envelope["detail"]
    assert detail["destination"] == "crm"
    assert detail["payload"]["lead_email"] == "lead@example.com"
    assert detail["payload"]["signal"] == "whitepaper + 3 service page visits"


def test_template_that_cannot_render_goes_to_the_dead_letter_queue(deliverer: Deliverer, session, resources):  # type: ignore[no-untyped-def]
    body = json.loads(firing_body("cart_abandonment", cart_events()))
    body["events"][0]["properties"].pop("price")
    body["events"][0]["properties"].pop("name")
    body["events"][0]["properties"].pop("sku")
    body["template"] = "yoga_bundle"
    body["events"] = [{"event": "product_viewed", "event_id": "x", "timestamp": "2026-11-22T10:00:00Z"}]
    result = deliverer.handle(json.dumps(body), attempt=1)
    assert result.status is ActivationStatus.DEAD_LETTERED
    assert "template" in (result.reason or "")
    assert sent_emails() == []
    [parked] = session.client("sqs").receive_message(
        QueueUrl=resources.delivery.firings_dlq_url, MessageAttributeNames=["All"]
    )["Messages"]
    assert "sku" in parked["MessageAttributes"]["reason"]["StringValue"]


def test_throttling_then_success_sends_once(deliverer: Deliverer):
    client = deliverer.service.channels["email"].client  # type: ignore[attr-defined]
    calls = {"n": 0}

    def throttle_once(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow"}}, "SendEmail")

    client.meta.events.register("before-call.sesv2.SendEmail", throttle_once)
    body = firing_body("cart_abandonment", cart_events())
    with pytest.raises(RetryLater):
        deliverer.handle(body, attempt=1)
    assert sent_emails() == []
    assert deliverer.handle(body, attempt=2).status is ActivationStatus.SENT
    assert len(sent_emails()) == 1


def test_throttling_past_max_attempts_is_parked(deliverer: Deliverer, session, resources):  # type: ignore[no-untyped-def]
    client = deliverer.service.channels["email"].client  # type: ignore[attr-defined]

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded"}}, "SendEmail")

    client.meta.events.register("before-call.sesv2.SendEmail", throttle)
    body = firing_body("cart_abandonment", cart_events())
    result = deliverer.handle(body, attempt=resources.delivery.max_attempts)
    assert result.status is ActivationStatus.DEAD_LETTERED
    assert "gave up after 5 attempts: Throttling" in (result.reason or "")


def test_permanent_error_is_recorded_and_not_retried(session, resources, clock):  # type: ignore[no-untyped-def]
    config = resources.delivery.model_copy(update={"email_from": "someone@unverified.example.org"})
    deliverer = build_deliverer(config, session, clock)
    body = firing_body("cart_abandonment", cart_events())
    result = deliverer.handle(body, attempt=1)
    assert result.status is ActivationStatus.FAILED
    assert "MessageRejected" in (result.reason or "")
    assert deliverer.handle(body, attempt=2).status is ActivationStatus.DUPLICATE  # settled: never retried


def test_customer_without_an_address_is_recorded_not_sent(deliverer: Deliverer):
    events = cart_events()
    events[0] = ev("identify", "09:00", traits={"first_name": "Ana"})
    assert deliverer.handle(firing_body("cart_abandonment", events), attempt=1).status is ActivationStatus.NO_RECIPIENT
    assert sent_emails() == []


def test_unsubscribe_link_round_trip(deliverer: Deliverer, session, resources, clock):  # type: ignore[no-untyped-def]
    deliverer.handle(firing_body("cart_abandonment", cart_events()), attempt=1)
    [message] = sent_emails()
    query = {k: v[0] for k, v in parse_qs(urlparse(message["List-Unsubscribe"].strip("<>")).query).items()}
    stream = Stream(session, resources.stream_name)
    unsubscriber = build_unsubscriber(resources.unsubscribe, session, clock)

    assert unsubscriber.handle("POST", {**query, "t": "0" * 32}).response["statusCode"] == 403
    for malformed in ("é" * 32, "\udcff" * 32, query["t"][:-1], query["t"] + "0", ""):
        assert unsubscriber.handle("POST", {**query, "t": malformed}).response["statusCode"] == 403
    assert unsubscriber.handle("POST", {**query, "c": "someone-else"}).response["statusCode"] == 403
    assert stream.read() == []
    assert unsubscriber.handle("GET", query).response["statusCode"] == 200
    assert stream.read() == []  # a GET (link preview, scanner) records nothing
    assert unsubscriber.handle("POST", query).response["statusCode"] == 200
    clock.advance_to(clock.now_ms() + 20_000)
    assert unsubscriber.handle("POST", query).response["statusCode"] == 200  # the mail client posts again
    first, again = stream.read()
    assert json.loads(first.data)["event_id"] == json.loads(again.data)["event_id"]  # one event: a copy
    record = first
    assert record.partition_key == "c-1"
    opt_out = json.loads(record.data)
    assert opt_out["event"] == "unsubscribed"
    assert opt_out["properties"] == {"channel": "email", "source": "list_unsubscribe"}


def test_redrive_puts_parked_firings_back_and_delivery_sends_them_once(deliverer: Deliverer, session, resources):  # type: ignore[no-untyped-def]
    from nudge.cli.main import main

    body = firing_body("cart_abandonment", cart_events())
    deliverer.queue.park(body, "template: fixed since")
    assert main(["redrive", "--region", REGION]) == 0
    sqs = session.client("sqs")
    [message] = sqs.receive_message(QueueUrl=resources.delivery.firings_queue_url)["Messages"]
    assert json.loads(message["Body"])["firing_id"] == json.loads(body)["firing_id"]
    assert deliverer.handle(message["Body"], attempt=1).status is ActivationStatus.SENT
    assert sqs.receive_message(QueueUrl=resources.delivery.firings_dlq_url).get("Messages", []) == []


@pytest.mark.parametrize("channel", ["email", "sms", "push", "webhook", "event"])
def test_the_cart_firing_with_two_lines_on_every_channel(channel: str, session, resources, clock):  # type: ignore[no-untyped-def]
    """One cart firing (two lines), rendered and sent on each channel through its real adapter."""
    from botocore.stub import Stubber

    from nudge.adapters.channels import PushChannel

    events = cart_events(phone="+351912345678", push_tokens=[{"token": "apns-1", "platform": "ios"}])
    body = json.loads(firing_body("cart_abandonment", events))
    body["channel"] = channel
    body["template"] = None if channel == "event" else "cart_reminder"
    if channel == "webhook":
        body["destination"] = "crm"
    deliverer = build_deliverer(resources.delivery, session, clock)
    stub = None
    if channel == "push":
        pinpoint = session.client("pinpoint")  # moto has no SendMessages: Stubber against the real model
        deliverer.service.channels["push"] = PushChannel(pinpoint, "app-1")  # type: ignore[index]
        stub = Stubber(pinpoint)
        stub.add_response(
            "send_messages",
            {
                "MessageResponse": {
                    "ApplicationId": "app-1",
                    "RequestId": "r-1",
                    "Result": {"apns-1": {"DeliveryStatus": "SUCCESSFUL", "StatusCode": 200}},
                }
            },
        )
        stub.activate()
    capture = None
    if channel in ("webhook", "event"):
        sqs = session.client("sqs")
        capture = sqs.create_queue(QueueName="capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = session.client("events")
        bus.put_rule(
            Name="all", EventBusName=resources.delivery.event_bus, EventPattern=json.dumps({"source": ["nudge"]})
        )
        bus.put_targets(Rule="all", EventBusName=resources.delivery.event_bus, Targets=[{"Id": "q", "Arn": arn}])

    result = deliverer.handle(json.dumps(body), attempt=1)

    assert result.status is ActivationStatus.SENT
    if channel == "email":
        [message] = sent_emails()
        assert "Yoga mat" in message.get_body(preferencelist=("plain",)).get_content()
    elif channel == "sms":
        [(phone, text)] = sent_sms()
        assert phone == "+351912345678"
        assert text == (
            "Ana, your cart is waiting: Yoga mat €29.90, Cork blocks €9.50. https://shop.example.com/cart "
            "Reply STOP to opt out."
        )
    elif channel == "push":
        assert result.rendered is not None
        assert result.rendered.title == "Ana, your cart is waiting"
        assert result.rendered.text == "2 items: Yoga mat (€29.90), Cork blocks (€9.50)"
        assert stub is not None
        stub.assert_no_pending_responses()
    else:
        assert capture is not None
        [message] = session.client("sqs").receive_message(QueueUrl=capture)["Messages"]
        detail = json.loads(message["Body"])["detail"]
        names = [e["properties"].get("name") for e in detail["events"]]
        assert names == ["Yoga mat", "Cork blocks", None]
        if channel == "webhook":
            assert detail["destination"] == "crm"
            assert detail["payload"]["cart_total"] == "39.4"
            assert detail["payload"]["email"] == "ana@example.com"


def test_a_message_that_is_not_a_firing_is_parked_with_the_reason(deliverer: Deliverer, session, resources):  # type: ignore[no-untyped-def]
    assert deliverer.handle(json.dumps({"v": 1, "rule": "cart_abandonment"}), attempt=1) is None
    assert deliverer.handle(json.dumps({"v": 4, "rule": "cart_abandonment"}), attempt=1) is None
    assert deliverer.handle("{not json", attempt=1) is None
    messages = session.client("sqs").receive_message(
        QueueUrl=resources.delivery.firings_dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    reasons = {m["Body"]: m["MessageAttributes"]["reason"]["StringValue"] for m in messages}
    assert reasons[json.dumps({"v": 1, "rule": "cart_abandonment"})].startswith("not a firing (firing_id")
    assert (
        reasons[json.dumps({"v": 4, "rule": "cart_abandonment"})]
        == "firing message v4 is not supported (expected v1 or v2 or v3)"
    )
    assert reasons["{not json"].startswith("not JSON")
    assert sent_emails() == []


def test_an_email_accepted_then_answered_500_is_sent_once(deliverer: Deliverer, session, resources):  # type: ignore[no-untyped-def]
    """SES takes the mail, then its answer is lost (a 500): neither botocore nor the next claim sends it again.

    The fault is injected after moto executed the call: moto's stubber runs the request, and this
    handler answers 500 in place of its answer. With botocore's default retries the mail went out three
    times within one attempt, unseen by the claim. A 5xx leaves the outcome open, so the firing is
    parked as outcome unknown, and a copy of the message is a duplicate.
    """
    client = deliverer.service.channels["email"].client  # type: ignore[attr-defined]
    calls = 0

    def execute_then_lose_the_answer(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        nonlocal calls
        calls += 1
        body = b'{"message": "internal failure"}'
        return AWSResponse(request.url, 500, {"x-amzn-ErrorType": "InternalFailure"}, MockRawResponse(body))

    client.meta.events.register_first("before-send.sesv2.SendEmail", execute_then_lose_the_answer)
    body = firing_body("cart_abandonment", cart_events())
    result = deliverer.handle(body, attempt=1)
    assert result is not None and result.status is ActivationStatus.OUTCOME_UNKNOWN
    assert (calls, len(sent_emails())) == (1, 1)
    [parked] = session.client("sqs").receive_message(
        QueueUrl=resources.delivery.firings_dlq_url, MessageAttributeNames=["All"]
    )["Messages"]
    assert parked["MessageAttributes"]["outcome"]["StringValue"] == "unknown"
    assert "InternalFailure" in parked["MessageAttributes"]["reason"]["StringValue"]
    again = deliverer.handle(body, attempt=1)  # a copy of the message
    assert again is not None and again.status is ActivationStatus.DUPLICATE
    assert (calls, len(sent_emails())) == (1, 1)


def test_a_firing_received_before_its_send_at_goes_back_on_the_queue_delayed(session, resources):  # type: ignore[no-untyped-def]
    early = build_deliverer(resources.delivery, session, VirtualClock(at("11:06:30")))
    body = firing_body("cart_abandonment", cart_events())
    result = early.handle(body, attempt=4, receipt_handle="rh", attributes={"outcome": "unknown"})
    assert result.status is ActivationStatus.DEFERRED and sent_emails() == []
    sqs = session.client("sqs")
    url = resources.delivery.firings_queue_url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # hidden for its 30 s
