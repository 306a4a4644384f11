"""End User Messaging SMS reports -> message events; an opt-out reply -> ``unsubscribed``.

Events are built in the shape of AWS's "Example event data" for SMS (the configuration set's SNS
event destination) and of the two-way SMS payload, each wrapped in the SNS notification Lambda
receives from the stack's SMS feedback topic.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.contracts import FiringMessage, feedback_event_id, parse_event
from nudge.delivery.ports import Outgoing
from nudge.delivery.requests import EndUserMessagingSms
from nudge.delivery.templates import Rendered
from nudge.feedback import FeedbackIntake, PhoneKey, Skip, read_context, sms_context
from nudge.feedback.message_tags import SMS_VALUE_LIMIT
from nudge.feedback.sms import FAILED, PUBLISHED_TYPES, is_opt_out, map_inbound, map_sms_event

FIRING_ID = "9e107d9d372bb6826bd81d3542a419d6"
PHONE = "+351912345678"
SECRET = b"a-signing-secret-of-48-characters-for-the-tests!"


def delivery_event(event_type: str = "TEXT_DELIVERED", **changes: Any) -> dict[str, Any]:
    event = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": 1795345200123,
        "isFinal": True,
        "originationPhoneNumber": "+12065550152",
        "destinationPhoneNumber": PHONE,
        "isoCountryCode": "PT",
        "isInternationalSend": True,
        "mcc": "268",
        "mnc": "06",
        "carrierName": "Example Mobile",
        "messageId": "862a8790-60c0-4430-9b2b-658bd0a1b2c3",
        "messageRequestTimestamp": 1795345199870,
        "messageEncoding": "GSM",
        "messageType": "TRANSACTIONAL",
        "messageStatus": event_type.removeprefix("TEXT_"),
        "messageStatusDescription": "Message has been accepted by phone",
        "context": {"rule": "loyalty_perk", "firing": FIRING_ID, "step": "0", "customer": "c-7"},
        "totalMessageParts": 1,
        "totalMessagePrice": 0.0441,
        "totalCarrierFee": 0.0,
    }
    event.update(changes)
    return event


def reply(body: str = "STOP", number: str = PHONE) -> dict[str, Any]:
    return {
        "originationNumber": number,
        "destinationNumber": "+12065550152",
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": body,
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
        "previousPublishedMessageId": "862a8790-60c0-4430-9b2b-658bd0a1b2c3",
    }


def notification(*messages: dict[str, Any], timestamp: str = "2026-11-22T12:00:00.250Z") -> dict[str, Any]:
    """What Lambda receives from the SNS topic: one record per message."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:eu-west-1:123456789012:nudge-sms-feedback:0b1c2d3e",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"95df01b4-ee98-5cb9-9903-4c221d41eb5{index}",
                    "TopicArn": "arn:aws:sns:eu-west-1:123456789012:nudge-sms-feedback",
                    "Subject": None,
                    "Message": json.dumps(message),
                    "Timestamp": timestamp,
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
                    "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
            for index, message in enumerate(messages)
        ]
    }


class Recipients:
    """The phone index in memory, keyed as the DynamoDB one is (``PhoneKey``)."""

    def __init__(self) -> None:
        self.key = PhoneKey(SECRET)
        self.items: dict[str, str] = {}

    def remember(self, phone: str, customer_id: str) -> None:
        self.items[self.key.digest(phone)] = customer_id

    def customer_of(self, phone: str) -> str | None:
        return self.items.get(self.key.digest(phone))


class Sink:
    def __init__(self) -> None:
        self.put_envelopes: list[dict[str, Any]] = []

    def put(self, envelopes: list[dict[str, Any]]) -> dict[str, str]:
        self.put_envelopes += envelopes
        return {}


# -- delivery events -----------------------------------------------------------------------------


def test_a_delivery_receipt_is_message_delivered_with_what_the_send_put_in_its_context():
    [envelope] = map_sms_event(delivery_event()).envelopes
    assert envelope["event"] == "message_delivered"
    assert envelope["customer_id"] == "c-7"
    assert envelope["timestamp"] == "2026-11-22T11:00:00.123Z"
    assert envelope["properties"] == {"channel": "sms", "rule": "loyalty_perk", "firing_id": FIRING_ID, "step": 0}
    assert envelope["event_id"] == feedback_event_id(
        "sms", "862a8790-60c0-4430-9b2b-658bd0a1b2c3:TEXT_DELIVERED:1795345200123"
    )
    parse_event(envelope)


def test_the_carriers_acceptance_counts_as_delivered_only_when_it_is_the_last_word():
    [final] = map_sms_event(delivery_event("TEXT_SUCCESSFUL", isFinal=True)).envelopes
    assert final["event"] == "message_delivered"
    on_the_way = map_sms_event(delivery_event("TEXT_SUCCESSFUL", isFinal=False))
    assert (on_the_way.envelopes, on_the_way.skip) == ((), Skip.IGNORED)


@pytest.mark.parametrize("event_type", sorted(FAILED))
def test_a_text_that_did_not_reach_the_phone_is_message_failed_naming_why(event_type: str):
    [envelope] = map_sms_event(delivery_event(event_type)).envelopes
    assert envelope["event"] == "message_failed"
    assert envelope["properties"]["reason"] == event_type
    parse_event(envelope)


@pytest.mark.parametrize(
    "event_type", ["TEXT_QUEUED", "TEXT_PENDING", "TEXT_SENT", "VOICE_ANSWERED", "MEDIA_DELIVERED"]
)
def test_statuses_on_the_way_and_other_kinds_of_message_put_nothing(event_type: str):
    mapped = map_sms_event(delivery_event(event_type, isFinal=False))
    assert (mapped.envelopes, mapped.skip) == ((), Skip.IGNORED)


def test_the_same_event_twice_is_the_same_event_id():
    first = map_sms_event(delivery_event()).envelopes[0]["event_id"]
    assert map_sms_event(copy.deepcopy(delivery_event())).envelopes[0]["event_id"] == first
    later = delivery_event("TEXT_DELIVERED", eventTimestamp=1795345299999)
    assert map_sms_event(later).envelopes[0]["event_id"] != first


def test_a_text_without_nudges_context_is_skipped():
    for context in (None, {}, {"rule": "loyalty_perk"}):
        event = delivery_event()
        event["context"] = context
        assert map_sms_event(event).skip is Skip.NOT_OURS


@pytest.mark.parametrize(
    "changes",
    [{"messageId": None}, {"eventTimestamp": "1795345200123"}, {"eventTimestamp": -1}, {"eventType": "BOUNCE"}],
)
def test_a_delivery_event_not_in_the_documented_shape_is_unreadable(changes: dict[str, Any]):
    assert map_sms_event(delivery_event(**changes)).skip is Skip.UNREADABLE


def test_the_stack_subscribes_to_the_types_that_map():
    assert set(PUBLISHED_TYPES) == {*FAILED, "TEXT_DELIVERED", "TEXT_SUCCESSFUL"}


# -- replies -------------------------------------------------------------------------------------


def test_a_stop_reply_unsubscribes_the_customer_last_texted_at_that_number():
    recipients = Recipients()
    recipients.remember(PHONE, "c-7")
    [envelope] = map_inbound(reply("STOP"), 1795345300000, recipients).envelopes
    assert envelope["event"] == "unsubscribed"
    assert envelope["customer_id"] == "c-7"
    assert envelope["properties"] == {"channel": "sms", "source": "sms_stop"}
    assert envelope["event_id"] == feedback_event_id("sms", "inbound:cae173d2-66b9-564c-8309-21f858e9fb84")
    assert parse_event(envelope).ts == 1795345300000


@pytest.mark.parametrize(
    ("body", "opts_out"),
    [
        ("STOP", True),
        (" stop. ", True),
        ("Unsubscribe!", True),
        ("OPT-OUT", True),
        ("ARRET", True),
        ("stop please", False),
        ("Thanks!", False),
        ("", False),
    ],
)
def test_only_a_reply_that_is_an_opt_out_keyword_opts_out(body: str, opts_out: bool):
    assert is_opt_out(body) is opts_out
    recipients = Recipients()
    recipients.remember(PHONE, "c-7")
    mapped = map_inbound(reply(body), 1795345300000, recipients)
    assert bool(mapped.envelopes) is opts_out
    if not opts_out:
        assert mapped.skip is Skip.IGNORED


def test_a_stop_from_a_number_nudge_never_texted_is_counted_not_guessed():
    mapped = map_inbound(reply("STOP", number="+447700900123"), 1795345300000, Recipients())
    assert (mapped.envelopes, mapped.skip) == ((), Skip.UNKNOWN_NUMBER)
    assert map_inbound(reply("STOP"), 1795345300000, None).skip is Skip.UNKNOWN_NUMBER


def test_the_intake_tells_delivery_events_from_replies_and_stamps_a_reply_with_its_notification_time():
    recipients, sink = Recipients(), Sink()
    recipients.remember(PHONE, "c-7")
    report = FeedbackIntake(sink, recipients).handle(notification(delivery_event(), reply("STOP")))
    assert [e["event"] for e in sink.put_envelopes] == ["message_delivered", "unsubscribed"]
    assert sink.put_envelopes[1]["timestamp"] == "2026-11-22T12:00:00.250Z"
    assert report.put == {"message_delivered": 1, "unsubscribed": 1}
    assert report.kinds == {"TEXT_DELIVERED": 1, "inbound": 1}


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "not json", "Timestamp": "2026-11-22T12:00:00Z"}}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "[1, 2]", "Timestamp": "2026-11-22T12:00:00Z"}}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}", "Timestamp": "2026-11-22T12:00:00Z"}}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}", "Timestamp": "noon"}}]},
        {"Records": ["nope"]},
        {"something": "else"},
    ],
)
def test_input_that_is_no_documented_notification_is_counted_unreadable(event: dict[str, Any]):
    sink = Sink()
    report = FeedbackIntake(sink, Recipients()).handle(event)
    assert report.skipped == {Skip.UNREADABLE: 1}
    assert sink.put_envelopes == []


# -- the phone index's key -----------------------------------------------------------------------


def test_the_phone_index_key_is_keyed_and_never_the_number():
    key = PhoneKey(SECRET)
    assert key.digest(PHONE) == key.digest(f" {PHONE} ")
    assert key.digest(PHONE) != PhoneKey(SECRET[::-1]).digest(PHONE)
    assert PHONE.removeprefix("+") not in key.digest(PHONE)
    assert "secret" not in repr(key)
    with pytest.raises(ValueError, match="16 bytes"):
        PhoneKey(b"short")


# -- the context delivery writes -----------------------------------------------------------------

FIRING = FiringMessage.model_validate(
    {
        "firing_id": FIRING_ID,
        "rule": "loyalty_perk",
        "customer_id": "c 7 (Ana)",
        "fired_at": "2026-11-22T10:00:00Z",
        "armed_at": "2026-11-22T09:00:00Z",
        "channel": "sms",
        "template": "loyalty_perk",
        "step": 3,
        "profile": {"phone": PHONE},
    }
)


def test_the_text_request_carries_customer_rule_firing_and_step_in_its_context():
    rendered = Rendered(channel="sms", template="loyalty_perk", text="15% off")
    request = EndUserMessagingSms("pool-1", "nudge-sms").build(Outgoing(FIRING, PHONE, rendered, "https://u/"))
    context = request["Context"]
    assert {name: context[name] for name in ("rule", "firing", "step")} == {
        "rule": "loyalty_perk",
        "firing": FIRING_ID,
        "step": "3",
    }
    assert read_context(context) is not None
    assert read_context(context).customer_id == "c 7 (Ana)"  # type: ignore[union-attr]


@given(st.text(min_size=1, max_size=256))
def test_every_customer_id_round_trips_through_a_context_the_api_accepts(customer_id: str):
    context = sms_context(FIRING.model_copy(update={"customer_id": customer_id}))
    assert len(context) <= 5  # the API's limit on Context entries
    assert all(0 < len(value) <= SMS_VALUE_LIMIT and value == value.strip() for value in context.values())
    sent = read_context(context)
    assert sent is not None
    assert (sent.customer_id, sent.step) == (customer_id, 3)
