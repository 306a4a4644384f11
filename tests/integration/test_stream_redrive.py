"""``nudge redrive --evaluator`` against moto: ranges the mapping gave up on go back on the stream.

The on-failure messages are built the way Lambda writes them (``failure_record``, the documented
``KinesisBatchInfo``); the records are real ``PutRecords`` records, read back by sequence number.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.kinesis.models import kinesis_backends

from nudge.adapters.stream_redrive import (
    DiscardedBatch,
    UnreadableMessage,
    UnreadableRange,
    failure_record,
    fetch,
    redrive_evaluator_dlq,
)
from nudge.cli.main import main
from nudge.clock import VirtualClock
from nudge.evaluator import InputRecord
from nudge.local.provision import LocalResources, provision
from nudge.settings import StackSettings
from tests.support import at

from .conftest import REGION, Harness, Stream
from .test_evaluator import cart, event


def shard_records(session: boto3.session.Session, stream: str) -> dict[str, list[InputRecord]]:
    """Every record of every shard, oldest first."""
    kinesis = session.client("kinesis")
    found: dict[str, list[InputRecord]] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        raw = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        found[shard["ShardId"]] = [
            InputRecord(
                r["SequenceNumber"],
                r["PartitionKey"],
                r["Data"],
                int(r["ApproximateArrivalTimestamp"].timestamp() * 1000),
            )
            for r in raw
        ]
    return found


def park(session: boto3.session.Session, resources: LocalResources, shard_id: str, records: list[InputRecord]) -> None:
    """What Lambda sends the on-failure destination when it gives up on ``records``."""
    body = failure_record(
        stream_arn=resources.config.events_stream_arn, shard_id=shard_id, records=records, timestamp_ms=at("22:05")
    )
    session.client("sqs").send_message(QueueUrl=resources.evaluator_dlq_url, MessageBody=json.dumps(body))


def parked(session: boto3.session.Session, resources: LocalResources) -> list[dict[str, Any]]:
    """The evaluator DLQ's messages, visible now (received with no visibility timeout, so left there)."""
    return (
        session.client("sqs")
        .receive_message(QueueUrl=resources.evaluator_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        .get("Messages", [])
    )


def keyed(records: list[InputRecord]) -> Counter[tuple[str, bytes]]:
    return Counter((record.partition_key, record.data) for record in records)


@pytest.fixture
def stream(session, resources) -> Stream:  # type: ignore[no-untyped-def]
    events = [
        event("product_viewed", f"10:{minute:02d}", f"c-{minute % 5}", sku=f"SKU-{minute}") for minute in range(12)
    ]
    stream = Stream(session, resources.stream_name)
    stream.put(*events)
    assert len(stream.read()) == 12  # the originals, read: from here on `read` returns only what comes back
    return stream


def busiest(session: boto3.session.Session, resources: LocalResources) -> tuple[str, list[InputRecord]]:
    shard_id, records = max(shard_records(session, resources.stream_name).items(), key=lambda item: len(item[1]))
    assert len(records) >= 3
    return shard_id, records


def test_a_discarded_range_comes_back_whole_once_and_its_message_is_deleted(session, resources, stream, capsys):  # type: ignore[no-untyped-def]
    shard_id, records = busiest(session, resources)
    discarded = records[1:]  # not the shard's first record: the range is found by sequence number
    park(session, resources, shard_id, discarded)

    assert main(["redrive", "--evaluator", "--region", REGION]) == 0
    back = stream.read()
    assert keyed(back) == keyed(discarded)  # same partition keys, same bytes, each once
    assert [r.data for r in back] == [r.data for r in discarded]  # and, one shard, in order
    assert parked(session, resources) == []
    out = capsys.readouterr().out
    assert "read 1 message(s)" in out and f"put {len(discarded)} record(s) back" in out and "deleted 1" in out

    assert main(["redrive", "--evaluator", "--region", REGION]) == 0  # nothing left to do
    assert stream.read() == []
    assert "read 0 message(s)" in capsys.readouterr().out


def test_a_dry_run_reports_and_changes_nothing(session, resources, stream, capsys):  # type: ignore[no-untyped-def]
    shard_id, records = busiest(session, resources)
    park(session, resources, shard_id, records)
    park(session, resources, shard_id, records[:1])
    assert main(["redrive", "--evaluator", "--dry-run", "--max", "1", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert "read 1 message(s)" in out and "delete 1 message(s); changed nothing" in out
    assert main(["redrive", "--evaluator", "--dry-run", "--region", REGION]) == 0
    assert f"would put {len(records) + 1} record(s) back" in capsys.readouterr().out
    assert stream.read() == []
    assert len(parked(session, resources)) == 2  # still there, and visible again at once


def trim(resources: LocalResources, shard_id: str, records: list[InputRecord]) -> None:
    """What the stream's retention does to old records."""
    shard = kinesis_backends[DEFAULT_ACCOUNT_ID][REGION].streams[resources.stream_name].shards[shard_id]
    for record in records:
        del shard.records[int(record.sequence_number)]


def test_a_range_past_the_stream_retention_is_reported_lost_and_its_message_kept(session, resources, stream, capsys):  # type: ignore[no-untyped-def]
    shard_id, records = busiest(session, resources)
    gone, partly = records[:1], records[1:]
    park(session, resources, shard_id, gone)
    park(session, resources, shard_id, partly)
    trim(resources, shard_id, [*gone, partly[0]])

    assert main(["redrive", "--evaluator", "--region", REGION]) == 1
    out, err = capsys.readouterr()
    assert keyed(stream.read()) == keyed(partly[1:])  # what is still there is put back...
    assert "read 2 message(s)" in out and "deleted 0" in out
    # ...and each loss is named by shard and sequence numbers, its message kept for a person
    assert f"lost: {shard_id} sequence numbers {gone[0].sequence_number} to {gone[0].sequence_number}" in err
    assert "none of it is on the stream any more" in err
    assert f"sequence numbers {partly[0].sequence_number} to {partly[-1].sequence_number}" in err
    assert f"its records before {partly[1].sequence_number} are no longer on the stream" in err
    assert len(parked(session, resources)) == 2


class Refusing:
    """A Kinesis client whose PutRecords refuses every entry but the first, ``times`` times."""

    def __init__(self, client: Any, times: int) -> None:
        self.client, self.times, self.calls = client, times, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_records(self, **params: Any) -> dict[str, Any]:
        entries = params["Records"]
        self.calls.append(len(entries))
        if not self.times or len(entries) == 1:
            return self.client.put_records(**params)
        self.times -= 1
        first = self.client.put_records(**{**params, "Records": entries[:1]})
        refused = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}]
        return {"FailedRecordCount": len(entries) - 1, "Records": first["Records"] + refused * (len(entries) - 1)}


def test_entries_put_records_refuses_are_retried_and_the_message_waits_for_all(session, resources, stream):  # type: ignore[no-untyped-def]
    shard_id, records = busiest(session, resources)
    park(session, resources, shard_id, records)
    kinesis = Refusing(session.client("kinesis"), times=2)
    report = redrive_evaluator_dlq(
        session.client("sqs"), kinesis, resources.evaluator_dlq_url, wait_seconds=0, sleep=lambda _: None
    )
    assert report.complete and report.records == len(records) and report.redriven == 1
    assert keyed(stream.read()) == keyed(records)  # every record once: only the refused entries went again
    assert kinesis.calls == [len(records), len(records) - 1, len(records) - 2]
    assert parked(session, resources) == []


def test_records_that_cannot_be_put_back_keep_their_message(session, resources, stream):  # type: ignore[no-untyped-def]
    shard_id, records = busiest(session, resources)
    park(session, resources, shard_id, records)
    broken = session.client("kinesis")

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutRecords")

    broken.meta.events.register("before-parameter-build.kinesis.PutRecords", refuse)
    report = redrive_evaluator_dlq(
        session.client("sqs"), broken, resources.evaluator_dlq_url, wait_seconds=0, sleep=lambda _: None
    )
    assert not report.complete and report.redriven == 0 and report.records == 0
    assert "AccessDeniedException" in report.failed[0]
    assert len(parked(session, resources)) == 1


def test_a_message_that_is_not_an_on_failure_record_is_kept_with_the_reason(session, resources, capsys):  # type: ignore[no-untyped-def]
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=resources.evaluator_dlq_url, MessageBody=json.dumps({"shard": "s", "first": "1"}))
    assert main(["redrive", "--evaluator", "--region", REGION]) == 1
    assert "not a Kinesis on-failure record: KeyError: 'KinesisBatchInfo'" in capsys.readouterr().err
    assert len(parked(session, resources)) == 1
    with pytest.raises(UnreadableMessage, match="after"):
        DiscardedBatch.from_body(
            json.dumps(
                {
                    "KinesisBatchInfo": {
                        "shardId": "shardId-000000000001",
                        "startSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
                        "endSequenceNumber": "9",  # after the start as text, before it as a number
                        "streamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/nudge-events",
                    }
                }
            )
        )


def test_the_documented_invocation_record_is_read() -> None:
    """The example of Lambda's developer guide ("Retain discarded batch records ... Kinesis")."""
    body = {
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2019-11-14T00:38:06.021Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000001",
            "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
            "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
            "batchSize": 500,
            "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/mystream",
        },
    }
    batch = DiscardedBatch.from_body(json.dumps(body))
    assert (batch.stream_name, batch.shard_id, batch.size, batch.condition) == (
        "mystream",
        "shardId-000000000001",
        500,
        "RetryAttemptsExhausted",
    )
    assert batch.start.endswith("704722") and batch.end.endswith("495186")


def test_a_discarded_event_fires_once_after_the_redrive_even_where_the_range_was_processed(session, capsys):  # type: ignore[no-untyped-def]
    """The real evaluator over redriven records: one shard; c-2's Scheduler calls fail until the
    mapping gives up on the batch from c-2's first record, so the range also holds c-3's records,
    which the failed attempts had already processed (a partial batch failure)."""
    solo = provision(session, StackSettings(prefix="solo", stream_mode="provisioned", shard_count=1), rules_dir="rules")
    clock = VirtualClock(at("10:05"))
    harness = Harness(session, solo, clock)

    def refuse(params, **_):  # type: ignore[no-untyped-def]
        if params["Target"]["KinesisParameters"]["PartitionKey"] == "c-2":  # c-2's timers only
            raise ClientError(
                {"Error": {"Code": "ServiceQuotaExceededException", "Message": "quota"}}, "CreateSchedule"
            )

    scheduler = harness.evaluator.scheduler.client  # type: ignore[attr-defined]
    scheduler.meta.events.register("before-parameter-build.scheduler.CreateSchedule", refuse)
    harness.stream.put(*cart("c-1"), *cart("c-2"), *cart("c-3"))
    records = harness.stream.read()
    c2_first = next(r for r in records if r.partition_key == "c-2")
    discarded = records[records.index(c2_first) :]
    assert harness.evaluate(records).failed_sequence_number == c2_first.sequence_number
    for _ in range(3):  # retried from the failed record (in AWS until max_record_age), failing every time
        assert harness.evaluate(discarded).failed_sequence_number == c2_first.sequence_number
    assert {r.partition_key for r in discarded} == {"c-2", "c-3"}
    [(shard_id, _)] = shard_records(session, solo.stream_name).items()
    park(session, solo, shard_id, discarded)

    # Twelve hours on, the quota is raised. The shard moved on past the range: c-1's and c-3's timers fired.
    scheduler.meta.events.unregister("before-parameter-build.scheduler.CreateSchedule", refuse)
    clock.set(at("22:05"))
    assert harness.fire_due_timers() == 2
    harness.evaluate()
    assert sorted(f["customer_id"] for f in harness.firings()) == ["c-1", "c-3"]
    assert harness.item("c-2") is None  # c-2's events were never applied: lost without the redrive

    assert main(["redrive", "--evaluator", "--prefix", "solo", "--region", REGION]) == 0
    assert f"put {len(discarded)} record(s) back" in capsys.readouterr().out
    redriven = harness.stream.read()
    assert keyed(redriven) == keyed(discarded)
    harness.evaluate(redriven)
    clock.set(at("22:07"))
    harness.fire_due_timers()
    harness.evaluate()
    [firing] = harness.firings()  # c-2 fires, once, as of its due time; c-3's duplicates changed nothing
    assert (firing["customer_id"], firing["rule"], firing["fired_at"]) == (
        "c-2",
        "cart_abandonment",
        "2026-11-22T11:05:00Z",
    )

    # A second redrive of the same range (a person ran it twice, or it crashed before deleting) is a no-op.
    harness.stream.put(*[(r.partition_key, r.data) for r in discarded])
    harness.evaluate()
    clock.set(at("23:00"))
    harness.fire_due_timers()
    harness.evaluate()
    assert harness.firings() == []


def test_a_shard_that_keeps_answering_with_nothing_is_a_failure_not_a_loss() -> None:
    """Kinesis may return empty reads while behind; past a bound the range is kept, not called lost."""

    class Behind:
        exceptions = boto3.session.Session(region_name=REGION).client("kinesis").exceptions

        def get_shard_iterator(self, **_: Any) -> dict[str, str]:
            return {"ShardIterator": "it"}

        def get_records(self, **_: Any) -> dict[str, Any]:
            return {"Records": [], "NextShardIterator": "it", "MillisBehindLatest": 3_600_000}

    batch = DiscardedBatch("arn:aws:kinesis:eu-west-1:123456789012:stream/nudge-events", "shardId-0", "1", "9")
    with pytest.raises(UnreadableRange, match="reads in a row returned nothing, 3600000 ms behind"):
        fetch(Behind(), batch, sleep=lambda _: None)
