"""Message events against their firings in the activations table, on moto: "did she open it?".

The cart email is delivered (moto's SES), then the channel's reports come back on the stream and
the evaluator records each against the firing: the head's status moves up and never back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nudge.adapters.activations import DynamoDBActivationLog
from nudge.clock import VirtualClock
from nudge.contracts import feedback_event_id
from nudge.wiring.delivery import build_deliverer
from tests.support import at

from .conftest import Harness
from .test_delivery import cart_events, firing_body


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(at("11:07"))


@pytest.fixture
def sent(session, resources, clock) -> str:  # type: ignore[no-untyped-def]
    """The firing id of the cart email, sent."""
    body = firing_body("cart_abandonment", cart_events())
    build_deliverer(resources.delivery, session, clock).handle(body, attempt=1)
    return str(json.loads(body)["firing_id"])


def report(name: str, firing: str, clock: str, **properties: Any) -> dict[str, Any]:
    return {
        "event_id": feedback_event_id("ses", f"m-1:{name}:{clock}"),
        "customer_id": "c-1",
        "event": name,
        "timestamp": f"2026-11-22T{clock}:00Z",
        "properties": {"channel": "email", "rule": "cart_abandonment", "firing_id": firing, **properties},
    }


def head(session, resources, firing: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    return next(item for item in log.history(firing) if item["sk"] == "firing")


def feedback(session, resources, firing: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    return sorted((i["at"], i["status"]) for i in log.history(firing) if i["sk"].startswith("feedback#"))


def test_the_status_moves_from_sent_to_delivered_to_opened_to_clicked(session, resources, clock, sent):  # type: ignore[no-untyped-def]
    harness = Harness(session, resources, clock)
    assert head(session, resources, sent)["status"] == "sent"
    harness.stream.put(report("message_delivered", sent, "11:08"))
    assert harness.evaluate().feedback == 1
    assert head(session, resources, sent)["status"] == "delivered"
    harness.stream.put(
        report("message_opened", sent, "11:30"), report("message_clicked", sent, "11:31", url="https://s/c")
    )
    harness.evaluate()
    assert (head(session, resources, sent)["status"], head(session, resources, sent)["feedback_at"]) == (
        "clicked",
        "2026-11-22T11:31:00Z",
    )
    assert feedback(session, resources, sent) == [
        ("2026-11-22T11:08:00Z", "delivered"),
        ("2026-11-22T11:30:00Z", "opened"),
        ("2026-11-22T11:31:00Z", "clicked"),
    ]


def test_a_report_that_comes_out_of_order_never_moves_the_status_back(session, resources, clock, sent):  # type: ignore[no-untyped-def]
    harness = Harness(session, resources, clock)
    harness.stream.put(report("message_opened", sent, "11:30"))
    harness.evaluate()
    harness.stream.put(report("message_delivered", sent, "11:08"))
    harness.evaluate()
    assert head(session, resources, sent)["status"] == "opened"
    assert [status for _, status in feedback(session, resources, sent)] == ["delivered", "opened"]


def test_a_bounce_and_a_complaint_are_recorded_with_their_details(session, resources, clock, sent):  # type: ignore[no-untyped-def]
    harness = Harness(session, resources, clock)
    bounced = report("message_bounced", sent, "11:09", bounce_type="permanent", reason="General")
    harness.stream.put(bounced)
    harness.evaluate()
    assert head(session, resources, sent)["status"] == "bounced"
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    [item] = [i for i in log.history(sent) if i["sk"].startswith("feedback#")]
    assert (item["bounce_type"], item["reason"], item["customer_id"]) == ("permanent", "General", "c-1")
    harness.stream.put(report("message_complained", sent, "12:00"))
    harness.evaluate()
    assert head(session, resources, sent)["status"] == "complained"


def test_the_same_report_twice_is_recorded_once(session, resources, clock, sent):  # type: ignore[no-untyped-def]
    harness = Harness(session, resources, clock)
    harness.stream.put(report("message_delivered", sent, "11:08"), report("message_delivered", sent, "11:08"))
    harness.evaluate()
    assert feedback(session, resources, sent) == [("2026-11-22T11:08:00Z", "delivered")]


def test_a_report_for_a_firing_nudge_never_sent_moves_nothing(session, resources, clock):  # type: ignore[no-untyped-def]
    harness = Harness(session, resources, clock)
    harness.stream.put(report("message_opened", "f" * 32, "11:30"))
    harness.evaluate()
    log = DynamoDBActivationLog(session.client("dynamodb"), resources.delivery.activations_table)
    assert log.history("f" * 32) == []
