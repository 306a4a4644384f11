"""The harness itself: faults really (not) execute, moto keeps virtual time, the emulations follow AWS.

If these fail, the fault suite's verdicts mean nothing, so they run first and fast (toy handlers,
a few records).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from nudge.settings import StackSettings, queue_settings
from tests.faults.crash import ProcessDeath
from tests.faults.esm import KinesisEventSourceMapping, MappingSettings
from tests.faults.inject import Fault, FaultInjector
from tests.faults.lambda_runtime import Function
from tests.faults.ledger import MotoLedger
from tests.faults.moto_stack import MotoStack, moto_stack
from tests.faults.sqs_consumer import SqsEventSource
from tests.faults.virtual_time import InvocationTimeout, VirtualTime

START = 1_795_680_000_000
ONCE = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass
class Env:
    stack: MotoStack
    time: VirtualTime
    injector: FaultInjector
    ledger: MotoLedger


@pytest.fixture
def env() -> Iterator[Env]:
    with contextlib.ExitStack() as exits:
        stack = exits.enter_context(moto_stack(StackSettings(stream_mode="provisioned", shard_count=1), "rules"))
        time = VirtualTime(START)
        exits.enter_context(time.install())
        injector = FaultInjector(time, seed=7)
        exits.enter_context(injector.install())
        ledger = MotoLedger(time.now_ms)
        exits.enter_context(ledger.install())
        yield Env(stack, time, injector, ledger)


@dataclass
class Holder:
    """Stands for a wired adapter: faults find clients inside objects, never on sessions."""

    client: Any


def _queue(env: Env) -> tuple[str, str]:
    url = env.stack.resources.config.rejected_queue_url
    return url, env.stack.queue_name(url)


def _entries(count: int) -> list[dict[str, str]]:
    return [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(count)]


# -- injection -------------------------------------------------------------------------------------


def test_a_fault_not_executed_never_reaches_moto(env: Env):
    url, name = _queue(env)
    holder = Holder(env.stack.product.client("sqs", config=ONCE))
    assert env.injector.attach(holder, [Fault("sqs", ("SendMessageBatch",), "InternalFailure", 500)]) == 1
    with pytest.raises(ClientError) as raised:
        holder.client.send_message_batch(QueueUrl=url, Entries=_entries(2))
    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert env.ledger.sent_to(name) == [] and env.ledger.held_by(name) == []


def test_a_fault_executed_reaches_moto_and_the_answer_is_lost(env: Env):
    url, name = _queue(env)
    holder = Holder(env.stack.product.client("sqs", config=ONCE))
    env.injector.attach(holder, [Fault("sqs", ("SendMessageBatch",), "InternalFailure", 500, executed=True)])
    with pytest.raises(ClientError):
        holder.client.send_message_batch(QueueUrl=url, Entries=_entries(2))
    assert sorted(m.body for m in env.ledger.held_by(name)) == ["m0", "m1"]  # moto executed it, once


def test_botocore_retries_an_executed_fault_and_each_attempt_executes(env: Env):
    url, name = _queue(env)
    holder = Holder(
        env.stack.product.client("sqs", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    )
    env.injector.attach(holder, [Fault("sqs", ("SendMessageBatch",), "InternalFailure", 500, executed=True)])
    before = env.time.now_ms()
    with pytest.raises(ClientError):
        holder.client.send_message_batch(QueueUrl=url, Entries=_entries(1))
    assert [m.body for m in env.ledger.held_by(name)] == ["m0", "m0", "m0"]
    assert env.time.now_ms() > before  # the backoff between attempts passed in virtual time


def test_an_executed_timeout_reaches_moto(env: Env):
    url, name = _queue(env)
    holder = Holder(env.stack.product.client("sqs", config=ONCE))
    env.injector.attach(holder, [Fault("sqs", ("SendMessage",), "", 0, executed=True, timeout=True)])
    with pytest.raises(ReadTimeoutError):
        holder.client.send_message(QueueUrl=url, MessageBody="late")
    assert [m.body for m in env.ledger.held_by(name)] == ["late"]


def test_failed_entries_are_exactly_the_ones_not_sent(env: Env):
    url, name = _queue(env)
    holder = Holder(env.stack.product.client("sqs", config=ONCE))
    env.injector.attach(holder, [Fault("sqs", ("SendMessageBatch",), "InternalError", 500, 0.5, kind="failed_entries")])
    response = holder.client.send_message_batch(QueueUrl=url, Entries=_entries(10))
    failed = {entry["Id"] for entry in response.get("Failed", [])}
    sent = {entry["Id"] for entry in response["Successful"]}
    assert failed and sent and failed | sent == {str(i) for i in range(10)}
    assert sorted(m.body for m in env.ledger.held_by(name)) == sorted(f"m{i}" for i in sent)


def test_unprocessed_keys_are_moved_out_of_the_answer(env: Env):
    table = env.stack.resources.config.state_table
    dynamodb = env.stack.product.client("dynamodb", config=ONCE)
    for i in range(10):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"c{i}"}, "version": {"N": "1"}})
    env.injector.attach(
        Holder(dynamodb),
        [
            Fault(
                "dynamodb",
                ("BatchGetItem",),
                "ProvisionedThroughputExceededException",
                400,
                0.5,
                kind="unprocessed_keys",
            )
        ],
    )
    keys = [{"pk": {"S": f"c{i}"}} for i in range(10)]
    response = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys}})
    got = {item["pk"]["S"] for item in response["Responses"][table]}
    unprocessed = {key["pk"]["S"] for key in response["UnprocessedKeys"][table]["Keys"]}
    assert got and unprocessed and got | unprocessed == {f"c{i}" for i in range(10)} and not got & unprocessed


def test_a_window_limits_a_fault_to_its_virtual_time(env: Env):
    url, name = _queue(env)
    holder = Holder(env.stack.product.client("sqs", config=ONCE))
    env.injector.attach(
        holder, [Fault("sqs", ("SendMessage",), "InternalFailure", 500, window=(START, START + 60_000))]
    )
    with pytest.raises(ClientError):
        holder.client.send_message(QueueUrl=url, MessageBody="during")
    env.time.advance_to(START + 60_000)
    holder.client.send_message(QueueUrl=url, MessageBody="after")
    assert [m.body for m in env.ledger.held_by(name)] == ["after"]


# -- virtual time ----------------------------------------------------------------------------------


def test_moto_sqs_visibility_and_receive_counts_run_on_the_virtual_clock(env: Env):
    url, _ = _queue(env)
    sqs = env.stack.service.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, AttributeNames=["All"])["Messages"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    env.time.advance_to(START + 31_000)
    [again] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert (first[0]["Attributes"]["ApproximateReceiveCount"], again["Attributes"]["ApproximateReceiveCount"]) == (
        "1",
        "2",
    )


def test_kinesis_arrivals_are_stamped_in_virtual_time(env: Env):
    kinesis = env.stack.service.client("kinesis")
    stream = env.stack.resources.stream_name
    with env.time.stamped(START - 5_000):
        kinesis.put_record(StreamName=stream, Data=b"{}", PartitionKey="c")
    [shard] = kinesis.list_shards(StreamName=stream)["Shards"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    [record] = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert round(record["ApproximateArrivalTimestamp"].timestamp() * 1000) == START - 5_000


def test_a_sleep_past_the_deadline_ends_the_invocation(env: Env):
    with pytest.raises(InvocationTimeout), env.time.invocation(1_000):
        env.time.sleep(0.5)
        env.time.sleep(0.6)
    assert env.time.now_ms() == START + 1_000


def test_a_process_death_is_no_exception():
    with pytest.raises(ProcessDeath):
        try:
            raise ProcessDeath("here")
        except Exception:  # what Nudge's code may do: it must not catch a death
            pytest.fail("ProcessDeath was caught as an Exception")


# -- the Kinesis mapping -------------------------------------------------------------------------


def _mapping(env: Env, handler: Any, **settings: Any) -> KinesisEventSourceMapping:
    base = {"batch_size": 10, "batching_window_ms": 1_000, "retry_attempts": 2, "max_record_age_ms": 3_600_000}
    return KinesisEventSourceMapping(
        kinesis=env.stack.service.client("kinesis"),
        sqs=env.stack.service.client("sqs"),
        stream_name=env.stack.resources.stream_name,
        stream_arn=env.stack.resources.config.events_stream_arn,
        function=Function("toy", handler, env.time, 60_000),
        settings=MappingSettings(
            bisect_on_error=True, filters=('{"data":{"k":[{"exists":true}]}}',), **{**base, **settings}
        ),
        on_failure_url=env.stack.resources.evaluator_dlq_url,
        time=env.time,
    )


def _put(env: Env, *values: str) -> None:
    kinesis = env.stack.service.client("kinesis")
    for value in values:
        kinesis.put_record(
            StreamName=env.stack.resources.stream_name, Data=json.dumps({"k": value}).encode(), PartitionKey=value
        )


def _values(event: dict[str, Any]) -> list[str]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["k"] for r in event["Records"]]


def _run(env: Env, mapping: KinesisEventSourceMapping, until_ms: int) -> None:
    while (wake := mapping.next_wake()) is not None and wake <= until_ms:
        env.time.advance_to(wake)
        mapping.step(env.time.now_ms())


def _discards(env: Env) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in env.ledger.held_by(env.stack.queue_name(env.stack.resources.evaluator_dlq_url))]


def test_the_mapping_resumes_from_the_reported_failure(env: Env):
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        values = _values(event)
        calls.append(values)
        if len(calls) == 1:  # the third record's customer failed: resume there
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["kinesis"]["sequenceNumber"]}]}
        return {"batchItemFailures": []}

    _put(env, "a", "b", "c", "d")
    mapping = _mapping(env, handler)
    _run(env, mapping, START + 60_000)
    assert calls == [["a", "b", "c", "d"], ["c", "d"]]
    assert len(mapping.delivered) == 4 and _discards(env) == []


def test_a_function_error_bisects_and_a_record_that_keeps_failing_is_discarded_with_metadata(env: Env):
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        values = _values(event)
        calls.append(values)
        if "bad" in values:
            raise ProcessDeath("poison")
        return {}

    _put(env, "a", "bad", "c", "d")
    mapping = _mapping(env, handler)
    _run(env, mapping, START + 600_000)
    assert calls[:3] == [["a", "bad", "c", "d"], ["a", "bad"], ["a"]]
    assert calls.count(["bad"]) == 3  # the first try and 2 retries (bisecting spent none)
    [record] = _discards(env)
    info = record["KinesisBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (1, "2", "2")
    assert {"shardId", "streamArn", "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"} <= set(info)
    assert "data" not in json.dumps(record)  # metadata only, never the records
    assert sorted(seq for _, seq in mapping.delivered) == ["1", "3", "4"]


def test_records_past_the_maximum_age_are_discarded(env: Env):
    def handler(_event: dict[str, Any], _: Any) -> dict[str, Any]:
        raise RuntimeError("down")

    _put(env, "a")
    mapping = _mapping(env, handler, retry_attempts=-1, max_record_age_ms=120_000)
    _run(env, mapping, START + 600_000)
    [record] = _discards(env)
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert mapping.delivered == {}


def test_the_filters_drop_records_before_batching(env: Env):
    seen: list[list[str]] = []
    kinesis = env.stack.service.client("kinesis")
    kinesis.put_record(StreamName=env.stack.resources.stream_name, Data=b"not json", PartitionKey="x")
    _put(env, "a")
    mapping = _mapping(env, lambda event, _: seen.append(_values(event)) or {})
    _run(env, mapping, START + 60_000)
    assert seen == [["a"]] and len(mapping.filtered) == 1


# -- the SQS mapping -------------------------------------------------------------------------------


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue_after_max_receive_count(env: Env):
    resources = env.stack.resources
    attempts: list[str] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        record = event["Records"][0]
        attempts.append(record["attributes"]["ApproximateReceiveCount"])
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

    sqs = env.stack.service.client("sqs")
    sqs.send_message(QueueUrl=resources.firings_queue_url, MessageBody="{}")
    source = SqsEventSource(
        sqs, resources.firings_queue_url, env.stack.sqs_queue(resources.firings_queue_url),
        Function("toy", handler, env.time, 60_000), env.time,
    )  # fmt: skip
    while (wake := source.next_wake()) is not None:
        env.time.advance_to(wake)
        source.step(env.time.now_ms())
    max_receives = queue_settings(env.stack.settings).firings.redrive.max_receive_count  # type: ignore[union-attr]
    assert attempts == [str(n) for n in range(1, max_receives + 1)]
    [parked] = env.ledger.held_by(env.stack.queue_name(resources.firings_dlq_url))
    assert parked.body == "{}"
