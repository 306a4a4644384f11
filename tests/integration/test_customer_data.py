"""`nudge explain`, `export`, `erase` and the audit trail, against moto: the evaluator does the erasure."""

from __future__ import annotations

import pytest

from nudge.adapters.activations import DynamoDBActivationLog
from nudge.contracts import ERASURE_PREFIX, FiringMessage, customer_hash
from nudge.customer_data import CustomerDataTools, UnknownCustomer
from nudge.delivery.ports import ActivationStatus
from nudge.engine import Engine, load_plan
from nudge.settings import ResourceNames
from nudge.timefmt import iso
from tests.support import at

from .conftest import Harness
from .test_evaluator import cart, event, identify

HOUR = 3_600_000


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    from nudge.clock import VirtualClock

    return VirtualClock(at("10:00"))


@pytest.fixture
def harness(session, resources, clock) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(session, resources, clock)


@pytest.fixture
def tools(harness: Harness) -> CustomerDataTools:
    return CustomerDataTools.from_session(
        harness.session, ResourceNames("nudge"), Engine(load_plan("rules")), clock=harness.clock, sleep=lambda _: None
    )


def _armed_cart(harness: Harness, customer: str = "c-1") -> None:
    harness.stream.put(*cart(customer))
    harness.clock.set(at("10:06"))
    report = harness.evaluate()
    assert report.timers_set >= 1
    harness.firings()


def _erase(harness: Harness, tools: CustomerDataTools, customer: str = "c-1"):  # type: ignore[no-untyped-def]
    harness.clock.set(at("10:10"))
    assert tools.erase(customer).outcome == "requested"
    return harness.evaluate()


def _profile_items(harness: Harness) -> list[dict]:
    return harness.dynamodb.scan(TableName=harness.resources.config.profile_table)["Items"]


def test_an_erasure_during_a_pending_wait_deletes_its_schedule_and_nothing_fires(harness, tools):
    _armed_cart(harness)
    assert harness.schedules.pending()
    report = _erase(harness, tools)
    assert report.counts()["CustomersErased"] == 1
    assert harness.schedules.pending() == []
    assert harness.item("c-1") is None
    harness.clock.set(at("12:00"))
    assert harness.fire_due_timers() == 0
    harness.evaluate()
    assert harness.firings() == []


def test_the_tombstone_holds_only_a_hash_of_the_id_and_the_erasure_time(harness, tools):
    _armed_cart(harness)
    _erase(harness, tools)
    [tombstone] = _profile_items(harness)
    assert set(tombstone) == {"pk", "erased_at", "expires_at"}
    assert tombstone["pk"]["S"] == ERASURE_PREFIX + customer_hash("c-1")
    # Kept for the stream's retention plus the mapping's maximum record age: 7 days + 12 hours.
    assert int(tombstone["expires_at"]["N"]) == at("10:10") // 1000 + 7 * 86_400 + 12 * 3600
    assert "c-1" not in str(tombstone)


def test_a_late_event_from_before_the_erasure_is_dropped_and_one_after_starts_a_new_customer(harness, tools):
    _armed_cart(harness)
    _erase(harness, tools)
    harness.stream.put(event("add_to_cart", "10:01", "c-1", event_id="retried-by-the-sdk", sku="SKU-1"))
    report = harness.evaluate()
    assert report.counts()["EventsDroppedAfterErasure"] == 1
    assert harness.item("c-1") is None
    harness.clock.set(at("10:20"))
    harness.stream.put(event("add_to_cart", "10:20", "c-1", sku="SKU-2"))
    harness.evaluate()
    fresh = tools.export("c-1")
    assert [e["properties"] for e in fresh["events"]] == [{"sku": "SKU-2"}]
    assert fresh["profile"]["traits"] == {}  # the old email is gone with the rest
    assert fresh["erased_at"] == iso(at("10:10"))


def test_an_erasure_removes_the_customer_s_activations_and_their_message_events(harness, tools, session):
    _armed_cart(harness)
    _sent(session, harness, "c-1")
    harness.stream.put(event("message_delivered", "10:08", "c-1", channel="email", firing_id="f" * 32))
    harness.evaluate()
    assert len(tools.export("c-1")["activations"][0]["history"]) == 2  # the attempt and the delivery
    _erase(harness, tools)
    items = harness.dynamodb.scan(TableName=harness.resources.config.activations_table)["Items"]
    assert items == []


def test_erasing_twice_is_done_once_and_an_unknown_customer_is_an_error(harness, tools):
    _armed_cart(harness)
    _erase(harness, tools)
    again = tools.erase("c-1")
    assert again.outcome == "already_erased" and again.erased_at == at("10:10")
    assert harness.stream.read() == []  # nothing more was sent
    with pytest.raises(UnknownCustomer, match="holds nothing about customer 'nobody'"):
        tools.erase("nobody")
    with pytest.raises(UnknownCustomer, match="was erased at"):
        tools.export("c-1")


def _sent(session, harness: Harness, customer: str) -> None:  # type: ignore[no-untyped-def]
    """A firing the delivery function claimed and sent, as its activation log records it."""
    log = DynamoDBActivationLog(session.client("dynamodb"), harness.resources.config.activations_table)
    firing = FiringMessage(
        firing_id="f" * 32,
        rule="cart_abandonment",
        customer_id=customer,
        key=None,
        channel="email",
        template="cart_reminder",
        armed_at=iso(at("10:05")),
        fired_at=iso(at("10:07")),
        send_at=iso(at("10:07")),
        events=[],
        profile={},
    )
    log.claim(firing, at("10:07"), "test")
    log.record(firing, status=ActivationStatus.SENT, now_ms=at("10:07"), attempt=1, provider_message_id="ses-1")


def test_an_export_holds_every_kind_of_data(harness, tools, session):
    harness.stream.put(
        *cart("c-1"),
        event("consent_updated", "09:30", "c-1", channel="sms", granted=True, source="checkout"),
    )
    harness.clock.set(at("10:06"))
    harness.evaluate()
    _sent(session, harness, "c-1")
    harness.stream.put(event("message_opened", "10:09", "c-1", channel="email", firing_id="f" * 32))
    harness.evaluate()
    document = tools.export("c-1")
    assert document["profile"]["traits"]["email"]["value"] == "c-1@example.com"
    assert document["profile"]["consent"]["sms"] == [{"at": iso(at("09:30")), "granted": True, "source": "checkout"}]
    assert {e["event"] for e in document["events"]} >= {"add_to_cart", "checkout_viewed"}
    assert [w["rule"] for w in document["pending_waits"]] == ["cart_abandonment"]
    assert any(d["kind"] == "armed" and d["rule"] == "cart_abandonment" for d in document["decisions"])
    [activation] = document["activations"]
    assert activation["status"] == "opened" and activation["provider_message_id"] == "ses-1"
    assert {entry["sk"].split("#")[0] for entry in activation["history"]} == {"attempt", "feedback"}


def test_explain_says_why_for_a_fired_a_cancelled_a_suppressed_and_a_never_armed_rule(harness, tools):
    harness.stream.put(
        *cart("c-1"),  # armed; then a purchase cancels it
        event("purchase", "10:30", "c-1", order_id="o-1"),
        *cart("c-2"),  # fires: no purchase
        identify("c-3", "09:00", email="c-3@example.com"),
        event("consent_updated", "09:10", "c-3", channel="email", granted=False, source="preferences"),
        *cart("c-3")[1:],  # fires, but email consent was withdrawn
    )
    harness.clock.set(at("10:31"))
    harness.evaluate()
    harness.clock.set(at("12:00"))
    harness.fire_due_timers()
    harness.evaluate()

    def decisions(customer: str) -> list[tuple[str, str]]:
        [rule] = tools.explain(customer, "cart_abandonment").rules
        return [(d["kind"], d["reason"]) for d in rule.decisions]

    assert decisions("c-1") == [("armed", ""), ("cancelled", f"by purchase at {iso(at('10:30'))}")]
    assert [kind for kind, _ in decisions("c-2")] == ["armed", "fired"]
    assert ("suppressed_consent", f"email consent withdrawn at {iso(at('09:10'))} (preferences)") in decisions("c-3")
    [never] = tools.explain("c-2", "yoga_mat_then_blocks").rules
    assert never.decisions == [] and never.when and not never.when[0].arms
    assert "✗" in "\n".join(never.when[0].tree.lines())


def test_every_call_is_audited_with_the_caller_and_an_erasure_with_the_hash_only(harness, tools):
    _armed_cart(harness)
    harness.clock.set(at("10:07"))
    tools.explain("c-1")
    harness.clock.set(at("10:08"))
    tools.export("c-1")
    _erase(harness, tools)
    harness.clock.set(at("10:11"))
    with pytest.raises(UnknownCustomer):
        tools.export("nobody")
    records = tools.audit_since(at("09:00"))
    assert [(r.action, r.outcome) for r in records] == [
        ("explain", "ok"),
        ("export", "ok"),
        ("erase", "requested"),
        ("export", "unknown_customer"),
    ]
    assert {r.principal for r in records} == {"arn:aws:sts::123456789012:user/moto"}
    assert records[2].customer == customer_hash("c-1")
    assert "c-1" not in (records[2].detail or "")
