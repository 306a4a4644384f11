"""The delivery Lambda: firings from SQS, sent once each, retried with backoff, parked with a reason.

Per message: the service claims, renders and sends (``nudge.delivery.service``). A transient
failure leaves the message on the queue with a longer visibility timeout (exponential backoff)
and reports it as a batch item failure; after ``max_attempts`` — or on a template that cannot
render — the message goes to the firings DLQ with its reason as a message attribute, for
``nudge redrive``. Permanent failures are recorded in the activations table and not retried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from ..adapters.activations import DynamoDBActivationLog
from ..adapters.channels import (
    EndUserMessagingSmsChannel,
    EventBridgeChannel,
    PushChannel,
    SesEmailChannel,
    SnsSmsChannel,
)
from ..config import DeliveryConfig
from ..delivery.context import FiringMessage
from ..delivery.service import Channel, DeliveryResult, DeliveryService, DeliverySettings, Status
from ..delivery.templates import load_templates

logger = Logger(service="nudge-delivery")
metrics = Metrics(namespace="Nudge", service="delivery")
tracer = Tracer(service="nudge-delivery")
processor = BatchProcessor(event_type=EventType.SQS)

MAX_BACKOFF_SECONDS = 900


class RetryLater(Exception):
    """Raised for a message to stay on the queue (a batch item failure)."""


def _secret(config: DeliveryConfig, session: Any) -> bytes:
    if config.unsubscribe_secret:
        return config.unsubscribe_secret.encode()
    if config.unsubscribe_secret_arn:
        client = session.client("secretsmanager")
        return str(client.get_secret_value(SecretId=config.unsubscribe_secret_arn)["SecretString"]).encode()
    raise ValueError("set NUDGE_UNSUBSCRIBE_SECRET or NUDGE_UNSUBSCRIBE_SECRET_ARN")


def build_channels(config: DeliveryConfig, session: Any) -> dict[str, Channel]:
    events = session.client("events")
    sms: Channel
    if config.sms_provider == "end_user_messaging":
        sms = EndUserMessagingSmsChannel(
            session.client("pinpoint-sms-voice-v2"),
            config.sms_origination_identity,
            config.sms_configuration_set or None,
        )
    else:
        sms = SnsSmsChannel(session.client("sns"))
    channels: dict[str, Channel] = {
        "email": SesEmailChannel(session.client("sesv2"), config.email_from, config.ses_configuration_set or None),
        "sms": sms,
        "webhook": EventBridgeChannel(events, config.event_bus, "webhook", config.webhook_default_destination or None),
        "event": EventBridgeChannel(events, config.event_bus, "event"),
    }
    if config.push_application_id:
        channels["push"] = PushChannel(session.client("pinpoint"), config.push_application_id)
    return channels


class Deliverer:
    """The delivery service plus the queue mechanics around it (backoff, dead-lettering)."""

    def __init__(self, config: DeliveryConfig, session: Any = None, clock: Callable[[], float] = time.time) -> None:
        session = session or boto3.session.Session()
        self.config = config
        self.clock = clock
        self.sqs = session.client("sqs")
        templates = load_templates(Path(config.rules_dir) / "templates")
        if templates.diagnostics:
            raise ValueError("invalid templates: " + "; ".join(str(d) for d in templates.diagnostics))
        self.service = DeliveryService(
            channels=build_channels(config, session),
            templates=templates,
            log=DynamoDBActivationLog(
                session.client("dynamodb"), config.activations_table, ttl_days=config.activation_ttl_days
            ),
            settings=DeliverySettings(
                site_url=config.site_url,
                unsubscribe_base_url=config.unsubscribe_url,
                unsubscribe_secret=_secret(config, session),
                max_attempts=config.max_attempts,
            ),
        )

    def handle(self, body: str, attempt: int, receipt_handle: str | None = None) -> DeliveryResult | None:
        """Deliver one queue message; raise ``RetryLater`` to leave it on the queue.

        A message that is not a firing is parked at once with the reason (``None`` is returned):
        retrying it could never help.
        """
        try:
            firing = FiringMessage.model_validate_json(body)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
            self.park(body, f"not a firing ({fields})")
            return None
        result = self.service.deliver(firing, attempt, int(self.clock() * 1000))
        if result.status is Status.RETRY:
            if receipt_handle is not None:
                backoff = min(MAX_BACKOFF_SECONDS, 10 * 2 ** max(attempt - 1, 0))
                self.sqs.change_message_visibility(
                    QueueUrl=self.config.firings_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=backoff
                )
            raise RetryLater(result.reason or "retry")
        if result.status is Status.DEAD_LETTER:
            self.park(body, result.reason or "unknown")
        return result

    def park(self, body: str, reason: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.config.firings_dlq_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    return Deliverer(DeliveryConfig.from_env())


def deliver_record(record: SQSRecord) -> None:
    attempt = int(record.attributes.approximate_receive_count or 1)
    result = deliverer().handle(record.body, attempt, record.receipt_handle)
    if result is None:
        metrics.add_metric(name="Delivery.malformed", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name=f"Delivery.{result.status.value}", unit=MetricUnit.Count, value=1)
    logger.info(
        "delivery",
        extra={"rule": result.firing.rule, "channel": result.channel, "status": result.status.value,
               "firing_id": result.firing.firing_id, "reason": result.reason},
    )  # fmt: skip


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=deliver_record, processor=processor, context=context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    deliverer()
