"""The producer SDK against moto: real PutRecords calls, read back from the stream and decoded."""

from __future__ import annotations

import gc
import json
import math
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.server import ThreadedMotoServer

from nudge import sdk
from nudge.contracts import MAX_EVENT_BYTES, Event, EventError, parse_event
from nudge.sdk import (
    MAX_BATCH_BYTES,
    BufferFullError,
    DeliveryError,
    EventIdGenerator,
    InvalidEventError,
    Tracker,
    TrackerError,
    new_event_id,
)

from .conftest import REGION, Stream

STREAM = "nudge-events"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
THROTTLED = "ProvisionedThroughputExceededException"


class PutRecordsLog:
    """What the SDK asked PutRecords to send, call by call, seen through the client's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self.requests: list[list[dict[str, Any]]] = []
        client.meta.events.register("before-parameter-build.kinesis.PutRecords", self._snapshot)
        client.meta.events.register("before-call.kinesis.PutRecords", self._count)

    def _snapshot(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(list(params["Records"]))

    def _count(self, **_: Any) -> None:
        self.calls += 1

    def sizes(self) -> list[int]:
        """Bytes per call as Kinesis counts them (data plus partition key)."""
        return [sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in call) for call in self.requests]


class Throttle:
    """Makes Kinesis fail the chosen records of a PutRecords call, as it does per shard under load.

    Kinesis cannot be told to fail a record, so the client's event hooks play that part around
    moto: ``before-parameter-build`` takes the failing records out of the request (so, as in AWS,
    they are not stored) and ``after-call`` puts an ``ErrorCode`` entry back at each one's position
    and sets ``FailedRecordCount``. When every record of a call fails, ``before-call`` answers
    without a request, since an empty PutRecords is invalid.
    """

    def __init__(self, client: Any, fails: Callable[[Event], bool], times: int | None = None) -> None:
        self.fails = fails
        self.times = times  # failures per record before it goes through; None: always
        self.failures: Counter[bytes] = Counter()
        client.meta.events.register("before-parameter-build.kinesis.PutRecords", self._drop)
        client.meta.events.register("before-call.kinesis.PutRecords", self._answer_if_all_failed)
        client.meta.events.register("after-call.kinesis.PutRecords", self._report)

    def _should_fail(self, data: bytes) -> bool:
        if not self.fails(parse_event(data)) or (self.times is not None and self.failures[data] >= self.times):
            return False
        self.failures[data] += 1
        return True

    def _drop(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        records = params["Records"]
        failing = {i for i, record in enumerate(records) if self._should_fail(record["Data"])}
        context["throttled"] = (len(records), failing)
        if len(failing) < len(records):
            params["Records"] = [record for i, record in enumerate(records) if i not in failing]

    def _answer_if_all_failed(self, context: dict[str, Any], **_: Any) -> Any:
        total, failing = context["throttled"]
        if len(failing) == total:
            return AWSResponse("https://kinesis.invalid", 200, {}, None), {"FailedRecordCount": 0, "Records": []}
        return None

    def _report(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        total, failing = context.pop("throttled")
        delivered = iter(parsed["Records"])
        parsed["Records"] = [
            {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"} if i in failing else next(delivered)
            for i in range(total)
        ]
        parsed["FailedRecordCount"] = len(failing)


@pytest.fixture
def client(session: boto3.session.Session) -> Any:
    client = session.client("kinesis")
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


@pytest.fixture
def log(client: Any) -> PutRecordsLog:
    """Registered before any ``Throttle``, so it sees each call as the SDK made it."""
    return PutRecordsLog(client)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def tracker_for(client: Any, sleeps: list[float]) -> Iterator[Callable[..., Tracker]]:
    """Trackers on the moto client that back off without sleeping; none is left for the exit hook."""
    made: list[Tracker] = []

    def make(**options: Any) -> Tracker:
        tracker = Tracker(options.pop("stream_name", STREAM), client=client, sleep=sleeps.append, **options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        sdk._live.discard(tracker)  # outside mock_aws an exit-time flush would try real AWS


def decode(event_id: str) -> int:
    """The 128-bit number behind an id (Crockford base32, most significant character first)."""
    return int("".join(f"{CROCKFORD.index(char):05b}" for char in event_id), 2)


def stream_events(session: boto3.session.Session) -> list[tuple[str, Event]]:
    """Every record on the stream: (partition key, the event as the evaluator decodes it)."""
    return [(record.partition_key, parse_event(record.data)) for record in Stream(session, STREAM).read()]


def test_events_arrive_with_customer_partition_keys_and_decode(session, tracker_for, log) -> None:
    tracker = tracker_for()
    paris = timezone(timedelta(hours=1))
    ids = [
        tracker.track("c-1", "add_to_cart", {"sku": "SKU-1", "name": "Café crème ☕", "price": 29.9}),
        tracker.track("c-2", "page_viewed", {"section": "pricing"}, timestamp=datetime(2026, 11, 22, 11, tzinfo=paris)),
        tracker.track("c-1", "purchase", timestamp="2026-11-22T10:05:00.250+00:00", event_id="order-77"),
        tracker.track("c-3", "product_viewed", {"product": {"brand": "Acme", "tags": ["a", "b"]}}),
    ]
    assert log.calls == 0, "nothing is sent before a flush"

    result = tracker.flush()

    assert (result.ok, result.sent, result.calls, log.calls) == (True, 4, 1, 1)
    arrived = {event.event_id: (key, event) for key, event in stream_events(session)}
    assert sorted(arrived) == sorted(ids)
    assert all(key == event.customer_id for key, event in arrived.values())
    assert arrived[ids[0]][1].properties == {"sku": "SKU-1", "name": "Café crème ☕", "price": 29.9}
    assert arrived[ids[1]][1].ts == int(datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp() * 1000)
    assert arrived["order-77"][1].properties == {}
    assert arrived[ids[3]][1].properties["product"]["brand"] == "Acme"
    # On the wire: compact UTF-8 JSON (not \u escapes), timestamps in UTC with Z.
    first, second = log.requests[0][0]["Data"], log.requests[0][1]["Data"]
    assert "Café crème ☕".encode() in first and b", " not in first and b'": ' not in first
    assert json.loads(second)["timestamp"] == "2026-11-22T10:00:00Z"
    assert json.loads(log.requests[0][2]["Data"])["timestamp"] == "2026-11-22T10:05:00.250Z"


def test_default_timestamp_is_now_in_utc(tracker_for, log) -> None:
    tracker = tracker_for()
    before = datetime.now(UTC).replace(microsecond=0)
    tracker.track("c-1", "page_viewed")
    tracker.flush()
    sent = json.loads(log.requests[0][0]["Data"])
    assert sent["timestamp"].endswith("Z")
    assert before <= datetime.fromisoformat(sent["timestamp"]) <= datetime.now(UTC)


def test_event_ids_are_unique_and_sort_in_creation_order(tracker_for) -> None:
    tracker = tracker_for(flush_at=3000, max_buffer=3000)
    ids = [tracker.track(f"c-{n % 7}", "page_viewed") for n in range(1000)] + [new_event_id() for _ in range(1000)]
    tracker.flush()
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(event_id) == 26 and set(event_id) <= set(CROCKFORD) for event_id in ids)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert now_ms - 10_000 < decode(ids[0]) >> 80 <= decode(ids[-1]) >> 80 <= now_ms, "48-bit ms timestamp first"


def test_event_id_generator_is_monotonic_within_a_millisecond_and_across_clock_steps() -> None:
    clock = iter([5, 5, 5, 4, 6])  # two ids in one ms, then the clock steps back, then forward
    bits = iter([2**80 - 2, 7])
    generate = EventIdGenerator(clock_ms=lambda: next(clock), randbits=lambda _: next(bits))
    ids = [generate() for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    decoded = [decode(event_id) for event_id in ids]
    # 5 ms with random 2**80-2, then +1 in the same ms, then the random part overflows and borrows
    # 6 ms, the stepped-back clock (4) reuses 6 ms +1, and the real 6 ms also increments.
    assert [(value >> 80, value & (2**80 - 1)) for value in decoded] == [
        (5, 2**80 - 2),
        (5, 2**80 - 1),
        (6, 7),
        (6, 8),
        (6, 9),
    ]


def test_batches_split_at_500_records(session, tracker_for, log) -> None:
    tracker = tracker_for(flush_at=2000, max_buffer=2000)
    for n in range(1201):
        tracker.track(f"c-{n % 50}", "product_viewed", {"sku": f"SKU-{n}"})

    result = tracker.flush()

    assert log.calls == result.calls == 3
    assert [len(call) for call in log.requests] == [500, 500, 201]
    assert len(stream_events(session)) == 1201


def test_buffer_flushes_itself_at_500_records(tracker_for, log) -> None:
    tracker = tracker_for()
    for n in range(499):
        tracker.track("c-1", "page_viewed", {"n": n})
    assert (log.calls, tracker.pending) == (0, 499)
    tracker.track("c-1", "page_viewed", {"n": 499})
    assert (log.calls, tracker.pending) == (1, 0)
    assert [len(call) for call in log.requests] == [500]


def test_batches_split_at_5_mib(session, tracker_for, log) -> None:
    blob = "x" * 60_000  # ~60 KB events, under the envelope's 64 KiB limit: 100 of them exceed 5 MiB
    tracker = tracker_for(flush_at_bytes=64 * 1024 * 1024)
    for n in range(100):
        tracker.track(f"c-{n}", "whitepaper_downloaded", {"blob": blob})

    result = tracker.flush()

    assert (result.sent, log.calls) == (100, 2)
    assert all(size <= MAX_BATCH_BYTES for size in log.sizes())
    assert sum(log.sizes()) > MAX_BATCH_BYTES
    assert len(stream_events(session)) == 100


def test_buffer_flushes_itself_at_the_byte_threshold(tracker_for, log) -> None:
    tracker = tracker_for(flush_at_bytes=1024 * 1024)
    for n in range(20):
        tracker.track("c-1", "whitepaper_downloaded", {"blob": "x" * 60_000, "n": n})
    assert log.calls == 1
    assert 1024 * 1024 <= log.sizes()[0] < 1024 * 1024 + 61_000
    assert tracker.pending == 20 - len(log.requests[0])
    tracker.flush()


def test_partial_failure_retries_only_the_failed_records(session, client, tracker_for, log, sleeps) -> None:
    Throttle(client, fails=lambda event: event.name == "purchase", times=1)
    tracker = tracker_for()
    names = ["add_to_cart", "purchase", "page_viewed", "purchase", "checkout_viewed", "purchase", "upgraded"]
    ids = [tracker.track(f"c-{n}", name) for n, name in enumerate(names)]

    result = tracker.flush()

    assert (result.ok, result.sent, result.calls, log.calls) == (True, 7, 2, 2)
    retried = [parse_event(record["Data"]) for record in log.requests[1]]
    assert [event.event_id for event in retried] == [ids[1], ids[3], ids[5]]
    assert [record["PartitionKey"] for record in log.requests[1]] == ["c-1", "c-3", "c-5"]
    arrived = Counter(event.event_id for _, event in stream_events(session))
    assert arrived == Counter(ids), "every event exactly once: failed ones were not stored, then retried"
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


def test_records_still_failing_after_the_retries_raise_with_their_codes(session, client, tracker_for, log, sleeps):
    Throttle(client, fails=lambda event: event.name == "purchase")
    tracker = tracker_for(max_attempts=4)
    tracker.track("c-1", "add_to_cart", {"sku": "SKU-1"})
    bought = tracker.track("c-1", "purchase", {"sku": "SKU-1"})
    tracker.track("c-2", "page_viewed")

    with pytest.raises(DeliveryError) as raised:
        tracker.flush()

    error = raised.value
    assert [(item.record.event_id, item.error_code) for item in error.failed] == [(bought, THROTTLED)]
    assert error.failed[0].record.partition_key == "c-1"
    assert parse_event(error.failed[0].record.data).properties == {"sku": "SKU-1"}
    assert (error.result.sent, error.result.calls, log.calls) == (2, 4, 4)
    assert [len(call) for call in log.requests] == [3, 1, 1, 1]
    assert THROTTLED in str(error)
    # Exponential backoff with full jitter: each wait is drawn below a doubling cap.
    assert len(sleeps) == 3 and all(0 <= wait <= cap for wait, cap in zip(sleeps, [0.1, 0.2, 0.4], strict=True))
    assert tracker.pending == 0, "the failed record was handed to the caller, not kept"
    assert sorted(event.name for _, event in stream_events(session)) == ["add_to_cart", "page_viewed"]


def test_with_raise_on_failure_false_flush_returns_the_failures(client, tracker_for) -> None:
    Throttle(client, fails=lambda event: event.customer_id == "c-2")
    tracker = tracker_for(raise_on_failure=False, max_attempts=2)
    tracker.track("c-1", "page_viewed")
    lost = tracker.track("c-2", "page_viewed")

    result = tracker.flush()

    assert not result.ok
    assert (result.sent, result.calls) == (1, 2)
    assert [(item.record.event_id, item.error_code) for item in result.failed] == [(lost, THROTTLED)]
    tracker.requeue(result.failed)  # the caller may hand failures back for another try
    assert tracker.pending == 1
    with pytest.raises(DeliveryError):
        tracker.flush(raise_on_failure=True)


def test_failed_auto_flush_keeps_the_records_and_max_buffer_pushes_back(client, tracker_for) -> None:
    """Without raise_on_failure nobody receives an auto-flush's failures, so they stay buffered."""
    Throttle(client, fails=lambda event: event.name == "purchase")
    tracker = tracker_for(raise_on_failure=False, max_attempts=2, flush_at=3, max_buffer=3)
    ids = [tracker.track("c-1", "purchase", {"n": n}) for n in range(3)]
    assert tracker.pending == 3

    with pytest.raises(BufferFullError):
        tracker.track("c-1", "page_viewed")

    result = tracker.flush()
    assert [item.record.event_id for item in result.failed] == ids
    assert tracker.pending == 0


def test_failed_auto_flush_raises_from_track_by_default(client, tracker_for) -> None:
    Throttle(client, fails=lambda event: event.name == "purchase")
    tracker = tracker_for(max_attempts=2, flush_at=2)
    tracker.track("c-1", "page_viewed")
    with pytest.raises(DeliveryError) as raised:
        tracker.track("c-1", "purchase")
    assert [parse_event(item.record.data).name for item in raised.value.failed] == ["purchase"]
    assert tracker.pending == 0


def test_a_call_that_fails_outright_reports_every_record(tracker_for, log) -> None:
    tracker = tracker_for(stream_name="no-such-stream")
    ids = [tracker.track("c-1", "page_viewed"), tracker.track("c-2", "page_viewed")]
    with pytest.raises(DeliveryError) as raised:
        tracker.flush()
    assert [(item.record.event_id, item.error_code) for item in raised.value.failed] == [
        (ids[0], "ResourceNotFoundException"),
        (ids[1], "ResourceNotFoundException"),
    ]
    assert log.calls == 1, "botocore already retried the call; the SDK retries only per-record failures"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.track("c-1", "page_viewed", timestamp=datetime(2026, 11, 22, 10)), "timestamp"),
        (lambda t: t.track("c-1", "page_viewed", timestamp="2026-11-22T10:00:00"), "timestamp"),
        (lambda t: t.track("c-1", "page_viewed", timestamp=1_790_000_000), "timestamp"),
        (lambda t: t.track("c-1", "page_viewed", timestamp="yesterday"), "timestamp"),
        (lambda t: t.track("c-1", "add to cart"), "event"),
        (lambda t: t.track("c-1", "identify", {"email": "a@example.com"}), "event"),
        (lambda t: t.track("", "page_viewed"), "customer_id"),
        (lambda t: t.track(42, "page_viewed"), "customer_id"),
        (lambda t: t.track("c-1", "page_viewed", event_id=""), "event_id"),
        (lambda t: t.track("c-1", "page_viewed", ["not", "an", "object"]), "properties"),
        (lambda t: t.track("c-1", "page_viewed", {"at": datetime.now(UTC)}), "properties"),
        (lambda t: t.track("c-1", "page_viewed", {"price": math.nan}), "properties"),
        (lambda t: t.track("c-1", "page_viewed", {"blob": "x" * MAX_EVENT_BYTES}), "event"),
        (lambda t: t.identify("c-1", None), "traits"),
    ],
)
def test_invalid_events_raise_naming_the_field_and_are_never_sent(call, field) -> None:
    """Validation is local, so a client that fails on any call stands in for moto here (and keeps
    these 14 cases from paying for a boto3 session each)."""

    class NoCalls:
        def put_records(self, **_: Any) -> None:
            raise AssertionError("an invalid event reached PutRecords")

    tracker = Tracker(STREAM, client=NoCalls(), flush_at=1, flush_at_exit=False)
    with pytest.raises(InvalidEventError) as raised:
        call(tracker)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert tracker.pending == 0
    assert tracker.flush().calls == 0


def test_an_unknown_envelope_key_is_refused_by_the_sdk_as_parse_event_refuses_it() -> None:
    """The SDK validates with the engine's model, so a misspelt key is named the same on both sides."""
    payload = {"propertis": {"sku": "SKU-1"}}
    with pytest.raises(InvalidEventError) as raised:
        Tracker._encode("c-1", "add_to_cart", payload, "2026-11-22T10:00:00Z", "e-1")
    assert raised.value.fields == ("propertis",)
    assert raised.value.reason == "propertis: unknown field; did you mean properties?"
    envelope = {"event_id": "e-1", "customer_id": "c-1", "event": "add_to_cart", "timestamp": "2026-11-22T10:00:00Z"}
    with pytest.raises(EventError) as parsed:
        parse_event({**envelope, **payload})
    assert parsed.value.reason == raised.value.reason


def test_context_manager_flushes_and_closes(session, client) -> None:
    with Tracker(STREAM, client=client) as tracker:
        event_id = tracker.track("c-1", "trial_started")
    assert [(key, event.event_id) for key, event in stream_events(session)] == [("c-1", event_id)]
    assert tracker not in sdk._live
    with pytest.raises(TrackerError, match="closed"):
        tracker.track("c-1", "onboarding_viewed")


def test_context_manager_raises_what_it_could_not_deliver(client) -> None:
    Throttle(client, fails=lambda event: True)
    with pytest.raises(DeliveryError), Tracker(STREAM, client=client, max_attempts=1) as tracker:
        tracker.track("c-1", "trial_started")


def test_identify_sends_traits(session, tracker_for, log) -> None:
    tracker = tracker_for()
    tracker.identify("c-9", {"email": "zoë@example.com", "first_name": "Zoë", "phone": None})
    tracker.flush()
    [(key, event)] = stream_events(session)
    assert (key, event.name) == ("c-9", "identify")
    assert event.traits == {"email": "zoë@example.com", "first_name": "Zoë", "phone": None}
    assert set(json.loads(log.requests[0][0]["Data"])) == {"event_id", "customer_id", "event", "timestamp", "traits"}


def test_an_app_reports_a_push_opened_with_the_firing_the_push_carried(session, tracker_for) -> None:
    tracker = tracker_for()
    tracker.message_opened("c-9", firing_id="9e107d9d372bb6826bd81d3542a419d6", rule="cart_abandonment", step=1)
    tracker.message_opened("c-9", channel="email")  # an app that knows only the channel
    tracker.flush()
    [(key, pushed), (_, opened)] = stream_events(session)
    assert (key, pushed.name) == ("c-9", "message_opened")
    assert pushed.properties == {
        "channel": "push",
        "firing_id": "9e107d9d372bb6826bd81d3542a419d6",
        "rule": "cart_abandonment",
        "step": 1,
    }
    assert opened.properties == {"channel": "email"}
    with pytest.raises(InvalidEventError, match=r"properties\.channel"):
        tracker.message_opened("c-9", channel="webhook")


def test_exit_hook_flushes_live_trackers_and_forgets_collected_ones(session, client) -> None:
    live_before = len(sdk._live)
    tracker = Tracker(STREAM, client=client)
    tracker.track("c-1", "page_viewed")
    assert tracker in sdk._live

    sdk._flush_live_trackers()

    assert [event.name for _, event in stream_events(session)] == ["page_viewed"]
    collected = weakref.ref(tracker)
    del tracker
    gc.collect()
    assert collected() is None
    assert len(sdk._live) == live_before, "a collected tracker leaves no exit hook behind"


def test_tracking_from_many_threads_loses_and_duplicates_nothing(session, tracker_for) -> None:
    tracker = tracker_for(flush_at=50)
    ids: list[str] = []

    def work(worker: int) -> None:
        ids.extend(tracker.track(f"c-{worker}", "page_viewed", {"n": n}) for n in range(150))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tracker.flush()

    arrived = stream_events(session)
    assert Counter(event.event_id for _, event in arrived) == Counter(ids) and len(ids) == 600
    for worker in range(4):  # the SDK keeps each customer's order (moto stores a call in order)
        ns = [event.properties["n"] for key, event in arrived if key == f"c-{worker}"]
        assert ns == list(range(150))


def test_constructor_takes_a_client_or_what_builds_one(session, client) -> None:
    with pytest.raises(ValueError, match="either"):
        Tracker(STREAM, client=client, endpoint_url="http://localhost:4566")
    built = Tracker(STREAM, session=session, region_name="us-east-2", flush_at_exit=False)
    assert built.client.meta.region_name == "us-east-2"


def test_endpoint_url_talks_to_a_local_endpoint(monkeypatch) -> None:
    """A real HTTP endpoint (moto's server on a free port), as a local stack would provide."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        admin = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)
        admin.create_stream(StreamName=STREAM, ShardCount=1)

        with Tracker(STREAM, endpoint_url=endpoint, region_name=REGION) as tracker:
            event_id = tracker.track("c-1", "add_to_cart", {"sku": "SKU-1"})
        assert tracker.client.meta.endpoint_url == endpoint

        shard = admin.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
        iterator = admin.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        [record] = admin.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        assert record["PartitionKey"] == "c-1"
        assert parse_event(record["Data"]).event_id == event_id
    finally:
        server.stop()


def test_an_unexpected_error_while_sending_keeps_the_records_buffered() -> None:
    """A duplicate is harmless (the evaluator ignores a repeated event_id), a lost event is not."""

    class Broken:
        def put_records(self, **_: Any) -> None:
            raise RuntimeError("connection pool exploded")

    tracker = Tracker(STREAM, client=Broken(), flush_at_exit=False)
    tracker.track("c-1", "page_viewed")
    tracker.track("c-2", "page_viewed")
    with pytest.raises(RuntimeError):
        tracker.flush()
    assert tracker.pending == 2
