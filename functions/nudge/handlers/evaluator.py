"""The evaluator Lambda: a Kinesis batch in, a partial batch response out. Not Powertools' BatchProcessor
(one call per record): evaluation needs the whole batch (grouped by customer, one read, one write each),
and the response names the earliest failed record only, as a stream consumer must to keep shard order."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.kinesis import kinesis_records
from ..clock import WALL_CLOCK
from ..config import EvaluatorConfig
from ..evaluator import BatchEvaluator
from ..evaluator.collector import tune_collector
from ..wiring.evaluator import build_evaluator

logger = Logger(service="nudge-evaluator")
metrics = Metrics(namespace="Nudge", service="evaluator")
# The Tracer loads the X-Ray SDK (~170 ms of a cold start): only when the stack asks for it
# (``evaluator_tracing``). Lambda traces each invocation itself either way.
tracer = Tracer(service="nudge-evaluator") if os.environ.get("NUDGE_TRACING", "").lower() == "true" else None


def _traced(handler: Any) -> Any:
    return tracer.capture_lambda_handler(capture_response=False)(handler) if tracer is not None else handler


@lru_cache(maxsize=1)
def evaluator() -> BatchEvaluator:
    return build_evaluator(EvaluatorConfig.from_env())


@logger.inject_lambda_context(log_event=False)
@_traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = evaluator().evaluate(
        kinesis_records(event),
        wall=WALL_CLOCK.now_ms(),
        time_left_ms=context.get_remaining_time_in_millis,
        by_arrival=True,
    )
    for name, value in report.counts().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for rejected in report.rejections:  # by reason only, never by content
        logger.warning(
            "record rejected", extra={"reason": rejected.reason, "sequence": rejected.record.sequence_number}
        )
    if report.failed_sequence_number is not None:
        logger.warning("batch partially failed", extra={"resume_from": report.failed_sequence_number})
    return report.response()


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    evaluator()  # compile rules and create clients during init, not on the first batch
    tune_collector()
