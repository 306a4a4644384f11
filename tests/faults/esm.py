"""Lambda's Kinesis event source mapping, over moto's Kinesis, on the virtual clock.

What it does, shard by shard (one batch in flight per shard: ``ParallelizationFactor`` 1):

- **Reading**: ``GetShardIterator`` (``TRIM_HORIZON``) once, then ``GetRecords`` with the last
  ``NextShardIterator`` whenever moto's shard holds records past the last one read. The filter
  criteria (``nudge.evaluator.source_filters``, the patterns CDK deploys) are applied here, as
  Lambda does before batching; moto does not evaluate them. A filtered record is done with.
- **Batching**: up to ``BatchSize`` records and 6 MB of payload, invoked when the batch is full or
  ``MaximumBatchingWindowInSeconds`` after the first record of the batch arrived. The event is the
  one Lambda builds (``Records[].kinesis`` with base64 data and ``approximateArrivalTimestamp``).
- **Partial batch response** (``ReportBatchItemFailures``): the records before the earliest
  ``itemIdentifier`` are done; the batch is retried from that sequence number. An identifier
  that is not in the batch fails the whole batch, as Lambda treats it.
- **Function errors** (an exception, a ``ProcessDeath``, a timeout): nothing is done; with
  ``BisectBatchOnFunctionError`` a batch of two or more is split in two halves, retried in order,
  and the split spends no retry; a single record is retried.
- **Retries**: ``MaximumRetryAttempts`` (-1: until the record age runs out) counts retries of a
  batch; the count restarts when a partial response moves the checkpoint forward (AWS does not say;
  a batch that makes progress is not the one that failed). Each retry waits ``retry_delay_ms``
  (1 s, doubling, at most 60 s: AWS does not document the interval; an assumption).
- **Record age**: before each invocation, leading records older than ``MaximumRecordAgeInSeconds``
  (arrival on the virtual clock) are discarded.
- **Discards** go to the on-failure destination (``<prefix>-evaluator-dlq``) as Lambda's invocation
  record: only metadata (``requestContext.condition``, ``KinesisBatchInfo`` with the shard, the
  first and last sequence numbers, the arrivals, the batch size and the stream ARN), never the data.

The mapping keeps its own account (``delivered``, ``discarded``, ``filtered``): which records an
invocation reported done, which were given up, which the filters dropped. A record is *evaluated*
once some invocation reported it done; that is what the lost-event count is measured against.

Known gaps against AWS: shards are served one after another at the same virtual instant, not
concurrently (an invocation's virtual time delays the next shard's); no throttling of invocations
(``Before invocation`` errors); no resharding; ``ParallelizationFactor`` above 1 is not emulated.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from nudge.engine import Plan
from nudge.evaluator.source_filters import event_filter_patterns, record_passes
from nudge.settings import StackSettings
from nudge.timefmt import iso

from .lambda_runtime import Function, Invocation
from .moto_stack import ACCOUNT, REGION
from .virtual_time import VirtualTime

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""A synchronous invocation's payload limit: a batch is cut before it would exceed it."""
BISECT_ON_ERROR = True
"""``infra/evaluation.py`` deploys ``bisect_batch_on_error=True``; ``StackSettings`` has no field for it."""


def retry_delay_ms(retries: int) -> int:
    """How long the mapping waits before the ``retries``-th retry of a batch (an assumption, see above)."""
    return min(60_000, 1_000 * 2 ** max(retries - 1, 0))


@dataclass(frozen=True)
class MappingSettings:
    """The mapping as deployed: ``deployed`` reads them from ``StackSettings`` as ``infra/evaluation.py`` does."""

    batch_size: int
    batching_window_ms: int
    retry_attempts: int
    max_record_age_ms: int
    bisect_on_error: bool
    filters: tuple[str, ...]

    @classmethod
    def deployed(cls, settings: StackSettings, plan: Plan) -> MappingSettings:
        return cls(
            batch_size=settings.batch_size,
            batching_window_ms=settings.batching_window_seconds * 1000,
            retry_attempts=settings.retry_attempts,
            max_record_age_ms=settings.max_record_age_seconds * 1000 if settings.max_record_age_seconds >= 0 else -1,
            bisect_on_error=BISECT_ON_ERROR,
            filters=tuple(event_filter_patterns(plan)),
        )

    def with_plan(self, plan: Plan) -> MappingSettings:
        """The filters of a redeploy with other rules (``cdk deploy`` regenerates them)."""
        return replace(self, filters=tuple(event_filter_patterns(plan)))


@dataclass(frozen=True)
class StreamRecord:
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival_ms: int

    @property
    def payload_bytes(self) -> int:
        return 4 * (len(self.data) + 2) // 3 + len(self.partition_key) + 300


@dataclass(frozen=True)
class Discarded:
    """A range the mapping gave up on (what it sent the on-failure destination)."""

    shard_id: str
    condition: str
    records: tuple[StreamRecord, ...]


@dataclass
class _Work:
    records: list[StreamRecord]
    retries: int = 0
    not_before: int = 0


@dataclass
class _Shard:
    shard_id: str
    iterator: str
    read_upto: int = 0
    unread: deque[StreamRecord] = field(default_factory=deque)
    work: deque[_Work] = field(default_factory=deque)


@dataclass
class KinesisEventSourceMapping:
    """One mapping from a stream to a ``Function``; ``step`` and ``next_wake`` drive it (see module docstring)."""

    kinesis: Any
    sqs: Any
    stream_name: str
    stream_arn: str
    function: Function
    settings: MappingSettings
    on_failure_url: str
    time: VirtualTime
    echo_rate: float = 0.0
    """Lambda invokes a batch more than once now and then (at-least-once): this share of successful
    invocations is repeated with the same event (the second answer is ignored)."""
    seed: int = 0
    delivered: dict[tuple[str, str], int] = field(default_factory=dict)
    """Records some invocation reported done -> the virtual time that invocation started (its wall)."""
    filtered: set[tuple[str, str]] = field(default_factory=set)
    discarded: list[Discarded] = field(default_factory=list)
    done_records: list[StreamRecord] = field(default_factory=list)
    invocations: int = 0
    echoes: int = 0
    filter_recursion_errors: int = 0
    """Records ``record_passes`` could not judge (``RecursionError``): ``nudge local`` would crash on them."""
    _shards: list[_Shard] = field(default_factory=list)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for shard in self.kinesis.list_shards(StreamName=self.stream_name)["Shards"]:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            self._shards.append(_Shard(shard["ShardId"], iterator))

    # -- driving -------------------------------------------------------------------------------

    def next_wake(self) -> int | None:
        """When some shard next has something to do (``None``: the stream is drained)."""
        wakes = [wake for shard in self._shards if (wake := self._shard_wake(shard)) is not None]
        return min(wakes) if wakes else None

    def idle(self) -> bool:
        return all(not s.work and not s.unread and not self._has_unread(s) for s in self._shards)

    def step(self, now_ms: int) -> bool:
        """Let each shard do what is due at ``now_ms``; True if anything was read or invoked."""
        did = False
        for shard in self._shards:
            did |= self._step(shard, now_ms)
        return did

    # -- one shard -----------------------------------------------------------------------------

    def _moto_shard(self, shard: _Shard) -> Any:
        from moto.kinesis.models import kinesis_backends

        return kinesis_backends[ACCOUNT][REGION].streams[self.stream_name].shards[shard.shard_id]

    def _has_unread(self, shard: _Shard) -> bool:
        return self._moto_shard(shard).get_max_sequence_number() > shard.read_upto

    def _shard_wake(self, shard: _Shard) -> int | None:
        now = self.time.now_ms()
        if shard.work:
            return max(now, shard.work[0].not_before)
        if self._has_unread(shard):
            return now
        if shard.unread:
            if len(shard.unread) >= self.settings.batch_size:
                return now
            return max(now, shard.unread[0].arrival_ms + self.settings.batching_window_ms)
        return None

    def _read(self, shard: _Shard) -> bool:
        if not self._has_unread(shard):
            return False
        response = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=10_000)
        shard.iterator = response["NextShardIterator"]
        for raw in response["Records"]:
            record = StreamRecord(
                shard.shard_id,
                raw["SequenceNumber"],
                raw["PartitionKey"],
                raw["Data"],
                round(raw["ApproximateArrivalTimestamp"].timestamp() * 1000),
            )
            shard.read_upto = max(shard.read_upto, int(record.sequence_number))
            if self._passes(record):
                shard.unread.append(record)
            else:
                self.filtered.add((shard.shard_id, record.sequence_number))
        return True

    def _passes(self, record: StreamRecord) -> bool:
        """The filter criteria, as ``nudge.evaluator.source_filters.record_passes`` evaluates them.

        ``record_passes`` parses with the standard library, which raises ``RecursionError`` on JSON
        nested near Python's recursion limit (a 990-deep record does). Lambda's filtering has no such
        limit that we know of, so such a record is judged again with a higher limit, and counted.
        """
        patterns = list(self.settings.filters)
        try:
            return record_passes(patterns, record.data)
        except RecursionError:
            self.filter_recursion_errors += 1
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(limit, 20_000))
            try:
                return record_passes(patterns, record.data)
            finally:
                sys.setrecursionlimit(limit)

    def _step(self, shard: _Shard, now: int) -> bool:
        did = self._read(shard) if not shard.work else False
        if not shard.work:
            if not shard.unread:
                return did
            window_over = now >= shard.unread[0].arrival_ms + self.settings.batching_window_ms
            if len(shard.unread) < self.settings.batch_size and not window_over:
                return did
            shard.work.append(_Work(self._take_batch(shard)))
        head = shard.work[0]
        if now < head.not_before:
            return did
        if self._expire(shard, head, now):
            return True
        self._invoke(shard, head)
        return True

    def _take_batch(self, shard: _Shard) -> list[StreamRecord]:
        batch: list[StreamRecord] = []
        payload = 0
        while shard.unread and len(batch) < self.settings.batch_size:
            size = shard.unread[0].payload_bytes
            if batch and payload + size > MAX_PAYLOAD_BYTES:
                break
            batch.append(shard.unread.popleft())
            payload += size
        return batch

    def _expire(self, shard: _Shard, head: _Work, now: int) -> bool:
        """Discard the head's leading records past ``MaximumRecordAgeInSeconds``; True if any were."""
        limit = self.settings.max_record_age_ms
        if limit < 0:
            return False
        aged = 0
        while aged < len(head.records) and now - head.records[aged].arrival_ms > limit:
            aged += 1
        if not aged:
            return False
        self._discard(shard, head.records[:aged], "RecordAgeExceeded", head.retries)
        head.records = head.records[aged:]
        if not head.records:
            shard.work.popleft()
        return True

    def _invoke(self, shard: _Shard, head: _Work) -> None:
        event = self.event(shard.shard_id, head.records)
        started = self.time.now_ms()
        self.invocations += 1
        outcome = self.function.invoke(event)
        if not outcome.failed and self.echo_rate and self._rng.random() < self.echo_rate:
            self.echoes += 1
            self.function.invoke(event)  # a duplicate invocation: Lambda keeps the first answer
        now = self.time.now_ms()
        if outcome.failed:
            if self.settings.bisect_on_error and len(head.records) > 1:
                middle = len(head.records) // 2
                shard.work.popleft()
                shard.work.extendleft(
                    [_Work(head.records[middle:], head.retries, now), _Work(head.records[:middle], head.retries, now)]
                )
                return
            self._retry(shard, head, now, "RetryAttemptsExhausted")
            return
        failed_at = self._failure_index(outcome, head.records)
        if failed_at is None:
            self._done(head.records, started)
            shard.work.popleft()
            return
        if failed_at > 0:
            self._done(head.records[:failed_at], started)
            head.records = head.records[failed_at:]
            head.retries = 0
        self._retry(shard, head, now, "RetryAttemptsExhausted")

    @staticmethod
    def _failure_index(outcome: Invocation, records: list[StreamRecord]) -> int | None:
        """Where the partial batch response says to resume (``None``: the whole batch is done)."""
        response = outcome.response if isinstance(outcome.response, dict) else {}
        failures = response.get("batchItemFailures") or []
        if not failures:
            return None
        positions = {record.sequence_number: index for index, record in enumerate(records)}
        indexes = [positions.get(str(failure.get("itemIdentifier"))) for failure in failures]
        if any(index is None for index in indexes):
            return 0  # an identifier Lambda cannot place: the whole batch failed
        return min(index for index in indexes if index is not None)

    def _retry(self, shard: _Shard, head: _Work, now: int, condition: str) -> None:
        head.retries += 1
        if 0 <= self.settings.retry_attempts < head.retries:
            self._discard(shard, head.records, condition, head.retries)
            shard.work.popleft()
            return
        head.not_before = now + retry_delay_ms(head.retries)

    def _done(self, records: list[StreamRecord], started: int) -> None:
        for record in records:
            self.delivered.setdefault((record.shard_id, record.sequence_number), started)
        self.done_records.extend(records)

    def _discard(self, shard: _Shard, records: list[StreamRecord], condition: str, attempts: int) -> None:
        self.discarded.append(Discarded(shard.shard_id, condition, tuple(records)))
        self.sqs.send_message(
            QueueUrl=self.on_failure_url, MessageBody=json.dumps(self.failure_record(records, condition, attempts))
        )

    def delayed_customers(self, lateness_ms: int) -> set[str]:
        """Partition keys (customers) with a record first reported done by an invocation that started
        more than ``lateness_ms`` after the record arrived: it waited in the stream (behind a failing
        batch) longer than the allowed lateness, so a wall clock taken at the invocation would judge it late."""
        return {
            record.partition_key
            for record in self.done_records
            if self.delivered[(record.shard_id, record.sequence_number)] - record.arrival_ms > lateness_ms
        }

    # -- what Lambda sends -----------------------------------------------------------------------

    def event(self, shard_id: str, records: list[StreamRecord]) -> dict[str, Any]:
        """The Lambda event for a Kinesis batch, as the mapping builds it."""
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": record.partition_key,
                        "sequenceNumber": record.sequence_number,
                        "data": base64.b64encode(record.data).decode(),
                        "approximateArrivalTimestamp": record.arrival_ms / 1000,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{shard_id}:{record.sequence_number}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/nudge-evaluator",
                    "awsRegion": REGION,
                    "eventSourceARN": self.stream_arn,
                }
                for record in records
            ]
        }

    def failure_record(self, records: list[StreamRecord], condition: str, attempts: int) -> dict[str, Any]:
        """Lambda's invocation record for a discarded Kinesis batch: metadata only ("Retain discarded
        batch records for a Kinesis Data Streams event source", Lambda developer guide)."""
        first, last = records[0], records[-1]
        return {
            "requestContext": {
                "requestId": f"{first.shard_id}-{first.sequence_number}-{self.invocations}",
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function.name}",
                "condition": condition,
                "approximateInvokeCount": attempts + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": iso(self.time.now_ms()),
            "KinesisBatchInfo": {
                "shardId": first.shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": iso(first.arrival_ms),
                "approximateArrivalOfLastRecord": iso(last.arrival_ms),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
