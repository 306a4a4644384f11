"""Composition roots: configuration and a boto3 session in, wired services out.

The Lambda handlers, ``nudge local``, the bench and the tests all build their services here, so
none of them needs a handler module (and with it Powertools and the X-Ray SDK) to get an
evaluator or a deliverer. Nothing in this module imports ``aws_lambda_powertools`` or
``aws_xray_sdk``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from .adapters.activations import DynamoDBActivationLog
from .adapters.channels import (
    EndUserMessagingSmsChannel,
    EventBridgeChannel,
    PushChannel,
    SesEmailChannel,
    SnsSmsChannel,
)
from .adapters.dynamodb_state import DynamoDBStateStore
from .adapters.kinesis import KinesisOptOuts
from .adapters.scheduler import MIN_LEAD_MS, EventBridgeTimerScheduler
from .adapters.sqs import SqsDeadLetters, SqsFiringQueue, SqsFiringSink
from .clock import WALL_CLOCK, Clock
from .config import DeliveryConfig, EvaluatorConfig, UnsubscribeConfig
from .delivery.deliverer import Deliverer
from .delivery.opt_out import Unsubscriber
from .delivery.ports import Channel
from .delivery.rendering import DeliverySettings
from .delivery.service import DeliveryService
from .delivery.templates import load_templates
from .engine import Engine, compile_rules, load_rules_or_raise
from .evaluator import BatchEvaluator

# -- evaluator


def build_evaluator(
    config: EvaluatorConfig,
    session: Any = None,
    clock: Clock = WALL_CLOCK,
    timer_min_lead_ms: int = MIN_LEAD_MS,
) -> BatchEvaluator:
    """Compile the rules and wire the adapters (once per cold start); the local stack and tests pass their clock."""
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
    config: EvaluatorConfig, session: Any, clock: Clock = WALL_CLOCK, min_lead_ms: int = MIN_LEAD_MS
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


# -- delivery


def unsubscribe_secret(config: DeliveryConfig | UnsubscribeConfig, session: Any) -> bytes:
    """The key that signs unsubscribe links: given directly (local stacks, tests) or read from Secrets Manager."""
    if config.unsubscribe_secret:
        return config.unsubscribe_secret.encode()
    if config.unsubscribe_secret_arn:
        client = session.client("secretsmanager")
        return str(client.get_secret_value(SecretId=config.unsubscribe_secret_arn)["SecretString"]).encode()
    raise ValueError("set NUDGE_UNSUBSCRIBE_SECRET or NUDGE_UNSUBSCRIBE_SECRET_ARN")


def build_channels(config: DeliveryConfig, session: Any) -> dict[str, Channel]:
    """One adapter per channel the stack is configured for (push only with an application id)."""
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


def delivery_settings(config: DeliveryConfig, session: Any) -> DeliverySettings:
    return DeliverySettings(
        site_url=config.site_url,
        unsubscribe_base_url=config.unsubscribe_url,
        unsubscribe_secret=unsubscribe_secret(config, session),
        max_attempts=config.max_attempts,
    )


def build_delivery_service(config: DeliveryConfig, session: Any) -> DeliveryService:
    """Templates loaded and checked (an invalid one stops the start-up), channels, the activation log."""
    templates = load_templates(Path(config.rules_dir) / "templates")
    if templates.diagnostics:
        raise ValueError("invalid templates: " + "; ".join(str(d) for d in templates.diagnostics))
    return DeliveryService(
        channels=build_channels(config, session),
        templates=templates,
        log=DynamoDBActivationLog(
            session.client("dynamodb"), config.activations_table, ttl_days=config.activation_ttl_days
        ),
        settings=delivery_settings(config, session),
    )


def build_deliverer(config: DeliveryConfig, session: Any = None, clock: Clock = WALL_CLOCK) -> Deliverer:
    """The delivery service behind the firings queue's mechanics (backoff, parking)."""
    session = session or boto3.session.Session()
    queue = SqsFiringQueue(session.client("sqs"), config.firings_queue_url, config.firings_dlq_url)
    return Deliverer(build_delivery_service(config, session), queue, clock)


def build_unsubscriber(config: UnsubscribeConfig, session: Any = None, clock: Clock = WALL_CLOCK) -> Unsubscriber:
    session = session or boto3.session.Session()
    opt_outs = KinesisOptOuts(session.client("kinesis"), config.events_stream_name)
    return Unsubscriber(unsubscribe_secret(config, session), opt_outs, clock)
