"""The feedback Lambda on moto, configured from the environment as deployed: provider events in,
message events on the Kinesis stream, each partitioned by its customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import nudge.handlers.feedback
from nudge.adapters.sms_recipients import DynamoDBSmsRecipients
from nudge.contracts import parse_event
from nudge.feedback import FeedbackNotPut, PhoneKey
from nudge.local.provision import LocalResources
from nudge.settings import FeedbackAddresses, StackSettings, feedback_config, table_settings
from nudge.wiring.secrets import unsubscribe_secret

from .conftest import Stream
from .test_handlers import Context

GOLDEN = Path(__file__).parents[1] / "unit" / "golden" / "ses"
SETTINGS = StackSettings(stream_mode="provisioned", shard_count=2)
"""SMS through SNS, the default: the function hears only from SES."""
SMS_SETTINGS = StackSettings(stream_mode="provisioned", shard_count=2, sms_provider="end_user_messaging")
PHONE = "+351912345678"


def ses_event(name: str, **tags: list[str]) -> dict[str, Any]:
    """A fixture of ``tests/unit/golden/ses``, its ``mail.tags`` changed by ``tags`` (``[]`` removes one)."""
    event: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    published = event["detail"]["mail"]["tags"]
    published.update(tags)
    for name_, values in tags.items():
        if not values:
            del published[name_]
    return event


@pytest.fixture
def configure(session, resources: LocalResources, monkeypatch):  # type: ignore[no-untyped-def]
    """Set the function's environment from ``feedback_config`` for ``settings``, as CDK does."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def configure(settings: StackSettings, **overrides: str) -> None:
        addresses = FeedbackAddresses(unsubscribe_secret_arn=resources.unsubscribe.unsubscribe_secret_arn)
        config = feedback_config(settings, addresses).model_copy(update=overrides)
        for name, value in config.to_env().items():
            monkeypatch.setenv(name, value)
        nudge.handlers.feedback.intake.cache_clear()

    yield configure
    nudge.handlers.feedback.intake.cache_clear()


@pytest.fixture
def stream(session, resources: LocalResources) -> Stream:  # type: ignore[no-untyped-def]
    return Stream(session, resources.stream_name)


def test_an_ses_bounce_lands_on_the_stream_partitioned_by_its_customer(configure, stream):  # type: ignore[no-untyped-def]
    configure(SETTINGS)
    # How delivery tags an id SES would refuse as a tag value: base64url, in customer_b64.
    bounce = ses_event("bounce", customer=[], customer_b64=["c2hvcDpjdXN0b21lci40Mg"])
    nudge.handlers.feedback.handler(bounce, Context())
    [record] = stream.read()
    assert record.partition_key == "shop:customer.42"
    event = parse_event(record.data)
    assert (event.name, event.customer_id) == ("message_bounced", "shop:customer.42")
    assert event.properties["bounce_type"] == "permanent"
    assert event.properties["firing_id"] == "5d41402abc4b2a76b9719d911017c592"


def test_a_report_delivered_twice_puts_the_same_event_id_for_the_engine_to_drop(configure, stream):  # type: ignore[no-untyped-def]
    configure(SETTINGS)
    for _ in range(2):
        nudge.handlers.feedback.handler(ses_event("open"), Context())
    first, second = (parse_event(record.data) for record in stream.read())
    assert first.event_id == second.event_id
    assert first.name == "message_opened"


def test_an_email_nudge_did_not_send_puts_nothing_and_does_not_fail(configure, stream):  # type: ignore[no-untyped-def]
    configure(SETTINGS)
    nudge.handlers.feedback.handler(ses_event("delivery_untagged"), Context())
    nudge.handlers.feedback.handler(ses_event("send"), Context())
    assert stream.read() == []


def test_a_stop_reply_unsubscribes_the_customer_delivery_last_texted_at_that_number(
    configure, stream, session, resources
):  # type: ignore[no-untyped-def]
    table = table_settings(SMS_SETTINGS).sms_recipients
    assert table is not None
    session.client("dynamodb").create_table(
        TableName=table.name,
        AttributeDefinitions=[{"AttributeName": table.partition_key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": table.partition_key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    configure(SMS_SETTINGS)
    # What delivery's End User Messaging channel does before each text, with the same secret.
    key = PhoneKey(unsubscribe_secret(resources.unsubscribe, session))
    DynamoDBSmsRecipients(session.client("dynamodb"), table.name, key, retention_days=90).remember(PHONE, "c-7")
    inbound = {
        "originationNumber": PHONE,
        "destinationNumber": "+12065550152",
        "messageBody": "STOP",
        "messageKeyword": "KEYWORD_123456789012",
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    }
    delivered = {"eventType": "TEXT_DELIVERED", "eventTimestamp": 1795345200123, "isFinal": True,
                 "messageId": "862a8790-60c0-4430-9b2b-658bd0a1b2c3", "messageStatus": "DELIVERED",
                 "context": {"rule": "loyalty_perk", "firing": "9e107d9d372bb6826bd81d3542a419d6", "step": "0",
                             "customer": "c-7"}}  # fmt: skip
    records = [
        {"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message), "Timestamp": "2026-11-22T12:00:00.250Z"}}
        for message in (delivered, inbound)
    ]
    nudge.handlers.feedback.handler({"Records": records}, Context())
    events = sorted((parse_event(r.data) for r in stream.read()), key=lambda e: e.name)
    assert [(e.name, e.customer_id, e.properties) for e in events] == [
        ("message_delivered", "c-7", {"channel": "sms", "rule": "loyalty_perk",
                                      "firing_id": "9e107d9d372bb6826bd81d3542a419d6", "step": 0}),
        ("unsubscribed", "c-7", {"channel": "sms", "source": "sms_stop"}),
    ]  # fmt: skip
    # The index holds a keyed hash of the number, never the number.
    [item] = session.client("dynamodb").scan(TableName=table.name)["Items"]
    assert PHONE not in json.dumps(item) and PHONE.removeprefix("+") not in json.dumps(item)


def test_events_the_stream_would_not_take_fail_the_invocation_so_lambda_retries_it(configure):  # type: ignore[no-untyped-def]
    configure(SETTINGS, events_stream_name="no-such-stream")
    with pytest.raises(FeedbackNotPut, match="ResourceNotFoundException"):
        nudge.handlers.feedback.handler(ses_event("complaint"), Context())
