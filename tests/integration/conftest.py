"""moto in-process: the stack's resources created through the real APIs, and stream helpers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from nudge.clock import VirtualClock
from nudge.evaluator import BatchEvaluator, InputRecord
from nudge.local.provision import LocalResources, provision
from nudge.local.scheduler_driver import ScheduleDriver
from nudge.settings import StackSettings
from nudge.wiring.evaluator import build_evaluator

REGION = "eu-west-1"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def resources(session: boto3.session.Session) -> LocalResources:
    return provision(session, StackSettings(stream_mode="provisioned", shard_count=2), rules_dir="rules")


class Stream:
    """Puts records with the SDK's API (``put_records``) and reads them back like a poller."""

    def __init__(self, session: boto3.session.Session, name: str) -> None:
        self.client = session.client("kinesis")
        self.name = name
        shards = self.client.list_shards(StreamName=name)["Shards"]
        self.iterators = {
            shard["ShardId"]: self.client.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def put(self, *items: dict[str, Any] | tuple[str, bytes]) -> None:
        entries = []
        for item in items:
            if isinstance(item, tuple):
                partition_key, data = item
            else:
                partition_key, data = item["customer_id"], json.dumps(item).encode()
            entries.append({"PartitionKey": partition_key, "Data": data})
        response = self.client.put_records(StreamName=self.name, Records=entries)
        assert response["FailedRecordCount"] == 0

    def read(self) -> list[InputRecord]:
        """Every record put since the last read, shard by shard (a batch per shard in AWS)."""
        records: list[InputRecord] = []
        for shard_id, iterator in self.iterators.items():
            response = self.client.get_records(ShardIterator=iterator, Limit=10_000)
            self.iterators[shard_id] = response["NextShardIterator"]
            records += [
                InputRecord(
                    sequence_number=r["SequenceNumber"],
                    partition_key=r["PartitionKey"],
                    data=r["Data"],
                    arrival_ms=int(r["ApproximateArrivalTimestamp"].timestamp() * 1000),
                )
                for r in response["Records"]
            ]
        return records


class Harness:
    """The evaluator wired to moto, with the stream, clock, schedule driver and queues at hand."""

    def __init__(self, session: boto3.session.Session, resources: LocalResources, clock: VirtualClock) -> None:
        self.session = session
        self.resources = resources
        self.clock = clock
        self.stream = Stream(session, resources.stream_name)
        self.evaluator: BatchEvaluator = build_evaluator(resources.config, session, clock)
        self.schedules = ScheduleDriver(session, resources.config.schedule_group)
        self.sqs = session.client("sqs")
        self.dynamodb = session.client("dynamodb")

    def rebuild(self, rules_dir: str) -> None:
        config = self.resources.config.model_copy(update={"rules_dir": rules_dir})
        self.evaluator = build_evaluator(config, self.session, self.clock)

    def evaluate(self, records: list[InputRecord] | None = None):  # type: ignore[no-untyped-def]
        return self.evaluator.evaluate(self.stream.read() if records is None else records, self.clock.now_ms())

    def fire_due_timers(self) -> int:
        return len(self.schedules.fire_due(self.clock.now_ms()))

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def firings(self) -> list[dict[str, Any]]:
        return self.drain(self.resources.firings_queue_url)

    def rejected(self) -> list[dict[str, Any]]:
        return self.drain(self.resources.config.rejected_queue_url)

    def item(self, customer_id: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=self.resources.config.state_table, Key={"pk": {"S": customer_id}}).get(
            "Item"
        )


class CallCounter:
    """Counts AWS API calls through botocore's event hooks: (service, operation) -> calls."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        session.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[(model.service_model.service_name, model.name)] += 1

    def reset(self) -> None:
        self.calls.clear()
