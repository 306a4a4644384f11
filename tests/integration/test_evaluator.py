"""The evaluator against moto: records from real put_records calls, state, schedules, queues."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from nudge.adapters.dynamodb_state import decode_state
from nudge.adapters.scheduler import schedule_name
from nudge.clock import VirtualClock
from nudge.evaluator.records import InputRecord
from nudge.timefmt import iso, parse_iso
from tests.support import at

from .conftest import CallCounter, Harness


def event(
    event_name: str, when: str, customer: str = "c-1", /, event_id: str | None = None, **properties: object
) -> dict:
    body: dict = {
        "event_id": event_id or f"{customer}-{event_name}-{when}",
        "customer_id": customer,
        "event": event_name,
        "timestamp": iso(at(when)),
        "properties": properties,
    }
    return body


def identify(customer: str, when: str, **traits: object) -> dict:
    return {
        "event_id": f"{customer}-identify-{when}",
        "customer_id": customer,
        "event": "identify",
        "timestamp": iso(at(when)),
        "traits": traits,
    }


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(at("10:00"))


@pytest.fixture
def harness(session, resources, clock) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(session, resources, clock)


def cart(customer: str = "c-1") -> list[dict]:
    return [
        identify(customer, "09:00", email=f"{customer}@example.com", first_name="Ana"),
        event("add_to_cart", "10:00", customer, sku="SKU-1", name="Yoga mat", price=29.9),
        event("add_to_cart", "10:01", customer, sku="SKU-2", name="Blocks", price=9.5),
        event("checkout_viewed", "10:05", customer),
    ]


def test_cart_abandonment_schedules_a_timer_and_fires_when_it_comes_back(harness: Harness, clock: VirtualClock):
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    report = harness.evaluate()
    assert report.failed_sequence_number is None
    assert (report.timers_set, report.firings, report.writes) == (1, 0, 1)

    schedule = harness.session.client("scheduler").get_schedule(
        Name=schedule_name("c-1", "cart_abandonment", None, at("10:05")),
        GroupName=harness.resources.config.schedule_group,
    )
    # Due at 11:05, decided once the allowed lateness (2 min) has passed: stragglers still count.
    assert schedule["ScheduleExpression"] == "at(2026-11-22T11:07:00)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    target = schedule["Target"]
    assert target["Arn"] == harness.resources.config.events_stream_arn
    assert target["KinesisParameters"] == {"PartitionKey": "c-1"}
    assert target["DeadLetterConfig"]["Arn"] == harness.resources.config.timers_dlq_arn
    assert json.loads(target["Input"])["type"] == "nudge.timer"

    item = harness.item("c-1")
    assert item is not None
    assert item["version"] == {"N": "1"}
    assert int(item["expires_at"]["N"]) >= at("11:07") // 1000

    clock.set(at("11:07"))
    assert harness.fire_due_timers() == 1
    report = harness.evaluate()
    assert report.firings == 1
    [firing] = harness.firings()
    assert firing["rule"] == "cart_abandonment"
    assert firing["fired_at"] == "2026-11-22T11:05:00Z"
    assert firing["profile"]["email"] == "c-1@example.com"
    assert [e["properties"].get("name") for e in firing["events"]] == ["Yoga mat", "Blocks", None]


def test_purchase_during_the_wait_deletes_the_schedule_and_nothing_fires(harness: Harness, clock: VirtualClock):
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    harness.stream.put(event("purchase", "10:30", sku="SKU-1"))
    clock.set(at("10:30"))
    report = harness.evaluate()
    assert report.timers_cancelled == 1
    assert harness.schedules.pending() == []
    clock.set(at("12:00"))
    assert harness.fire_due_timers() == 0
    assert harness.firings() == []


def test_timer_for_a_cancelled_wait_is_a_no_op(harness: Harness, clock: VirtualClock):
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    [pending] = harness.schedules.pending()
    harness.stream.put(event("purchase", "10:30", sku="SKU-1"))
    clock.set(at("10:30"))
    harness.evaluate()
    # The timer fires anyway (a delete that raced its delivery): it must change nothing.
    harness.stream.put(("c-1", pending.payload.encode()))
    clock.set(at("11:05"))
    report = harness.evaluate()
    assert report.failed_sequence_number is None
    assert report.firings == 0
    assert harness.firings() == []


def test_out_of_order_and_duplicate_records_fire_once(harness: Harness, clock: VirtualClock):
    first, add_1, add_2, checkout = cart()
    harness.stream.put(checkout, add_2, first, checkout, add_1, add_1)
    clock.set(at("10:05"))
    harness.evaluate()
    harness.stream.put(checkout, add_1)  # re-delivered in a later batch
    harness.evaluate()
    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    firings = harness.firings()
    assert [f["fired_at"] for f in firings] == ["2026-11-22T11:05:00Z"]
    assert len(firings[0]["events"]) == 3


def test_retried_batch_produces_no_second_firing(harness: Harness, clock: VirtualClock):
    harness.stream.put(
        event("product_viewed", "10:00", sku="SKU-YOGA-MAT"), event("product_viewed", "10:10", sku="SKU-YOGA-BLOCKS")
    )
    records = harness.stream.read()
    clock.set(at("10:10"))
    # The yoga email is capped (rules/policy.yaml): held the allowed lateness, until 10:12.
    assert harness.evaluate(records).timers_set == 1
    assert harness.evaluate(records).timers_set == 0  # Lambda retried the same batch
    assert harness.firings() == []
    clock.set(at("10:12"))
    assert harness.fire_due_timers() == 1
    hold = harness.stream.read()
    assert harness.evaluate(hold).firings == 1
    assert harness.evaluate(hold).firings == 0  # and retried the hold timer's batch
    [firing] = harness.firings()
    assert (firing["fired_at"], firing["send_at"]) == ("2026-11-22T10:10:00Z", "2026-11-22T10:12:00Z")


def test_poison_records_in_the_middle_of_a_batch_are_parked_with_their_reason(harness: Harness, clock: VirtualClock):
    good_before = event("product_viewed", "10:00", sku="SKU-YOGA-MAT")
    good_after = event("product_viewed", "10:10", sku="SKU-YOGA-BLOCKS")
    no_offset = dict(event("add_to_cart", "10:02"), timestamp="2026-11-22T10:02:00")
    harness.stream.put(
        good_before,
        ("c-1", b"this is not json"),
        {"customer_id": "c-1", "event_id": "x"},
        no_offset,
        ("c-1", json.dumps({**good_before, "event_id": "big", "properties": {"blob": "x" * 70_000}}).encode()),
        good_after,
    )
    clock.set(at("10:10"))
    report = harness.evaluate()
    assert report.failed_sequence_number is None
    assert report.rejected == 4
    reasons = [r["reason"] for r in harness.rejected()]
    assert reasons[0].startswith("not JSON")
    assert "event: Field required" in reasons[1]
    assert "timestamp" in reasons[2]
    assert "limit is" in reasons[3]
    clock.set(at("10:12"))  # the capped firing's send time
    harness.fire_due_timers()
    harness.evaluate()
    assert [f["rule"] for f in harness.firings()] == ["yoga_mat_then_blocks"]


def test_an_800_kib_record_and_one_nested_990_deep_are_parked_with_their_reasons(harness: Harness, clock: VirtualClock):
    """Neither may fail the batch: the big one is parked as an excerpt with its size and hash (whole it
    would not fit an SQS message), the deep one with the nesting limit as its reason."""
    huge = json.dumps({**event("purchase", "10:00"), "properties": {"blob": "x" * 800 * 1024}}).encode()
    deep = json.dumps(event("purchase", "10:01")).replace(
        '"properties": {}', '"properties": {"a": ' + "[" * 990 + "]" * 990 + "}"
    )
    harness.stream.put(("c-1", huge), ("c-1", deep.encode()), event("product_viewed", "10:02", sku="SKU-YOGA-MAT"))
    clock.set(at("10:02"))
    report = harness.evaluate()
    assert report.failed_sequence_number is None
    assert report.rejected == 2
    big, nested = harness.rejected()
    assert big["reason"].endswith(f"the limit is {64 * 1024}")
    assert (big["bytes"], big["sha256"]) == (len(huge), hashlib.sha256(huge).hexdigest())
    assert "data_base64" not in big and base64.b64decode(big["excerpt_base64"]) == huge[:4096]
    assert nested["reason"] == "JSON nested more than 32 deep"
    assert "data_base64" in nested


def test_an_event_stamped_years_after_its_arrival_is_parked_and_moves_no_clock(harness: Harness, clock: VirtualClock):
    """The record arrived today (moto stamps the real arrival time); its timestamp says 2036."""
    from_2036 = {**event("add_to_cart", "10:00", sku="SKU-9"), "event_id": "phone", "timestamp": "2036-01-01T10:00:00Z"}
    harness.stream.put(from_2036, *cart())
    clock.set(at("10:05"))
    report = harness.evaluate()
    assert (report.rejected, report.failed_sequence_number) == (1, None)
    [parked] = harness.rejected()
    assert parked["reason"].startswith("from the future: timestamp 2036-01-01T10:00:00Z is ")
    assert parked["reason"].endswith("max_future_skew is 1h (policy.yaml)")
    item = harness.item("c-1")
    assert item is not None and decode_state(item["state"]["B"]).now == at("10:05")
    clock.set(at("11:07"))
    assert harness.fire_due_timers() == 1
    harness.evaluate()
    assert [(f["rule"], f["fired_at"]) for f in harness.firings()] == [("cart_abandonment", "2026-11-22T11:05:00Z")]


def test_a_record_without_an_arrival_time_is_judged_against_the_batch_clock(harness: Harness, clock: VirtualClock):
    def record(number: int, when: str) -> InputRecord:
        body = json.dumps(event("add_to_cart", when, event_id=f"e-{number}", sku="SKU-1")).encode()
        return InputRecord(sequence_number=str(number), partition_key="c-1", data=body)

    report = harness.evaluate([record(1, "11:00"), record(2, "11:00:01")])  # the clock is 10:00
    assert report.rejected == 1
    assert "11:00:01Z is 1h 0m ahead of the clock (2026-11-22T10:00:00Z)" in harness.rejected()[0]["reason"]


def test_record_whose_partition_key_is_not_its_customer_is_rejected(harness: Harness):
    harness.stream.put(("someone-else", json.dumps(event("purchase", "10:00")).encode()))
    report = harness.evaluate()
    assert report.rejected == 1
    assert harness.rejected()[0]["reason"] == "partition key differs from customer_id"


def test_concurrent_write_is_detected_and_the_customer_is_evaluated_again(harness: Harness, clock: VirtualClock):
    harness.stream.put(cart()[0])
    clock.set(at("10:00"))
    harness.evaluate()
    # Another writer (an overlapping retry) stores a newer state between our read and our write.
    store = harness.evaluator.store
    original_load = store.load_many

    def load_then_race(customer_ids):  # type: ignore[no-untyped-def]
        loaded = original_load(customer_ids)
        store.load_many = original_load  # type: ignore[method-assign]
        other = original_load(["c-1"])["c-1"]
        store.save(other, 2_000_000_000)
        return loaded

    store.load_many = load_then_race  # type: ignore[method-assign]
    harness.stream.put(*cart()[1:])
    clock.set(at("10:05"))
    report = harness.evaluate()
    assert report.conflicts == 1
    assert report.failed_sequence_number is None
    item = harness.item("c-1")
    assert item is not None and item["version"] == {"N": "3"}  # ours, then theirs, then ours again
    assert ("cart_abandonment", None) in decode_state(item["state"]["B"]).rules


def test_scheduler_failure_for_one_customer_resumes_from_its_earliest_record(harness: Harness, clock: VirtualClock):
    failing = schedule_name("c-2", "cart_abandonment", None, at("10:05"))

    def refuse(params, **_):  # type: ignore[no-untyped-def]
        if params.get("Name") == failing:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "CreateSchedule")

    scheduler_client = harness.evaluator.scheduler.client  # type: ignore[attr-defined]
    scheduler_client.meta.events.register("before-parameter-build.scheduler.CreateSchedule", refuse)
    harness.stream.put(*cart("c-1"), *cart("c-2"), *cart("c-3"))
    records = harness.stream.read()
    clock.set(at("10:05"))
    report = harness.evaluate(records)
    c2_first = next(r for r in records if r.partition_key == "c-2")
    assert report.failed_sequence_number == c2_first.sequence_number
    assert harness.item("c-2") is None  # nothing written for the failed customer

    scheduler_client.meta.events.unregister("before-parameter-build.scheduler.CreateSchedule", refuse)
    index = records.index(c2_first)
    report = harness.evaluate(records[index:])  # Lambda redelivers from the failed record on
    assert report.failed_sequence_number is None
    assert len(harness.schedules.pending()) == 3
    clock.set(at("11:07"))
    harness.fire_due_timers()
    harness.evaluate()
    assert sorted(f["customer_id"] for f in harness.firings()) == ["c-1", "c-2", "c-3"]


def test_rules_changed_since_the_state_was_written(harness: Harness, clock: VirtualClock, tmp_path: Path):
    harness.stream.put(*cart())
    clock.set(at("10:05"))
    harness.evaluate()
    [pending] = harness.schedules.pending()
    new_rules = tmp_path / "rules"
    new_rules.mkdir()
    shutil.copy("rules/product_x_then_y.yaml", new_rules)
    harness.rebuild(str(new_rules))  # a deployment removed cart_abandonment
    harness.stream.put(("c-1", pending.payload.encode()), event("product_viewed", "10:20", sku="SKU-YOGA-MAT"))
    clock.set(at("11:05"))
    report = harness.evaluate()
    assert report.failed_sequence_number is None
    assert report.firings == 0
    item = harness.item("c-1")
    assert item is not None
    state = decode_state(item["state"]["B"])
    assert set(state.events.names()) == {"product_viewed"}
    assert not any(rule == "cart_abandonment" for rule, _ in state.rules)


def test_batch_io_is_bounded(session, resources, clock):  # type: ignore[no-untyped-def]
    counter = CallCounter(session)
    harness = Harness(session, resources, clock)
    events = []
    for n in range(250):
        customer = f"c-{n}"
        events.append(event("page_viewed", "10:00", customer, section="blog"))  # referenced by no filter
        events.append(event("product_viewed", "10:01", customer, sku="SKU-YOGA-MAT"))
    events.append(event("remove_from_cart", "10:02", "c-0"))  # no rule references it
    for start in range(0, len(events), 500):
        harness.stream.put(*events[start : start + 500])
    records = harness.stream.read()
    counter.reset()
    clock.set(at("10:02"))
    report = harness.evaluate(records)
    assert report.skipped == 251
    # ceil(250 / 100) state reads; every one of them is new, so ceil(500 / 100) reads of its profile
    # and its erasure tombstone, two keys per customer in the same calls.
    assert counter.calls[("dynamodb", "BatchGetItem")] <= 3 + 5
    assert counter.calls[("dynamodb", "PutItem")] == report.writes == 250  # no profile: nothing to keep
    assert counter.calls[("scheduler", "CreateSchedule")] == 0
    assert counter.calls[("sqs", "SendMessageBatch")] == 0

    harness.stream.put(*[event("product_viewed", "10:03", f"c-{n}", sku="SKU-YOGA-MAT") for n in range(250)])
    records = harness.stream.read()
    counter.reset()
    report = harness.evaluate(records)
    assert counter.calls[("dynamodb", "BatchGetItem")] <= 3  # customers with state: one read per 100
    assert counter.calls[("dynamodb", "PutItem")] == report.writes == 250

    harness.stream.put(*[event("page_viewed", "10:05", f"c-{n}", section="blog") for n in range(50)])
    records = harness.stream.read()
    counter.reset()
    report = harness.evaluate(records)
    assert report.skipped == 50
    assert sum(counter.calls.values()) == 0  # events no rule references cost no I/O at all


def test_events_later_than_the_allowed_lateness_are_counted_for_the_late_events_metric(harness: Harness, clock):
    """By the wall clock: a checkout view stamped 10 minutes before the batch is read is late; 1 minute is not."""
    clock.set(at("10:30"))
    harness.stream.put(event("add_to_cart", "10:00", sku="SKU-1"), event("checkout_viewed", "10:20"))
    harness.stream.put(event("checkout_viewed", "10:29", event_id="in-time"))
    report = harness.evaluate()
    assert report.counts()["LateEvents"] == 2  # the add (30 min) and the first view (10 min)
    assert report.late == 2


# -- the durable profile ----------------------------------------------------------------------------


def _profile_item(harness: Harness, customer: str) -> dict | None:
    table = harness.resources.config.profile_table
    return harness.dynamodb.get_item(TableName=table, Key={"pk": {"S": customer}}, ConsistentRead=True).get("Item")


def test_the_profile_item_is_written_when_it_changes_and_when_its_expiry_falls_a_month_behind(
    harness: Harness, clock: VirtualClock
):
    day = 86_400_000
    start = at("10:00") - 40 * day  # records arrive now (moto's clock): every event must be in the past
    clock.set(start)
    harness.stream.put({**identify("c-1", "09:00", email="c-1@example.com"), "timestamp": iso(start)})
    harness.evaluate()
    first = _profile_item(harness, "c-1")
    assert first is not None
    expires = int(first["expires_at"]["N"])
    assert expires == (start + 730 * day) // 1000  # two years after the last event
    state = harness.item("c-1")
    assert state is not None and int(state["profile_expires_at"]["N"]) == expires

    def behaviour(when: int) -> int:
        clock.set(when)
        viewed = {**event("product_viewed", "10:00", sku="SKU-1"), "event_id": f"v{when}", "timestamp": iso(when)}
        harness.stream.put(viewed)
        assert harness.evaluate().writes == 1
        return int(_profile_item(harness, "c-1")["expires_at"]["N"])  # type: ignore[index]

    assert behaviour(start + 10 * day) == expires  # ten days on: unchanged, and nearly fresh
    assert behaviour(start + 31 * day) == (start + 761 * day) // 1000  # a month on: its expiry moves


def test_a_customer_whose_behaviour_expired_keeps_address_and_consent(harness: Harness, clock: VirtualClock):
    """DynamoDB's TTL removed the state items; the profile table still has both customers."""
    before = -60 * 86_400_000
    clock.set(at("09:30") + before)
    harness.stream.put(
        *[
            {**e, "timestamp": iso(parse_iso(e["timestamp"]) + before)}
            for e in (
                identify("c-1", "09:00", email="c-1@example.com"),
                identify("c-2", "09:00", email="c-2@example.com"),
                {**event("unsubscribed", "09:30", "c-2"), "properties": {"channel": "email"}},
            )
        ]
    )
    harness.evaluate()
    for customer in ("c-1", "c-2"):
        harness.dynamodb.delete_item(TableName=harness.resources.config.state_table, Key={"pk": {"S": customer}})
    harness.stream.put(*cart()[1:], *cart("c-2")[1:])
    clock.set(at("10:05"))
    harness.evaluate()
    clock.set(at("11:07"))
    assert harness.fire_due_timers() == 2
    harness.evaluate()
    assert [(f["customer_id"], f["profile"]["email"]) for f in harness.firings()] == [("c-1", "c-1@example.com")]
