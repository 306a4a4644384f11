"""The evaluator DLQ back onto the events stream (``nudge redrive --evaluator``).

When the event source mapping gives up on a batch (its records reached ``max_record_age``, or
a fixed ``retry_attempts`` ran out), Lambda sends the on-failure destination only where the batch
was, not the records: an invocation record whose ``KinesisBatchInfo`` holds the stream ARN, the
shard, the first and last sequence numbers and the batch size. The records themselves stay on
the stream until its retention ends. This module reads those messages, fetches each range back
from its shard (``GetShardIterator`` ``AT_SEQUENCE_NUMBER``, then ``GetRecords`` until past the
last sequence number; sequence numbers compare as integers), puts the records back with
``PutRecords`` (same partition key, same data; entries Kinesis reports failed are retried), and
deletes a message only once every record of its range is back.

Re-putting is idempotent for the evaluator: an event it already processed is a duplicate by
``event_id`` while the dedupe window (``rules/policy.yaml``, 24 hours of event time) remembers
it, and a timer for a wait already decided is a no-op. A range the stream no longer holds (older
than its retention) is reported as lost and its message kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..evaluator import InputRecord
from ..sdk import Record, Tracker
from ..timefmt import iso

RECEIVE_LIMIT = 10
VISIBILITY_SECONDS = 300
"""How long a message being redriven stays hidden from other readers (kept ones are released at the end)."""
GET_RECORDS_LIMIT = 10_000
EMPTY_READS_LIMIT = 100
EMPTY_READ_PAUSE_SECONDS = 0.2
"""A shard answers at most 5 GetRecords a second."""


class UnreadableMessage(ValueError):
    """A DLQ message that is not a Kinesis on-failure invocation record."""


@dataclass(frozen=True)
class DiscardedBatch:
    """Where the records of a batch the mapping gave up on are: a shard and a sequence range."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int | None = None
    condition: str = ""
    first_arrival: str = ""
    last_arrival: str = ""

    @property
    def stream_name(self) -> str:
        """``arn:aws:kinesis:<region>:<account>:stream/<name>`` -> ``<name>``."""
        return self.stream_arn.partition(":stream/")[2] or self.stream_arn

    @classmethod
    def from_body(cls, body: str) -> DiscardedBatch:
        try:
            message = json.loads(body)
            info = message["KinesisBatchInfo"]
            batch = cls(
                stream_arn=str(info["streamArn"]),
                shard_id=str(info["shardId"]),
                start=str(info["startSequenceNumber"]),
                end=str(info["endSequenceNumber"]),
                size=int(info["batchSize"]) if info.get("batchSize") is not None else None,
                condition=str(message.get("requestContext", {}).get("condition", "")),
                first_arrival=str(info.get("approximateArrivalOfFirstRecord", "")),
                last_arrival=str(info.get("approximateArrivalOfLastRecord", "")),
            )
            if int(batch.start) > int(batch.end):
                raise ValueError("startSequenceNumber is after endSequenceNumber")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UnreadableMessage(f"not a Kinesis on-failure record: {type(exc).__name__}: {exc}") from exc
        return batch

    def describe(self) -> str:
        arrived = f", arrived {self.first_arrival} to {self.last_arrival}" if self.first_arrival else ""
        return f"{self.shard_id} sequence numbers {self.start} to {self.end}{arrived}"


def failure_record(
    *,
    stream_arn: str,
    shard_id: str,
    records: Sequence[InputRecord],
    timestamp_ms: int,
    condition: str = "RecordAgeExceeded",
    function_arn: str = "",
) -> dict[str, Any]:
    """The invocation record Lambda sends to a Kinesis mapping's on-failure destination (what
    ``nudge local`` parks, and what the tests build): see "Retain discarded batch records for a
    Kinesis Data Streams event source" in the Lambda developer guide."""
    first, last = records[0], records[-1]
    return {
        "requestContext": {
            "requestId": f"{shard_id}-{first.sequence_number}",
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": 1,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": iso(timestamp_ms),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first.sequence_number,
            "endSequenceNumber": last.sequence_number,
            "approximateArrivalOfFirstRecord": iso(first.arrival_ms),
            "approximateArrivalOfLastRecord": iso(last.arrival_ms),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


@dataclass(frozen=True)
class Fetched:
    """The records of a range still on the stream, and what of it is gone."""

    records: list[InputRecord]
    lost: str = ""
    """Empty when the whole range is there; otherwise what is missing, for a person."""


class UnreadableRange(RuntimeError):
    """The shard kept answering with nothing: the range could not be read (it may still be there)."""


def fetch(kinesis: Any, batch: DiscardedBatch, sleep: Callable[[float], None] = time.sleep) -> Fetched:
    """Read ``batch``'s range back from its shard, oldest first.

    Kinesis refuses an iterator at a sequence number past its retention (``InvalidArgumentException``)
    and no longer knows a shard closed by resharding once its records expired; either way the
    range is gone. An iterator whose first record is later than the range's first means the start
    of the range was trimmed. Sequence numbers compare as integers, never as text.
    """
    start, end = int(batch.start), int(batch.end)
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=batch.stream_name,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=batch.start,
        )["ShardIterator"]
    except (kinesis.exceptions.ResourceNotFoundException, kinesis.exceptions.InvalidArgumentException) as exc:
        return Fetched([], f"none of it is on the stream any more ({exc})")
    records: list[InputRecord] = []
    first_seen: int | None = None
    empty_reads = 0
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        iterator = response.get("NextShardIterator")  # None once a closed shard is read to its end
        for raw in response["Records"]:
            number = int(raw["SequenceNumber"])
            first_seen = number if first_seen is None else first_seen
            if number > end:
                iterator = None
                break
            if number >= start:
                records.append(
                    InputRecord(
                        sequence_number=raw["SequenceNumber"],
                        partition_key=raw["PartitionKey"],
                        data=raw["Data"],
                        arrival_ms=int(raw["ApproximateArrivalTimestamp"].timestamp() * 1000),
                    )
                )
        if response["Records"]:
            empty_reads = 0
        elif iterator:
            if not response.get("MillisBehindLatest"):
                break  # caught up with the shard's newest record: nothing more of the range exists
            empty_reads += 1
            if empty_reads > EMPTY_READS_LIMIT:
                raise UnreadableRange(
                    f"{batch.describe()}: {EMPTY_READS_LIMIT} reads in a row returned nothing, "
                    f"{response['MillisBehindLatest']} ms behind the shard's newest record"
                )
            sleep(EMPTY_READ_PAUSE_SECONDS)  # an empty read of a shard with records later on: read on
    if first_seen is None or first_seen > end:
        return Fetched([], "none of it is on the stream any more (older than the stream's retention)")
    if first_seen > start:
        return Fetched(records, f"its records before {first_seen} are no longer on the stream")
    return Fetched(records)


def put_back(
    kinesis: Any, stream_name: str, records: Sequence[InputRecord], sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """``PutRecords`` the records again, same partition key and data, in batches within Kinesis's
    limits; entries reported failed are retried with backoff and jitter (the SDK's ``Tracker``).
    Return the error of each record that still could not be put (empty when all are back)."""
    tracker = Tracker(stream_name, client=kinesis, flush_at_exit=False, raise_on_failure=False, sleep=sleep)
    tracker.requeue([Record(r.sequence_number, r.partition_key, r.data) for r in records])
    result = tracker.flush()
    return [f"{failed.record.event_id}: {failed.error_code} {failed.error_message}" for failed in result.failed]


@dataclass
class LostRange:
    batch: DiscardedBatch
    reason: str


@dataclass
class EvaluatorRedrive:
    """What a redrive of the evaluator DLQ did (or, dry, would do)."""

    messages: int = 0
    """DLQ messages read."""
    redriven: int = 0
    """Messages whose every record was put back, and which were deleted (in a dry run: would be)."""
    records: int = 0
    """Records put back on the stream (in a dry run: that would be)."""
    lost: list[LostRange] = field(default_factory=list)
    """Ranges (or parts) no longer on the stream; their messages are kept."""
    unreadable: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Messages whose records could not all be put back; kept, for another run."""

    @property
    def complete(self) -> bool:
        return not (self.lost or self.unreadable or self.failed)


def _receive(sqs: Any, queue_url: str, limit: int | None, wait_seconds: int) -> Iterator[dict[str, Any]]:
    """Every message of the queue once (up to ``limit``), each hidden while it is worked on."""
    seen: set[str] = set()
    while limit is None or len(seen) < limit:
        count = RECEIVE_LIMIT if limit is None else min(RECEIVE_LIMIT, limit - len(seen))
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=VISIBILITY_SECONDS,
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive_evaluator_dlq(
    sqs: Any,
    kinesis: Any,
    queue_url: str,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    wait_seconds: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda _: None,
) -> EvaluatorRedrive:
    """Put the records of every range in the evaluator DLQ back on the stream (see the module).

    A message is deleted only after all its records are back; one that is unreadable, whose
    records could not all be put, or whose range is partly or wholly gone stays in the queue
    (visible again when the run ends). A dry run reads and fetches, and changes nothing.
    """
    report = EvaluatorRedrive()
    kept: list[dict[str, Any]] = []
    for message in _receive(sqs, queue_url, limit, wait_seconds):
        report.messages += 1
        try:
            batch = DiscardedBatch.from_body(message["Body"])
        except UnreadableMessage as exc:
            report.unreadable.append(f"message {message['MessageId']}: {exc}")
            kept.append(message)
            continue
        try:
            fetched = fetch(kinesis, batch, sleep)
        except UnreadableRange as exc:
            report.failed.append(str(exc))
            kept.append(message)
            continue
        if fetched.lost:
            report.lost.append(LostRange(batch, fetched.lost))
        errors = [] if dry_run else put_back(kinesis, batch.stream_name, fetched.records, sleep)
        if errors:
            report.failed.append(f"{batch.describe()}: {len(errors)} record(s) not put back, e.g. {errors[0]}")
        report.records += len(fetched.records) - len(errors)
        progress(f"{batch.describe()}: {len(fetched.records) - len(errors)} record(s) back")
        if fetched.lost or errors or dry_run:
            kept.append(message)
            if not (fetched.lost or errors):
                report.redriven += 1
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        report.redriven += 1
    _release(sqs, queue_url, kept)
    return report


def _release(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]]) -> None:
    """Make kept messages visible again at once, for a person or the next run."""
    for start in range(0, len(messages), RECEIVE_LIMIT):
        chunk = messages[start : start + RECEIVE_LIMIT]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ],
        )
