"""The feedback Lambda: ``nudge.feedback.FeedbackIntake`` behind Powertools.

Invoked asynchronously by the stack's EventBridge rule (SES events) and the SMS feedback topic.
Counts go to metrics and one log line; nothing personal is logged (no address, no customer id).
A ``FeedbackNotPut`` propagates: the invocation fails and Lambda retries it, then parks it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..config import FeedbackConfig
from ..feedback import FeedbackIntake, FeedbackNotPut, Report
from ..wiring.feedback import build_feedback_intake

logger = Logger(service="nudge-feedback")
metrics = Metrics(namespace="Nudge", service="feedback")
tracer = Tracer(service="nudge-feedback")


@lru_cache(maxsize=1)
def intake() -> FeedbackIntake:
    return build_feedback_intake(FeedbackConfig.from_env())


def _count(report: Report) -> None:
    for name, count in report.put.items():
        metrics.add_metric(name=f"Feedback.{name}", unit=MetricUnit.Count, value=count)
    for skip, count in report.skipped.items():
        metrics.add_metric(name=f"Feedback.skipped.{skip.value}", unit=MetricUnit.Count, value=count)
    if report.refused:
        metrics.add_metric(name="Feedback.refused", unit=MetricUnit.Count, value=len(report.refused))
    logger.info("feedback", extra={"kinds": dict(report.kinds), "put": dict(report.put), "refused": report.refused,
                                   "skipped": {skip.value: n for skip, n in report.skipped.items()}})  # fmt: skip


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    try:
        report = intake().handle(event)
    except FeedbackNotPut as exc:
        _count(exc.report)
        metrics.add_metric(name="Feedback.notPut", unit=MetricUnit.Count, value=len(exc.failed))
        raise
    _count(report)
