"""The evaluator on moto when a write never lands or a record lies: the previous state keeps its
safety net, and only the evaluator's own timers decide a wait."""

from __future__ import annotations

import json
import random
import string
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from nudge.adapters.dynamodb_state import STATE_BUDGET_BYTES, decode_state
from nudge.adapters.scheduler import schedule_name
from nudge.clock import VirtualClock
from nudge.contracts import Timer, TimerKey, encode_timer
from nudge.evaluator.batch import SAVE_BUDGET_MS
from nudge.timefmt import iso
from tests.support import at

from .conftest import Harness
from .test_evaluator import cart, event


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(at("10:00"))


@pytest.fixture
def harness(session, resources, clock) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(session, resources, clock)


def pending_names(harness: Harness) -> set[str]:
    return {s.name for s in harness.schedules.pending()}


def refuse_state_writes(harness: Harness) -> Any:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "-"}}, "PutItem")

    client = harness.evaluator.store.client  # type: ignore[attr-defined]
    client.meta.events.register("before-call.dynamodb.PutItem", refuse)
    return lambda: client.meta.events.unregister("before-call.dynamodb.PutItem", refuse)


def test_a_rearm_whose_write_never_lands_leaves_the_written_wait_and_its_schedule(harness: Harness, clock):  # type: ignore[no-untyped-def]
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    first = schedule_name("c-1", "cart_abandonment", None, at("10:05"))
    assert pending_names(harness) == {first}

    allow = refuse_state_writes(harness)
    harness.stream.put(event("checkout_viewed", "10:50"))
    clock.set(at("10:50"))
    report = harness.evaluate()
    assert report.failed_sequence_number is not None  # redelivered until max_record_age, then parked
    second = schedule_name("c-1", "cart_abandonment", None, at("10:50"))
    assert pending_names(harness) == {first, second}  # the old one is removed only after a write
    allow()

    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    assert [f["armed_at"] for f in harness.firings()] == ["2026-11-22T10:05:00Z"]  # the written wait fired
    clock.set(at("11:52"))
    harness.fire_due_timers()
    harness.evaluate()
    assert harness.firings() == []  # the leftover came as a no-op


def test_a_rearm_that_is_written_removes_the_old_schedule_after_the_write(harness: Harness, clock):  # type: ignore[no-untyped-def]
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    harness.stream.put(event("checkout_viewed", "10:50"))
    clock.set(at("10:50"))
    assert harness.evaluate().failed_sequence_number is None
    assert pending_names(harness) == {schedule_name("c-1", "cart_abandonment", None, at("10:50"))}


def test_a_forged_timer_is_rejected_with_its_reason_and_decides_nothing(harness: Harness, clock):  # type: ignore[no-untyped-def]
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    wait = Timer("c-1", "cart_abandonment", None, at("10:05"), at("11:05"))
    unsigned = {"type": "nudge.timer", "v": 1, "customer_id": "c-1", "rule": "cart_abandonment", "key": None}
    unsigned |= {"arm": wait.arm, "due": wait.due}
    signed_elsewhere = json.loads(encode_timer(wait, TimerKey(b"a-key-the-producer-made-up")))
    harness.stream.put(("c-1", json.dumps(unsigned).encode()), ("c-1", json.dumps(signed_elsewhere).encode()))
    clock.set(at("10:10"))
    report = harness.evaluate()
    assert report.rejected == 2
    assert sorted(r["reason"] for r in harness.rejected()) == ["timer is not signed", "timer signature does not match"]
    assert harness.firings() == []  # not sent at 10:10
    harness.stream.put(event("purchase", "10:30", order_id="o-1"))
    clock.set(at("10:30"))
    harness.evaluate()
    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    assert harness.firings() == []  # the 10:30 purchase cancelled it, as it should


def test_a_customer_whose_state_outgrows_an_item_is_trimmed_and_stays_writable(harness: Harness, clock):  # type: ignore[no-untyped-def]
    """Twelve 60 KiB traits, each identify under the 64 KiB event limit: 720 KiB of profile."""
    noise = random.Random(7)
    big = [
        {
            "event_id": f"big-{n}",
            "customer_id": "c-1",
            "event": "identify",
            "timestamp": iso(at("09:00") + n * 1000),
            "traits": {f"notes_{n}": "".join(noise.choices(string.ascii_letters, k=60 * 1024))},
        }
        for n in range(12)
    ]
    harness.stream.put(*cart()[:1], *big)
    clock.set(at("09:30"))
    report = harness.evaluate()
    assert (report.failed_sequence_number, report.trimmed) == (None, 1)
    item = harness.item("c-1")
    assert item is not None and len(item["state"]["B"]) <= STATE_BUDGET_BYTES
    profile = decode_state(item["state"]["B"]).traits()
    assert profile["email"] == "c-1@example.com"  # addresses are never trimmed
    harness.stream.put(*cart()[1:])
    clock.set(at("10:05"))
    assert harness.evaluate().failed_sequence_number is None  # still writable, batch after batch
    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    [firing] = harness.firings()
    assert firing["profile"]["email"] == "c-1@example.com"


def test_customers_left_without_time_to_write_are_failed_and_redelivered_whole(harness: Harness, clock):  # type: ignore[no-untyped-def]
    harness.stream.put(*cart("c-1"), *cart("c-2"))
    records = harness.stream.read()
    clock.set(at("10:05"))
    left = iter([60_000, SAVE_BUDGET_MS - 1])  # time for the first customer's write, not the second's
    report = harness.evaluator.evaluate(records, clock.now_ms(), time_left_ms=lambda: next(left))
    second = next(r for r in records if r.partition_key == "c-2")
    assert (report.writes, report.failed_sequence_number) == (1, second.sequence_number)
    report = harness.evaluate(records[records.index(second) :])  # Lambda resumes there
    assert (report.writes, report.failed_sequence_number) == (1, None)
    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    assert sorted(f["customer_id"] for f in harness.firings()) == ["c-1", "c-2"]


def test_records_that_waited_behind_an_outage_are_judged_as_on_time(harness: Harness, clock):  # type: ignore[no-untyped-def]
    """The purchase reached the stream at 10:30, inside the wait; the evaluator could only read it at
    12:30, after the wait's decision time. Judged at its arrival, it calls the wait off."""
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    harness.stream.put(event("purchase", "10:30", order_id="o-1"))
    [purchase] = [replace(r, arrival_ms=at("10:30")) for r in harness.stream.read()]
    clock.set(at("12:30"))
    outage_over = harness.evaluator.evaluate([purchase], clock.now_ms(), by_arrival=True)
    assert outage_over.failed_sequence_number is None
    harness.fire_due_timers()  # the 11:07 timer, late too
    harness.evaluate()
    assert harness.firings() == []


def test_without_arrival_times_the_same_records_are_judged_late(harness: Harness, clock):  # type: ignore[no-untyped-def]
    """What the handler did before it passed ``by_arrival``: the wait was decided before the purchase was read."""
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    harness.stream.put(event("purchase", "10:30", order_id="o-1"))
    clock.set(at("12:30"))
    harness.evaluate()
    assert [f["rule"] for f in harness.firings()] == ["cart_abandonment"]


def test_a_customer_whose_state_stays_unread_fails_alone(harness: Harness, clock):  # type: ignore[no-untyped-def]
    store = harness.evaluator.store
    real = store.client.batch_get_item  # type: ignore[attr-defined]

    def throttled_for_c2(RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, request)] = RequestItems.items()
        wanted = [k for k in request["Keys"] if k["pk"]["S"] != "c-2"]
        response = real(RequestItems={table: {**request, "Keys": wanted}}) if wanted else {"Responses": {}}
        left = [k for k in request["Keys"] if k["pk"]["S"] == "c-2"]
        return {**response, "UnprocessedKeys": {table: {**request, "Keys": left}} if left else {}}

    store.client.batch_get_item = throttled_for_c2  # type: ignore[attr-defined]
    store.sleep = lambda _: None  # type: ignore[attr-defined]
    harness.stream.put(*cart("c-1"), *cart("c-2"), *cart("c-3"))
    records = harness.stream.read()
    clock.set(at("10:05"))
    report = harness.evaluate(records)
    assert report.writes == 2  # c-1 and c-3 go on
    assert report.failed_sequence_number == next(r for r in records if r.partition_key == "c-2").sequence_number
    assert harness.item("c-2") is None
