"""The firings queue's consumer until delivery channels land: it records each firing in the log.

It logs what was decided (rule, channel, firing id), never who it concerns or their traits.
Messages it cannot read fail individually and reach the firings DLQ after the queue's retries.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="nudge-firings")
metrics = Metrics(namespace="Nudge", service="firings")
tracer = Tracer(service="nudge-firings")
processor = BatchProcessor(event_type=EventType.SQS)


def record_firing(record: SQSRecord) -> None:
    firing = json.loads(record.body)
    logger.info(
        "firing received",
        extra={"rule": firing["rule"], "channel": firing["channel"], "firing_id": firing["firing_id"]},
    )
    metrics.add_metric(name="FiringsReceived", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_firing, processor=processor, context=context)
