"""The unsubscribe endpoint (a Lambda function URL): ``nudge.delivery.opt_out`` behind Powertools.

The page logic and the signed-link check are ``Unsubscriber``'s; this module reads the method
and query from the function URL's event, counts invalid links and opt-outs, and returns the page.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..config import UnsubscribeConfig
from ..delivery.opt_out import Outcome, Unsubscriber
from ..wiring.delivery import build_unsubscriber

logger = Logger(service="nudge-unsubscribe")
metrics = Metrics(namespace="Nudge", service="unsubscribe")
tracer = Tracer(service="nudge-unsubscribe")

METRICS = {Outcome.INVALID_LINK: "InvalidLinks", Outcome.OPTED_OUT: "OptOuts"}


@lru_cache(maxsize=1)
def unsubscriber() -> Unsubscriber:
    return build_unsubscriber(UnsubscribeConfig.from_env())


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    answer = unsubscriber().handle(method, event.get("queryStringParameters") or {})
    if answer.outcome in METRICS:
        metrics.add_metric(name=METRICS[answer.outcome], unit=MetricUnit.Count, value=1)
    return answer.response
