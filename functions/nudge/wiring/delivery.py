"""The delivery and unsubscribe functions' composition roots: templates, channels, activation log, queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from ..adapters.activations import DynamoDBActivationLog
from ..adapters.channels import (
    EndUserMessagingSmsChannel,
    EventBridgeChannel,
    PushChannel,
    SesEmailChannel,
    SnsSmsChannel,
)
from ..adapters.kinesis import KinesisOptOuts
from ..adapters.sms_recipients import DynamoDBSmsRecipients
from ..adapters.sqs import SqsFiringQueue
from ..clock import WALL_CLOCK, Clock
from ..config import DeliveryConfig, UnsubscribeConfig
from ..delivery.deliverer import Deliverer
from ..delivery.opt_out import Unsubscriber
from ..delivery.ports import Channel
from ..delivery.rendering import DeliverySettings
from ..delivery.service import DeliveryService
from ..delivery.templates import load_templates
from ..feedback import PhoneKey
from .retries import ABSORB_THROTTLING, SEND_ONCE
from .secrets import unsubscribe_secret


def build_channels(config: DeliveryConfig, session: Any, secret: bytes | None = None) -> dict[str, Channel]:
    """One adapter per channel the stack is configured for (push only with an application id).

    End User Messaging SMS with a phone index (``sms_recipients_table``) remembers each number it
    texts, under a key derived from the signing ``secret`` (read here when not given).
    """
    events = session.client("events", config=SEND_ONCE)
    sms: Channel
    if config.sms_provider == "end_user_messaging":
        recipients = None
        if config.sms_recipients_table:
            recipients = DynamoDBSmsRecipients(
                session.client("dynamodb", config=ABSORB_THROTTLING),
                config.sms_recipients_table,
                PhoneKey(secret if secret is not None else unsubscribe_secret(config, session)),
                retention_days=config.sms_recipient_retention_days,
            )
        sms = EndUserMessagingSmsChannel(
            session.client("pinpoint-sms-voice-v2", config=SEND_ONCE),
            config.sms_origination_identity,
            config.sms_configuration_set or None,
            recipients,
        )
    else:
        sms = SnsSmsChannel(session.client("sns", config=SEND_ONCE))
    channels: dict[str, Channel] = {
        "email": SesEmailChannel(
            session.client("sesv2", config=SEND_ONCE), config.email_from, config.ses_configuration_set or None
        ),
        "sms": sms,
        "webhook": EventBridgeChannel(events, config.event_bus, "webhook", config.webhook_default_destination or None),
        "event": EventBridgeChannel(events, config.event_bus, "event"),
    }
    if config.push_application_id:
        channels["push"] = PushChannel(session.client("pinpoint", config=SEND_ONCE), config.push_application_id)
    return channels


def delivery_settings(config: DeliveryConfig, session: Any, secret: bytes | None = None) -> DeliverySettings:
    return DeliverySettings(
        site_url=config.site_url,
        unsubscribe_base_url=config.unsubscribe_url,
        unsubscribe_secret=secret if secret is not None else unsubscribe_secret(config, session),
        max_attempts=config.max_attempts,
    )


def build_delivery_service(config: DeliveryConfig, session: Any) -> DeliveryService:
    """Templates loaded and checked (an invalid one stops the start-up), channels, the activation log."""
    templates = load_templates(Path(config.rules_dir) / "templates")
    if templates.diagnostics:
        raise ValueError("invalid templates: " + "; ".join(str(d) for d in templates.diagnostics))
    secret = unsubscribe_secret(config, session)
    return DeliveryService(
        channels=build_channels(config, session, secret),
        templates=templates,
        log=DynamoDBActivationLog(
            session.client("dynamodb", config=ABSORB_THROTTLING),
            config.activations_table,
            ttl_days=config.activation_ttl_days,
        ),
        settings=delivery_settings(config, session, secret),
    )


def build_deliverer(config: DeliveryConfig, session: Any = None, clock: Clock = WALL_CLOCK) -> Deliverer:
    """The delivery service behind the firings queue's mechanics (backoff, parking)."""
    session = session or boto3.session.Session()
    queue = SqsFiringQueue(
        session.client("sqs", config=ABSORB_THROTTLING), config.firings_queue_url, config.firings_dlq_url
    )
    return Deliverer(build_delivery_service(config, session), queue, clock)


def build_unsubscriber(config: UnsubscribeConfig, session: Any = None, clock: Clock = WALL_CLOCK) -> Unsubscriber:
    session = session or boto3.session.Session()
    opt_outs = KinesisOptOuts(session.client("kinesis"), config.events_stream_name)
    return Unsubscriber(unsubscribe_secret(config, session), opt_outs, clock)
