"""SES events -> message events, and the tags that let an email's events find its customer.

The fixtures in ``golden/ses/`` are EventBridge events as an SES configuration set's EventBridge
destination publishes them (``source: aws.ses``, the event-publishing record in ``detail``), one
per event type, in the shapes of AWS's "Examples of event data that Amazon SES publishes".
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.contracts import FiringMessage, feedback_event_id, parse_event
from nudge.delivery.ports import Outgoing
from nudge.delivery.requests import SesEmail
from nudge.delivery.templates import Rendered
from nudge.feedback import FeedbackIntake, Skip, read_tags, ses_tags
from nudge.feedback.message_tags import SES_VALUE_LIMIT
from nudge.feedback.ses import DETAIL_TYPES, PUBLISHED_TYPES, map_ses_event

GOLDEN = Path(__file__).parent / "golden" / "ses"
MESSAGE_ID = "0102019a3c5e7d11-4f2b8c6e-91d0-4a7e-b3f5-2c8e6d1a9b40-000000"
SENT = {"channel": "email", "rule": "cart_abandonment", "firing_id": "5d41402abc4b2a76b9719d911017c592", "step": 1}
SES_TAG = re.compile(r"[A-Za-z0-9_-]{1,256}")


def golden(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    return event


class Sink:
    """An ``EventSink`` that keeps what it was given (and refuses the ids in ``refuse``)."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.put_envelopes: list[dict[str, Any]] = []
        self.refuse = refuse

    def put(self, envelopes: list[dict[str, Any]]) -> dict[str, str]:
        self.put_envelopes += [e for e in envelopes if e["event_id"] not in self.refuse]
        return {
            e["event_id"]: "ProvisionedThroughputExceededException" for e in envelopes if e["event_id"] in self.refuse
        }


MAPPED = [
    ("delivery", "message_delivered", "2026-11-22T10:00:01.734Z", {}),
    ("open", "message_opened", "2026-11-22T10:12:44Z", {}),
    (
        "click",
        "message_clicked",
        "2026-11-22T10:13:05Z",
        {"url": "https://shop.example.com/cart?utm_source=nudge&utm_campaign=cart_abandonment"},
    ),
    ("bounce", "message_bounced", "2026-11-22T10:00:02.511Z", {"bounce_type": "permanent", "reason": "General"}),
    ("complaint", "message_complained", "2026-11-22T11:30:00Z", {"reason": "abuse"}),
    (
        "rendering_failure",
        "message_failed",
        "2026-11-22T10:00:00.120Z",
        {"reason": "Attribute 'first_name' is not present in the rendering data."},
    ),
    ("reject", "message_failed", "2026-11-22T10:00:00.120Z", {"reason": "Bad content"}),
]


@pytest.mark.parametrize(("fixture", "name", "timestamp", "extra"), MAPPED, ids=[m[0] for m in MAPPED])
def test_each_reported_outcome_becomes_its_message_event_at_the_reports_own_time(
    fixture: str, name: str, timestamp: str, extra: dict[str, Any]
):
    mapped = map_ses_event(golden(fixture)["detail"])
    [envelope] = mapped.envelopes
    assert mapped.skip is None
    assert envelope["event"] == name
    assert envelope["customer_id"] == "c-42"
    assert envelope["timestamp"] == timestamp
    assert envelope["properties"] == {**SENT, **extra}
    event = parse_event(envelope)  # what the evaluator will read: the contract accepts it
    assert (event.name, event.customer_id) == (name, "c-42")


@pytest.mark.parametrize("fixture", [m[0] for m in MAPPED])
def test_the_event_id_is_the_providers_report_hashed_so_a_redelivered_report_is_the_same_event(fixture: str):
    detail = golden(fixture)["detail"]
    [first] = map_ses_event(detail).envelopes
    [again] = map_ses_event(copy.deepcopy(detail)).envelopes
    assert first["event_id"] == again["event_id"]
    # The report's own time; a rejection or a rendering failure has none but the send's.
    about = "mail" if fixture in ("reject", "rendering_failure") else fixture
    report = f"{MESSAGE_ID}:{detail['eventType']}:{detail[about]['timestamp']}"
    if fixture == "click":
        report += f":{detail['click']['link']}"
    assert first["event_id"] == feedback_event_id("ses", report)


def test_different_reports_of_one_message_are_different_events():
    ids = {map_ses_event(golden(fixture)["detail"]).envelopes[0]["event_id"] for fixture, *_ in MAPPED}
    assert len(ids) == len(MAPPED)
    click = golden("click")["detail"]
    other = copy.deepcopy(click)
    other["click"]["link"] = "https://shop.example.com/help"
    assert map_ses_event(click).envelopes[0]["event_id"] != map_ses_event(other).envelopes[0]["event_id"]


@pytest.mark.parametrize(
    ("ses_type", "bounce_type"), [("Permanent", "permanent"), ("Transient", "transient"), ("Undetermined", "transient")]
)
def test_only_a_permanent_bounce_is_permanent(ses_type: str, bounce_type: str):
    detail = golden("bounce")["detail"]
    detail["bounce"]["bounceType"] = ses_type
    [envelope] = map_ses_event(detail).envelopes
    assert envelope["properties"]["bounce_type"] == bounce_type


def test_a_complaint_without_a_feedback_type_has_no_reason():
    detail = golden("complaint")["detail"]
    del detail["complaint"]["complaintFeedbackType"]
    [envelope] = map_ses_event(detail).envelopes
    assert "reason" not in envelope["properties"]


def test_a_reason_never_carries_an_address():
    detail = golden("reject")["detail"]
    detail["reject"]["reason"] = "Rejected: ada@example.com is on a blocklist"
    [envelope] = map_ses_event(detail).envelopes
    assert envelope["properties"]["reason"] == "Rejected: <email> is on a blocklist"


@pytest.mark.parametrize("fixture", ["send", "delivery_delay", "subscription"])
def test_sends_delays_and_subscriptions_put_nothing(fixture: str):
    mapped = map_ses_event(golden(fixture)["detail"])
    assert (mapped.envelopes, mapped.skip) == ((), Skip.IGNORED)


def test_an_email_nudge_did_not_tag_is_skipped_and_counted_never_an_error():
    sink = Sink()
    report = FeedbackIntake(sink).handle(golden("delivery_untagged"))
    assert sink.put_envelopes == []
    assert report.skipped == {Skip.NOT_OURS: 1}
    assert not report.put


@pytest.mark.parametrize(
    "broken",
    [
        lambda d: d.pop("mail"),
        lambda d: d["mail"].pop("messageId"),
        lambda d: d["delivery"].update(timestamp="yesterday"),
        lambda d: d.update(eventType="Teleported"),
        lambda d: d.update(eventType=7),
    ],
)
def test_a_record_not_in_the_documented_shape_is_unreadable(broken):  # type: ignore[no-untyped-def]
    detail = golden("delivery")["detail"]
    broken(detail)
    assert map_ses_event(detail).skip is Skip.UNREADABLE


def test_the_intake_puts_each_mapped_event_and_counts_by_name():
    sink = Sink()
    intake = FeedbackIntake(sink)
    for fixture, *_ in MAPPED:
        intake.handle(golden(fixture))
    report = intake.handle(golden("bounce"))
    assert report.put == {"message_bounced": 1}
    assert report.kinds == {"Bounce": 1}
    assert [e["event"] for e in sink.put_envelopes].count("message_failed") == 2


def test_what_the_stream_did_not_take_fails_the_invocation_after_the_rest_is_put():
    from nudge.feedback import FeedbackNotPut

    event = golden("open")
    [envelope] = map_ses_event(event["detail"]).envelopes
    with pytest.raises(FeedbackNotPut, match="1 message event"):
        FeedbackIntake(Sink(refuse=frozenset({envelope["event_id"]}))).handle(event)


def test_the_stack_subscribes_to_exactly_the_types_that_map():
    assert len(PUBLISHED_TYPES) == len(DETAIL_TYPES) == len(MAPPED)


# -- the tags delivery writes ---------------------------------------------------------------------

FIRING = FiringMessage.model_validate(
    {
        "firing_id": "5d41402abc4b2a76b9719d911017c592",
        "rule": "cart_abandonment",
        "customer_id": "shop:customer.42",
        "fired_at": "2026-11-22T10:00:00Z",
        "armed_at": "2026-11-22T09:00:00Z",
        "channel": "email",
        "template": "cart_reminder",
        "step": 2,
        "profile": {"email": "ada@example.com"},
    }
)


def as_published(tags: list[dict[str, str]]) -> dict[str, list[str]]:
    """``EmailTags`` as an SES event's ``mail.tags`` shows them: name -> list of values."""
    return {"ses:configuration-set": ["nudge-email"], **{tag["Name"]: [tag["Value"]] for tag in tags}}


def test_the_email_request_tags_customer_rule_firing_and_step():
    rendered = Rendered(channel="email", template="cart_reminder", subject="Hi", text="Hello")
    request = SesEmail("Shop <hello@shop.example.com>", "nudge-email").build(
        Outgoing(FIRING, "ada@example.com", rendered, "https://u/")
    )
    tags = {tag["Name"]: tag["Value"] for tag in request["EmailTags"]}
    assert tags["rule"] == "cart_abandonment"
    assert tags["firing"] == FIRING.firing_id
    assert tags["step"] == "2"
    assert "customer" not in tags  # "." and ":" are not allowed in a tag value: the id travels encoded
    assert tags["customer_b64"] == "c2hvcDpjdXN0b21lci40Mg"
    assert read_tags(as_published(request["EmailTags"])) is not None
    assert read_tags(as_published(request["EmailTags"])).customer_id == "shop:customer.42"  # type: ignore[union-attr]


@given(st.text(min_size=1, max_size=256))
def test_every_customer_id_round_trips_through_tags_ses_accepts(customer_id: str):
    firing = FIRING.model_copy(update={"customer_id": customer_id})
    tags = ses_tags(firing)
    assert all(SES_TAG.fullmatch(tag["Name"]) and SES_TAG.fullmatch(tag["Value"]) for tag in tags)
    assert all(len(tag["Value"]) <= SES_VALUE_LIMIT for tag in tags)
    sent = read_tags(as_published(tags))
    assert sent is not None
    assert (sent.customer_id, sent.rule, sent.firing_id, sent.step) == (customer_id, FIRING.rule, FIRING.firing_id, 2)


@given(st.from_regex(r"[A-Za-z0-9_-]{1,256}", fullmatch=True))
def test_an_id_ses_accepts_as_it_is_travels_as_it_is(customer_id: str):
    tags = {tag["Name"]: tag["Value"] for tag in ses_tags(FIRING.model_copy(update={"customer_id": customer_id}))}
    assert tags["customer"] == customer_id
    assert not any(name.startswith("customer_b64") for name in tags)


@pytest.mark.parametrize(
    "tags",
    [
        {"customer": ["has space"]},
        {"customer_b64": ["not base64!"]},
        {"customer_b64": ["_w"]},  # decodes to a byte that is not UTF-8
        {"customer": []},
        {"rule": ["cart_abandonment"]},
    ],
)
def test_tags_this_module_could_not_have_written_name_no_customer(tags: dict[str, list[str]]):
    assert read_tags(tags) is None
