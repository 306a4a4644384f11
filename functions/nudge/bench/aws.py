"""Both designs against moto, in-process: the stack ``nudge.local.provision`` creates, every call counted.

One ``mock_aws`` context and one ``provision`` serve both designs; between them the state table and
the schedule group are emptied and seeded again, so each design starts from the same state. The
slice of the workload that runs here is the *end* of the workload, and the seed is what Nudge's
in-memory run had stored for the slice's customers when it reached the slice (and their pending
timers), so the slice runs in steady state: returning customers have state of realistic size,
timers set before the slice come due during it.

Scheduler does not run on moto: the counter's listener follows every successful create, update
and delete of a schedule, and a due schedule becomes a timer record in a later batch (and is
deleted, as ``ActionAfterCompletion: DELETE`` does), through a client that is not counted.
Lambda is not run either: each batch is a Kinesis-shaped Lambda event, decoded by the handler's
``kinesis_records`` and evaluated with a virtual wall clock (the handler itself reads the wall clock).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
from moto import mock_aws

from ..adapters.dynamodb_state import encode_state, pack
from ..adapters.kinesis import kinesis_records
from ..adapters.scheduler import EventBridgeTimerScheduler
from ..clock import VirtualClock
from ..contracts import CONSENT_EVENTS, FEEDBACK_EVENTS, IDENTIFY, Event, Timer, encode_timer
from ..engine import CustomerState, Plan
from ..engine.runtime.codec import encode_profile
from ..local.environment import LOCAL_ENVIRONMENT, environment
from ..local.provision import LocalResources, provision
from ..local.scheduler_driver import parse_at
from ..settings import StackSettings
from ..wiring.evaluator import build_evaluator, timer_key
from .baseline import build_per_event_evaluator
from .measure import OperationCount, RequestCounter
from .prices import Usage, lambda_billed_ms
from .stream import Batcher, TimerQueue

REGION = "us-east-1"
_FAKE_ENV = {**LOCAL_ENVIRONMENT, "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}

TimerPayload = tuple[str, str, bytes]
"""A schedule coming due: (schedule name, partition key, the record Scheduler puts on the stream)."""


@dataclass
class Seed:
    """Where the slice starts: stored states (``CustomerState.encode``) and pending schedules."""

    clock: int
    states: dict[str, bytes]
    timers: list[tuple[str, int, Timer]]
    sent: list[str] = field(default_factory=list)
    """Firing ids delivery has recorded as sent (activation heads), which the channels' reports move on."""


@dataclass
class DesignRun:
    """One design over the slice on moto."""

    events: int = 0
    records: int = 0
    batches: int = 0
    firings: int = 0
    failed_batches: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    operations: dict[str, OperationCount] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


@contextlib.contextmanager
def moto_stack(rules_dir: str) -> Iterator[MotoStack]:
    """moto in-process with the stack provisioned; fake credentials only inside the context."""
    with environment(_FAKE_ENV), mock_aws():
        session = boto3.session.Session(region_name=REGION)
        resources = provision(session, StackSettings(), rules_dir=rules_dir)
        yield MotoStack(session, resources, boto3.session.Session(region_name=REGION))


def _at_text(at_ms: int) -> str:
    return "at(" + datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + ")"


class MotoStack:
    """The provisioned resources, plus uncounted ``admin`` clients that play the AWS services' part."""

    def __init__(self, session: Any, resources: LocalResources, admin: Any) -> None:
        self.session = session
        self.resources = resources
        self.config = resources.config
        self.dynamodb = admin.client("dynamodb")
        self.scheduler = admin.client("scheduler")
        self.timer_key = timer_key(resources.config, admin)

    def reset(self) -> None:
        """Empty the state and profile tables and the schedule group (queues keep their messages: never read)."""
        for table in (self.config.state_table, self.config.profile_table):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk"):
                keys = [{"DeleteRequest": {"Key": {"pk": item["pk"]}}} for item in page["Items"]]
                for start in range(0, len(keys), 25):
                    self.dynamodb.batch_write_item(RequestItems={table: keys[start : start + 25]})
        group = self.config.schedule_group
        for page in self.scheduler.get_paginator("list_schedules").paginate(GroupName=group):
            for schedule in page["Schedules"]:
                self.delete_schedule(schedule["Name"])

    def delete_schedule(self, name: str) -> None:
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
            self.scheduler.delete_schedule(Name=name, GroupName=self.config.schedule_group)

    def seed(self, seed: Seed, customers: set[str], queue: TimerQueue[TimerPayload], counter: RequestCounter) -> None:
        """Store the seed's states and schedules of ``customers`` as Nudge's adapters would have."""
        table, profiles = self.config.state_table, self.config.profile_table
        horizon = 60 * 86_400  # the TTL only has to outlive the run
        retention = self.config.profile_retention_days * 86_400
        items, profile_items = [], []
        for customer_id in sorted(customers):
            raw = seed.states.get(customer_id)
            if raw is None:
                continue
            state = CustomerState.decode(raw)
            item: dict[str, dict[str, Any]] = {
                "pk": {"S": customer_id},
                "state": {"B": encode_state(state)},
                "version": {"N": "1"},
                "expires_at": {"N": str(seed.clock // 1000 + horizon)},
            }
            profile = encode_profile(state)
            if profile is not None:  # written when the customer was last seen, as the adapter does
                item["profile_expires_at"] = {"N": str(seed.clock // 1000 + retention)}
                profile_item = {
                    "pk": item["pk"],
                    "profile": {"B": pack(profile)},
                    "expires_at": item["profile_expires_at"],
                }
                counter.remember(profiles, profile_item)
                profile_items.append({"PutRequest": {"Item": profile_item}})
            counter.remember(table, item)
            items.append({"PutRequest": {"Item": item}})
        activations = self.config.activations_table
        heads = []
        for firing_id in seed.sent:
            head = {"pk": {"S": firing_id}, "sk": {"S": "firing"}, "status": {"S": "sent"}}
            counter.remember(activations, head)
            heads.append({"PutRequest": {"Item": head}})
        for name, batch in ((table, items), (profiles, profile_items), (activations, heads)):
            for start in range(0, len(batch), 25):
                self.dynamodb.batch_write_item(RequestItems={name: batch[start : start + 25]})
        adapter = EventBridgeTimerScheduler(
            self.scheduler,
            group_name=self.config.schedule_group,
            stream_arn=self.config.events_stream_arn,
            role_arn=self.config.scheduler_role_arn,
            dead_letter_arn=self.config.timers_dlq_arn,
            timer_key=self.timer_key,
        )
        for name, at, timer in seed.timers:
            if timer.customer_id not in customers:
                continue
            definition = {**adapter.definition(timer, at), "ScheduleExpression": _at_text(at)}
            self.scheduler.create_schedule(**definition)
            queue.put(name, at, (name, timer.customer_id, encode_timer(timer, self.timer_key).encode()))


def _follow_schedules(queue: TimerQueue[TimerPayload]) -> Any:
    """A counter listener mirroring the schedules the design creates, moves and deletes."""

    def listener(operation: str, params: Mapping[str, Any], _: Mapping[str, Any]) -> None:
        if operation in ("scheduler.CreateSchedule", "scheduler.UpdateSchedule"):
            target = params["Target"]
            payload = (params["Name"], target["KinesisParameters"]["PartitionKey"], target["Input"].encode())
            queue.put(params["Name"], parse_at(params["ScheduleExpression"]), payload)
        elif operation == "scheduler.DeleteSchedule":
            queue.cancel(params["Name"])

    return listener


def kinesis_event(records: Sequence[tuple[str, bytes, int]], sequence: Iterator[int], arn: str) -> dict[str, Any]:
    """A Lambda event for a Kinesis batch, as the event source mapping delivers it: each record with
    its partition key, data and arrival on the stream (ms)."""
    out = []
    for partition_key, data, arrival_ms in records:
        number = f"{next(sequence):056d}"
        out.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": number,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": arrival_ms / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/nudge-evaluator",
                "awsRegion": REGION,
                "eventSourceARN": arn,
            }
        )
    return {"Records": out}


def mapping_filter(plan: Plan) -> set[str]:
    """Event names the evaluator's mapping lets through (``evaluator/source_filters.py``): referenced
    ones, identify, and the consent and message events that always pass."""
    return {*plan.referenced_events(), IDENTIFY, *CONSENT_EVENTS, *FEEDBACK_EVENTS}


def _accepts(names: set[str]) -> Callable[[Event], bool]:
    def accept(event: Event) -> bool:
        return event.name in names

    return accept


def run_design(
    stack: MotoStack,
    design: str,
    events: Sequence[Event],
    payloads: Mapping[int, bytes],
    seed: Seed,
    plan: Plan,
    prices: dict[str, Any],
    memory_mb: int,
    batch_size: int = 500,
    feedback: int = 0,
) -> DesignRun:
    """Run ``design`` ("nudge" or "baseline") over ``events`` (``payloads`` maps ``id(event)`` to its record).

    ``feedback`` of the events are the channels' reports about earlier sends: stream traffic like
    the rest, counted apart so that costs stay per million workload events.
    """
    clock = VirtualClock(seed.clock)
    counter = RequestCounter()
    evaluator: Any
    accept: Callable[[Event], bool] | None = None
    if design == "nudge":
        evaluator = build_evaluator(stack.config, stack.session, clock)
        counter.attach(
            evaluator.store.client, evaluator.scheduler.client, evaluator.sink.client, evaluator.dead_letters.client
        )
        accept = _accepts(mapping_filter(plan))
    else:
        evaluator = build_per_event_evaluator(stack.config, stack.session, clock)
        counter.attach(evaluator.dynamodb, evaluator.scheduler.client, evaluator.sqs)
    queue: TimerQueue[TimerPayload] = TimerQueue()
    stack.reset()
    end = max((event.ts for event in events), default=seed.clock)
    customers = {event.customer_id for event in events} | {t.customer_id for _, at, t in seed.timers if at < end}
    stack.seed(seed, customers, queue, counter)
    counter.listeners.append(_follow_schedules(queue))

    run = DesignRun()
    usage = run.usage
    for event in events:
        size = len(payloads[id(event)])
        usage.ingest_kib += math.ceil(size / 1024)
        usage.retrieved_bytes += size
    usage.records_ingested = len(events)
    usage.events = len(events) - feedback
    usage.feedback_events = feedback
    sequence = itertools.count(1)
    arn = stack.config.events_stream_arn
    for batch in Batcher(queue, batch_size, clock=seed.clock).batches(events, accept):
        clock.set(batch.wall)
        records: list[tuple[str, bytes, int]] = []
        for (name, partition_key, data), arrival in zip(batch.timers, batch.timer_arrivals, strict=True):
            stack.delete_schedule(name)  # Scheduler deletes a one-time schedule once it has run
            records.append((partition_key, data, arrival))
            usage.records_ingested += 1
            usage.ingest_kib += math.ceil(len(data) / 1024)
            usage.retrieved_bytes += len(data)
        records += [
            (event.customer_id, payloads[id(event)], arrival)
            for event, arrival in zip(batch.events, batch.arrivals, strict=True)
        ]
        run.events += batch.consumed
        if not records:
            continue
        lambda_event = kinesis_event(records, sequence, arn)
        before = {name: count.requests for name, count in counter.operations.items()}
        in_calls = counter.seconds
        started = time.perf_counter()
        report = evaluator.evaluate(kinesis_records(lambda_event), batch.wall, by_arrival=True)
        elapsed = time.perf_counter() - started
        in_calls = counter.seconds - in_calls
        calls = {name: count.requests - before.get(name, 0) for name, count in counter.operations.items()}
        billed = lambda_billed_ms(max(0.0, elapsed - in_calls), calls, memory_mb, prices)
        usage.per_invocation_ms.append(billed)
        usage.billed_ms += billed
        usage.invocations += 1
        run.batch_ms.append(elapsed * 1000)
        run.seconds += elapsed
        run.records += len(records)
        run.batches += 1
        run.firings += report.firings
        run.failed_batches += getattr(report, "failed_sequence_number", None) is not None
    run.events -= feedback  # workload events; the reports are counted in ``usage.feedback_events``
    usage.scheduler_invocations = queue.fired
    usage.read_units, usage.write_units = counter.units()
    usage.sqs_requests = sum(
        count.billed_requests for name, count in counter.operations.items() if name.startswith("sqs.")
    )
    run.operations = counter.snapshot()
    return run
