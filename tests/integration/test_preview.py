"""``nudge.delivery.preview`` against what delivery really sent, read back from moto.

The preview is built from the same channels the deliverer sends with, so what it shows must be
what SES and the EventBridge bus received: every header and part of the email (its Message-ID and
multipart boundary aside: they are made fresh for each MIME message), the bus entry exactly.
"""

from __future__ import annotations

import email
import json
from email import policy
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from nudge.clock import VirtualClock
from nudge.contracts import FiringMessage, decode_firing, encode_firing
from nudge.delivery.ports import ActivationStatus
from nudge.delivery.preview import preview
from nudge.engine import compile_rules, load_rules_or_raise, replay
from nudge.wiring.delivery import build_deliverer
from tests.support import at, ev

from .conftest import REGION

PLAN = compile_rules(load_rules_or_raise("rules"))


def first_firing(rule: str, events: list) -> FiringMessage:
    return decode_firing(encode_firing(next(f for f in replay(PLAN, events) if f.rule == rule)))


def cart_firing(**changes: Any) -> FiringMessage:
    events = [
        ev("identify", "09:00", traits={"email": "ana@example.com", "first_name": "Ana"}),
        ev("add_to_cart", "10:00", sku="SKU-1", name="Yoga mat", price=29.9, url="/p/yoga-mat"),
        ev("add_to_cart", "10:01", sku="SKU-2", name="Cork blocks", price=9.5, quantity=2),
        ev("checkout_viewed", "10:05"),
    ]
    return first_firing("cart_abandonment", events).model_copy(update=changes)


def encode_firing_message(firing: FiringMessage) -> str:
    """The queue body of an already decoded firing (as ``encode_firing`` wrote it)."""
    return firing.model_dump_json()


def mail_parts(raw: bytes) -> list[tuple[list[tuple[str, str]], str]]:
    """Each MIME part's headers and payload, without what is made fresh per message (Message-ID, boundary)."""
    message = email.message_from_bytes(raw, policy=policy.default)
    parts = []
    for part in message.walk():
        headers = [
            (name, part.get_content_type() if name == "Content-Type" else str(value)) for name, value in part.items()
        ]
        content = "" if part.is_multipart() else part.get_content()
        parts.append(([(name, value) for name, value in headers if name != "Message-ID"], content))
    return parts


def bus_capture(session: Any, bus: str) -> str:
    """An SQS queue receiving everything Nudge puts on the bus."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName="capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = session.client("events")
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["nudge"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def test_an_email_preview_is_the_message_ses_received(session, resources):  # type: ignore[no-untyped-def]
    deliverer = build_deliverer(resources.delivery, session, VirtualClock(at("11:07")))
    service = deliverer.service
    firing = cart_firing()

    shown = preview(firing, service.templates, service.settings, service.channels)
    result = deliverer.handle(encode_firing_message(firing), attempt=1)

    assert result is not None and result.status is ActivationStatus.SENT
    [sent] = [m for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages if hasattr(m, "raw_data")]
    assert shown.request is not None
    assert shown.recipient == "ana@example.com" == result.recipient
    assert shown.rendered == result.rendered
    assert shown.request["Destination"] == {"ToAddresses": ["ana@example.com"]}
    previewed = mail_parts(shown.request["Content"]["Raw"]["Data"])
    assert previewed == mail_parts(sent.raw_data.encode())  # type: ignore[attr-defined]
    assert [headers[0] for headers, _ in previewed[1:]] == [
        ("Content-Type", "text/plain"),
        ("Content-Type", "text/html"),
    ]
    assert "Yoga mat" in previewed[1][1] and "Yoga mat" in previewed[2][1]


@pytest.mark.parametrize("channel", ["webhook", "event"])
def test_a_bus_preview_is_the_entry_the_bus_delivered(channel: str, session, resources):  # type: ignore[no-untyped-def]
    capture = bus_capture(session, resources.delivery.event_bus)
    deliverer = build_deliverer(resources.delivery, session, VirtualClock(at("11:07")))
    service = deliverer.service
    firing = cart_firing(channel=channel, template="cart_reminder" if channel == "webhook" else None)
    if channel == "webhook":
        firing = firing.model_copy(update={"destination": "crm"})

    shown = preview(firing, service.templates, service.settings, service.channels)
    result = deliverer.handle(encode_firing_message(firing), attempt=1)

    assert result is not None and result.status is ActivationStatus.SENT
    [message] = session.client("sqs").receive_message(QueueUrl=capture)["Messages"]
    delivered = json.loads(message["Body"])
    assert shown.request is not None
    [entry] = shown.request["Entries"]
    assert entry["EventBusName"] == resources.delivery.event_bus
    assert (delivered["source"], delivered["detail-type"]) == (entry["Source"], entry["DetailType"])
    assert delivered["detail"] == json.loads(entry["Detail"]) == shown.eventbridge_detail
    if channel == "webhook":
        assert delivered["detail"]["destination"] == "crm"
        assert delivered["detail"]["payload"]["cart_total"] == "39.4"


def test_a_preview_for_a_customer_without_an_address_builds_no_request(session, resources):  # type: ignore[no-untyped-def]
    deliverer = build_deliverer(resources.delivery, session, VirtualClock(at("11:07")))
    service = deliverer.service
    firing = cart_firing(profile={"first_name": "Ana"})

    shown = preview(firing, service.templates, service.settings, service.channels)

    assert shown.recipient is None and shown.request is None
    assert shown.rendered is not None and shown.rendered.subject == "Ana, your cart is waiting for you"
    assert deliverer.handle(encode_firing_message(firing), attempt=1).status is ActivationStatus.NO_RECIPIENT  # type: ignore[union-attr]
