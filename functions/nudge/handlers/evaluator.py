"""The evaluator Lambda: a Kinesis batch in, a partial batch response out.

It answers Lambda's partial-batch contract itself instead of using Powertools' BatchProcessor:
that processor calls a function per record, while evaluation needs the whole batch at once
(group by customer, one BatchGetItem, one write per customer). The response names only the
earliest failed record, which is what a stream consumer must do to keep per-shard order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.dynamodb_state import DynamoDBStateStore
from ..adapters.scheduler import MIN_LEAD_MS, EventBridgeTimerScheduler
from ..adapters.sqs import SqsDeadLetters, SqsFiringSink
from ..config import EvaluatorConfig
from ..engine import Engine, compile_rules, load_rules_or_raise
from ..evaluator import BatchEvaluator, BatchReport, InputRecord
from ..evaluator.collector import tune_collector

logger = Logger(service="nudge-evaluator")
metrics = Metrics(namespace="Nudge", service="evaluator")
tracer = Tracer(service="nudge-evaluator")


def build_evaluator(
    config: EvaluatorConfig,
    session: Any = None,
    clock: Callable[[], float] = time.time,
    timer_min_lead_ms: int = MIN_LEAD_MS,
) -> BatchEvaluator:
    """Compile the rules and wire the adapters (once per cold start); tests and replays pin ``clock``."""
    session = session or boto3.session.Session()
    engine = Engine(compile_rules(load_rules_or_raise(config.rules_dir)))
    return BatchEvaluator(
        engine=engine,
        store=DynamoDBStateStore(session.client("dynamodb"), config.state_table),
        scheduler=timer_scheduler(config, session, clock, timer_min_lead_ms),
        sink=SqsFiringSink(session.client("sqs"), config.firings_queue_url),
        dead_letters=SqsDeadLetters(session.client("sqs"), config.rejected_queue_url),
        ttl_margin_ms=config.state_ttl_margin_ms,
    )


def timer_scheduler(
    config: EvaluatorConfig, session: Any, clock: Callable[[], float] = time.time, min_lead_ms: int = MIN_LEAD_MS
) -> EventBridgeTimerScheduler:
    """The Scheduler adapter for this stack's group, stream, role and dead-letter queue."""
    return EventBridgeTimerScheduler(
        session.client("scheduler"),
        group_name=config.schedule_group,
        stream_arn=config.events_stream_arn,
        role_arn=config.scheduler_role_arn,
        dead_letter_arn=config.timers_dlq_arn,
        retry_attempts=config.timer_retry_attempts,
        max_event_age_seconds=config.timer_max_event_age_seconds,
        clock=clock,
        min_lead_ms=min_lead_ms,
    )


@lru_cache(maxsize=1)
def evaluator() -> BatchEvaluator:
    return build_evaluator(EvaluatorConfig.from_env())


def records_of(event: dict[str, Any]) -> list[InputRecord]:
    return [
        InputRecord(
            sequence_number=record.kinesis.sequence_number,
            partition_key=record.kinesis.partition_key,
            data=record.kinesis.data_as_bytes(),
            arrival_ms=int(record.kinesis.approximate_arrival_timestamp * 1000),
        )
        for record in KinesisStreamEvent(event).records
    ]


def publish(report: BatchReport) -> None:
    """Batch counts as EMF metrics; rejected records are logged by reason only, never by content."""
    for name, value in (
        ("Records", report.records),
        ("RejectedRecords", report.rejected),
        ("SkippedEvents", report.skipped),
        ("Customers", report.customers),
        ("Firings", report.firings),
        ("TimersSet", report.timers_set),
        ("TimersCancelled", report.timers_cancelled),
        ("StateWrites", report.writes),
        ("StateConflicts", report.conflicts),
        ("FailedCustomers", report.failed_customers),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for rejected in report.rejections:
        logger.warning(
            "record rejected", extra={"reason": rejected.reason, "sequence": rejected.record.sequence_number}
        )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = evaluator().evaluate(records_of(event), wall=int(time.time() * 1000))
    publish(report)
    if report.failed_sequence_number is not None:
        logger.warning("batch partially failed", extra={"resume_from": report.failed_sequence_number})
    return report.response()


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    evaluator()  # compile rules and create clients during init, not on the first batch
    tune_collector()
