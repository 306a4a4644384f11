"""The delivery Lambda: ``nudge.delivery.deliverer.Deliverer`` per SQS message, behind Powertools. A message
that raised ``RetryLater`` is a batch item failure and stays queued; each outcome is a metric and a log line."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..config import DeliveryConfig
from ..delivery.deliverer import Deliverer, RetryLater
from ..wiring.delivery import build_deliverer

logger = Logger(service="nudge-delivery")
metrics = Metrics(namespace="Nudge", service="delivery")
tracer = Tracer(service="nudge-delivery")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
"""A batch whose every message is retried later is a partial response, not a function error: a
throttled hour must not look like a crashing function to the alarms."""


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    return build_deliverer(DeliveryConfig.from_env())


START_BUDGET_MS = 35_000
"""A message is started only with this much of the invocation left: its slowest path (throttled
table writes and a provider call at their timeouts) must end before the function's 60 s do. A
timeout after the provider call started would leave the outcome unknown."""


def deliver_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < START_BUDGET_MS:
        raise RetryLater("not started: too little of the invocation left")  # untouched: back on the queue
    attempt = int(record.attributes.approximate_receive_count or 1)
    attributes = {
        name: value.get("stringValue") or "" for name, value in (record.get("messageAttributes") or {}).items()
    }
    result = deliverer().handle(record.body, attempt, record.receipt_handle, attributes)
    status = "malformed" if result is None else result.status.value
    metrics.add_metric(name=f"Delivery.{status}", unit=MetricUnit.Count, value=1)
    if result is not None:
        logger.info("delivery", extra={"rule": result.firing.rule, "channel": result.channel, "status": status,
                                       "firing_id": result.firing.firing_id, "reason": result.reason})  # fmt: skip


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=deliver_record, processor=processor, context=context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    deliverer()
