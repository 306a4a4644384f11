"""The unsubscribe endpoint (a Lambda function URL), RFC 8058 one-click compatible.

``GET`` shows a confirmation page with a button; ``POST`` (the button, or a mail client's one-click
``List-Unsubscribe=One-Click``) records the opt-out as an ``unsubscribed`` event on the events
stream, partitioned by customer id like every other event. The link carries an HMAC token over
the customer id and channel: a bare customer id is never trusted.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..config import UnsubscribeConfig
from ..delivery.unsubscribe import opt_out_event, verify

logger = Logger(service="nudge-unsubscribe")
metrics = Metrics(namespace="Nudge", service="unsubscribe")
tracer = Tracer(service="nudge-unsubscribe")

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width"><title>{title}</title></head><body style="font-family: Helvetica, Arial,
sans-serif; max-width: 480px; margin: 48px auto; color: #222;"><h1 style="font-size: 20px;">{title}</h1>
{body}</body></html>"""


def _page(status: int, title: str, body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        "body": _PAGE.format(title=html.escape(title), body=body),
    }


class Unsubscriber:
    def __init__(self, config: UnsubscribeConfig, session: Any = None, clock: Callable[[], float] = time.time):
        session = session or boto3.session.Session()
        self.config = config
        self.kinesis = session.client("kinesis")
        self.clock = clock
        if config.unsubscribe_secret:
            self.secret = config.unsubscribe_secret.encode()
        else:
            secrets = session.client("secretsmanager")
            self.secret = str(secrets.get_secret_value(SecretId=config.unsubscribe_secret_arn)["SecretString"]).encode()

    def handle(self, method: str, query: dict[str, str]) -> dict[str, Any]:
        customer_id, channel, token = query.get("c", ""), query.get("ch", ""), query.get("t", "")
        if not (customer_id and channel and token) or not verify(self.secret, customer_id, channel, token):
            metrics.add_metric(name="InvalidLinks", unit=MetricUnit.Count, value=1)
            return _page(403, "This link is not valid", "<p>It may have been cut short by your mail program.</p>")
        if method == "GET":
            return _page(
                200,
                "Unsubscribe?",
                f'<p>Stop receiving these {html.escape(channel)} messages?</p><form method="post">'
                '<button type="submit" style="padding: 10px 18px;">Unsubscribe</button></form>',
            )
        if method != "POST":
            return {"statusCode": 405, "headers": {"Allow": "GET, POST"}, "body": ""}
        event = opt_out_event(customer_id, channel, int(self.clock() * 1000))
        self.kinesis.put_record(
            StreamName=self.config.events_stream_name,
            Data=json.dumps(event, separators=(",", ":")).encode(),
            PartitionKey=customer_id,
        )
        metrics.add_metric(name="OptOuts", unit=MetricUnit.Count, value=1)
        return _page(200, "You are unsubscribed", "<p>You will not receive these messages any more.</p>")


@lru_cache(maxsize=1)
def unsubscriber() -> Unsubscriber:
    return Unsubscriber(UnsubscribeConfig.from_env())


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    return unsubscriber().handle(method, event.get("queryStringParameters") or {})
