"""The whole stack on this machine: the CDK stack's resources in an embedded moto server, and the
stack's own evaluator and deliverer (wired by ``nudge.wiring``, as the handlers are) driven the
way AWS drives them.

- the stream is polled like an event source mapping: batches per shard, the deployed filter
  criteria applied (moto does not evaluate them), partial batch failures honoured by resuming
  from the failed record;
- due EventBridge Scheduler schedules are delivered to their Kinesis target (moto never fires
  them), see ``scheduler_driver``;
- the firings queue is drained into the deliverer, as the delivery function's event source would;
- push goes to a local outbox (``outbox.LocalPushOutbox``): moto has no End User Messaging Push.

Two clocks: ``run_events`` replays a file on a virtual clock exactly as ``nudge replay`` does
(the largest event timestamp so far; waits come due before the first later event), and
``serve`` runs on the wall clock, optionally sped up, for a live producer.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapters.stream_redrive import failure_record
from ..clock import VirtualClock
from ..contracts import IDENTIFY, MESSAGE_CHANNELS, MESSAGE_DELIVERED, Event, feedback_event_id, loads
from ..delivery.deliverer import RetryLater
from ..delivery.ports import ActivationStatus
from ..delivery.service import DeliveryResult
from ..engine import load_plan
from ..evaluator import BatchEvaluator, EventWalls, InputRecord
from ..evaluator.source_filters import event_filter_patterns, record_passes
from ..settings import StackSettings, table_settings
from ..timefmt import iso
from ..wiring.delivery import build_deliverer
from ..wiring.evaluator import build_evaluator
from .embedded import EmbeddedAws
from .outbox import LOCAL_APPLICATION_ID, LocalPushOutbox
from .provision import LocalResources, provision
from .scheduler_driver import ScheduleDriver

MAX_BATCH_RETRIES = 3


@dataclass
class Output:
    """What the local stack reports: firings read from the firings queue and delivery attempts."""

    firings: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    guarded: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Per (rule, decision kind), the guardrails' decisions: firings not sent for want of consent or
    over a cap (they never reach the queue), and firings held by quiet hours."""


class ShardPoller:
    """Reads a stream shard by shard like Lambda's event source mapping, with checkpoints."""

    def __init__(self, session: Any, stream_name: str, patterns: list[str], batch_size: int) -> None:
        self.client = session.client("kinesis")
        self.stream_name = stream_name
        self.patterns = patterns
        self.batch_size = batch_size
        self.iterators: dict[str, str] = {}
        for shard in self.client.list_shards(StreamName=stream_name)["Shards"]:
            self.iterators[shard["ShardId"]] = self.client.get_shard_iterator(
                StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        self.filtered_out = 0

    def poll(self, shard_id: str) -> list[InputRecord]:
        response = self.client.get_records(ShardIterator=self.iterators[shard_id], Limit=self.batch_size)
        self.iterators[shard_id] = response["NextShardIterator"]
        batch: list[InputRecord] = []
        for record in response["Records"]:
            if not record_passes(self.patterns, record["Data"]):
                self.filtered_out += 1
                continue
            batch.append(
                InputRecord(
                    sequence_number=record["SequenceNumber"],
                    partition_key=record["PartitionKey"],
                    data=record["Data"],
                    arrival_ms=int(record["ApproximateArrivalTimestamp"].timestamp() * 1000),
                )
            )
        return batch

    def rewind(self, shard_id: str, sequence_number: str) -> None:
        """Resume from a failed record, as Lambda does after a partial batch failure."""
        self.iterators[shard_id] = self.client.get_shard_iterator(
            StreamName=self.stream_name,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=sequence_number,
        )["ShardIterator"]


def sender(tracker: Any) -> Callable[[list[Event]], None]:
    """Send events as they are (their own ids and times) through an SDK ``Tracker``, then flush."""

    def send(events: list[Event]) -> None:
        for event in events:
            if event.name == IDENTIFY:
                tracker.identify(event.customer_id, event.traits, timestamp=iso(event.ts), event_id=event.event_id)
            else:
                tracker.track(
                    event.customer_id, event.name, event.properties, timestamp=iso(event.ts), event_id=event.event_id
                )
        tracker.flush()

    return send


def recipient_text(result: DeliveryResult) -> Any:
    recipient = result.recipient
    if isinstance(recipient, dict):
        return sorted(recipient)
    return recipient


class LocalStack:
    """Nudge running against an embedded AWS; see the module docstring."""

    def __init__(
        self,
        rules_dir: str | Path = "rules",
        settings: StackSettings | None = None,
        clock: VirtualClock | None = None,
        aws: EmbeddedAws | None = None,
        on_firing: Callable[[dict[str, Any]], None] | None = None,
        on_delivery: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.rules_dir = str(rules_dir)
        self.settings = settings or StackSettings()
        self.clock = clock or VirtualClock()
        self.aws = aws or EmbeddedAws()
        self.session = self.aws.session
        self.plan = load_plan(self.rules_dir)
        self.resources: LocalResources = provision(
            self.session, self.settings, self.rules_dir, unsubscribe_url=f"{self.settings.site_url}/unsubscribe"
        )
        self.evaluator: BatchEvaluator = build_evaluator(
            self.resources.config, self.session, self.clock, timer_min_lead_ms=0
        )
        self.deliverer = build_deliverer(self.resources.delivery, self.session, self.clock)
        self.push_outbox = LocalPushOutbox(self.resources.delivery.push_application_id or LOCAL_APPLICATION_ID)
        service = self.deliverer.service  # production wiring has no local push: add the outbox
        service.channels = {**service.channels, "push": self.push_outbox}
        self.schedules = ScheduleDriver(self.session, self.resources.config.schedule_group)
        self.poller = ShardPoller(
            self.session, self.resources.stream_name, event_filter_patterns(self.plan), self.settings.batch_size
        )
        self.sqs = self.session.client("sqs")
        self.on_firing = on_firing
        self.on_delivery = on_delivery
        self.output = Output()
        waits = [rule.wait for rule in self.plan.rules if rule.wait is not None]
        self.min_wait = min(waits) if waits else None
        self._swept_day: int | None = None
        self.expired = 0
        """How many items ``expire_items`` deleted, for tests and the curious."""

    def close(self) -> None:
        self.aws.stop()

    # -- the AWS side ---------------------------------------------------------------------------

    def expire_items(self) -> int:
        """DynamoDB's TTL, which moto does not apply: delete the state and profile items whose
        ``expires_at`` the clock has passed. AWS deletes an expired item within days, so a sweep once
        per day of the clock is within what production does; returns how many items went."""
        day = self.clock.now_ms() // 86_400_000
        if day == self._swept_day:
            return 0
        self._swept_day = day
        now_s = str(self.clock.now_ms() // 1000)
        dynamodb = self.session.client("dynamodb")
        tables = table_settings(self.settings)
        deleted = 0
        for table in (tables.state, tables.profiles):
            pages = dynamodb.get_paginator("scan").paginate(
                TableName=table.name,
                ProjectionExpression="pk",
                FilterExpression="#t < :now",
                ExpressionAttributeNames={"#t": table.ttl_attribute},
                ExpressionAttributeValues={":now": {"N": now_s}},
            )
            for page in pages:
                for item in page["Items"]:
                    dynamodb.delete_item(TableName=table.name, Key={"pk": item["pk"]})
                    deleted += 1
        self.expired += deleted
        return deleted

    def pump(self, event_walls: EventWalls | None = None) -> None:
        """Run the mapping until the stream is drained, then deliver everything queued; the
        ``message_delivered`` events of those sends go round once more."""
        self.expire_items()
        reported = True
        while reported:
            busy = True
            while busy:
                busy = False
                for shard_id in list(self.poller.iterators):
                    records = self.poller.poll(shard_id)
                    if records:
                        busy = True
                        self._evaluate(shard_id, records, event_walls)
            reported = self.drain_firings() > 0

    def _evaluate(self, shard_id: str, records: list[InputRecord], event_walls: EventWalls | None) -> None:
        for _ in range(MAX_BATCH_RETRIES):
            report = self.evaluator.evaluate(records, self.clock.now_ms(), event_walls)
            self.output.guarded += report.guarded
            if report.failed_sequence_number is None:
                return
            index = next(i for i, r in enumerate(records) if r.sequence_number == report.failed_sequence_number)
            records = records[index:]
        # Out of retries: park where the batch is in the evaluator DLQ, as the mapping would (Lambda's
        # on-failure record), for `nudge redrive --evaluator`.
        record = failure_record(
            stream_arn=self.resources.config.events_stream_arn,
            shard_id=shard_id,
            records=records,
            timestamp_ms=self.clock.now_ms(),
            condition="RetryAttemptsExhausted",
        )
        self.sqs.send_message(QueueUrl=self.resources.evaluator_dlq_url, MessageBody=json.dumps(record))

    def drain_firings(self) -> int:
        """Deliver every queued firing; how many ``message_delivered`` events that put on the stream."""
        url = self.resources.firings_queue_url
        delivered = 0
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages", [])
            if not messages:
                return delivered
            for message in messages:
                body = loads(message["Body"])
                firing = {"type": "firing", **{k: v for k, v in body.items() if k not in ("v", "profile")}}
                self.output.firings.append(firing)
                if self.on_firing:
                    self.on_firing(firing)
                attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                try:
                    result = self.deliverer.handle(message["Body"], attempt)
                except RetryLater:
                    continue  # stays on the queue; redelivered after its visibility timeout
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                if result is not None:
                    self._report(result)
                    if result.status is ActivationStatus.SENT and result.channel in MESSAGE_CHANNELS:
                        self._delivered(result)
                        delivered += 1

    def _delivered(self, result: DeliveryResult) -> None:
        """What a channel would report of a local send: it was delivered, at the clock's time.

        The loop runs end to end on this machine; opens, clicks and bounces are the customer's to
        play, in an events file or with the SDK.
        """
        firing = result.firing
        envelope = {
            "event_id": feedback_event_id("local", f"{firing.firing_id}:delivered"),
            "customer_id": firing.customer_id,
            "event": MESSAGE_DELIVERED,
            "timestamp": iso(self.clock.now_ms()),
            "properties": {
                "channel": result.channel,
                "rule": firing.rule,
                "firing_id": firing.firing_id,
                "step": firing.step,
            },
        }
        self.session.client("kinesis").put_record(
            StreamName=self.resources.stream_name,
            PartitionKey=firing.customer_id,
            Data=json.dumps(envelope).encode(),
        )

    def _report(self, result: DeliveryResult) -> None:
        rendered = result.rendered
        line: dict[str, Any] = {
            "type": "delivery",
            "rule": result.firing.rule,
            "customer_id": result.firing.customer_id,
            "channel": result.channel,
            "recipient": recipient_text(result),
            "status": result.status.value,
        }
        if rendered is not None and rendered.subject is not None:
            line["subject"] = rendered.subject
        if rendered is not None:
            line["text"] = rendered.text
        if result.status is not ActivationStatus.SENT and result.reason:
            line["reason"] = result.reason
        self.output.deliveries.append(line)
        if self.on_delivery:
            self.on_delivery(line)

    def fire_timers(self, before: int | None, strictly: bool = True) -> int:
        """Deliver due schedules (all of them when ``before`` is None), then process them."""
        fired = 0
        while True:
            pending = self.schedules.pending()
            if not pending:
                return fired
            due = pending[0].due
            if before is not None and (due > before or (due == before and strictly)):
                return fired
            self.clock.advance_to(due)
            fired += len(self.schedules.fire_due(due))
            self.pump()

    # -- scripted mode: a file of events on replay's virtual clock ------------------------------

    def run_events(self, events: list[Event], send: Callable[[list[Event]], None]) -> Output:
        """Send ``events`` through ``send`` (the SDK) and run the stack on a virtual clock.

        Events go in chunks small enough that no wait can come due inside one: a chunk never
        passes the earliest pending schedule, and spans less than the shortest ``wait`` of the
        rules (a wait starts no earlier than the event that arms it). Each event is evaluated at
        its own clock, so the outcome is exactly replay's, at a fraction of the round trips.
        """
        index = 0
        clock: int | None = None
        while index < len(events):
            first = events[index]
            start = first.ts if clock is None else max(clock, first.ts)
            self.fire_timers(before=start)
            pending = self.schedules.pending()
            earliest_due = pending[0].due if pending else None
            chunk: list[Event] = []
            walls: dict[str, int] = {}
            chunk_clock = clock
            oldest = None
            while index < len(events) and len(chunk) < self.settings.batch_size:
                event = events[index]
                next_clock = event.ts if chunk_clock is None else max(chunk_clock, event.ts)
                next_oldest = event.ts if oldest is None else min(oldest, event.ts)
                if chunk and (
                    (earliest_due is not None and earliest_due < next_clock)
                    or (self.min_wait is not None and next_clock > next_oldest + self.min_wait)
                ):
                    break
                chunk.append(event)
                walls.setdefault(event.event_id, next_clock)  # a duplicate keeps its first clock
                chunk_clock, oldest = next_clock, next_oldest
                index += 1
            assert chunk_clock is not None
            self.clock.set(chunk_clock)
            send(chunk)
            self.pump(walls)
            clock = chunk_clock
        self.fire_timers(before=None)
        return self.output

    # -- live mode ------------------------------------------------------------------------------

    def serve(self, stop: Callable[[], bool], interval: float = 0.2) -> Iterator[None]:
        """Poll forever (until ``stop()``): timers due by the clock, the stream, the firings queue."""
        while not stop():
            self.fire_timers(before=self.clock.now_ms(), strictly=False)
            self.pump()
            yield None
            time.sleep(interval)
