"""Create the stack's resources through the AWS APIs, with the names and settings CDK uses.

Used by ``nudge local`` (against its embedded moto server) and by the integration tests (against
moto in-process). Names and tunables come from ``nudge.settings``, the module ``infra/`` reads,
so the local resources cannot drift from the deployed ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import DeliveryConfig, EvaluatorConfig, UnsubscribeConfig
from ..settings import StackSettings

_SCHEDULER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class LocalResources:
    settings: StackSettings
    config: EvaluatorConfig
    stream_name: str
    firings_queue_url: str
    firings_dlq_url: str
    evaluator_dlq_url: str
    delivery: DeliveryConfig
    unsubscribe: UnsubscribeConfig


def _queue(sqs: Any, name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


LOCAL_UNSUBSCRIBE_SECRET = "local-unsubscribe-secret"


def provision(
    session: Any, settings: StackSettings, rules_dir: str, unsubscribe_url: str = "http://localhost/unsubscribe"
) -> LocalResources:
    """Create stream, state table (with TTL), queues, schedule group, scheduler role, the
    activations table, the event bus, the SES identity and configuration set."""
    names = settings.names
    kinesis = session.client("kinesis")
    if settings.stream_mode == "provisioned":
        kinesis.create_stream(StreamName=names.stream, ShardCount=settings.shard_count)
    else:
        kinesis.create_stream(StreamName=names.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName=names.stream, WaiterConfig={"Delay": 0.1})
    stream_arn = kinesis.describe_stream_summary(StreamName=names.stream)["StreamDescriptionSummary"]["StreamARN"]

    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=names.state_table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=names.state_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )

    sqs = session.client("sqs")
    firings_dlq_url, firings_dlq_arn = _queue(sqs, names.firings_dlq)
    firings_url, _ = _queue(
        sqs,
        names.firings_queue,
        {"RedrivePolicy": json.dumps({"deadLetterTargetArn": firings_dlq_arn, "maxReceiveCount": "5"})},
    )
    evaluator_dlq_url, _ = _queue(sqs, names.evaluator_dlq)
    rejected_url, _ = _queue(sqs, names.rejected_events_queue)
    _, timers_dlq_arn = _queue(sqs, names.timers_dlq)

    session.client("scheduler").create_schedule_group(Name=names.schedule_group)
    role_arn = session.client("iam").create_role(
        RoleName=f"{names.prefix}-scheduler", AssumeRolePolicyDocument=json.dumps(_SCHEDULER_TRUST)
    )["Role"]["Arn"]

    dynamodb.create_table(
        TableName=names.activations_table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    session.client("events").create_event_bus(Name=names.event_bus)
    sesv2 = session.client("sesv2")
    sesv2.create_email_identity(EmailIdentity=settings.ses_identity)
    sesv2.create_configuration_set(ConfigurationSetName=names.ses_configuration_set)
    delivery = DeliveryConfig(
        activations_table=names.activations_table,
        firings_queue_url=firings_url,
        firings_dlq_url=firings_dlq_url,
        event_bus=names.event_bus,
        site_url=settings.site_url,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_secret=LOCAL_UNSUBSCRIBE_SECRET,
        rules_dir=rules_dir,
        email_from=settings.email_from,
        ses_configuration_set=names.ses_configuration_set,
        sms_provider=settings.sms_provider,
        max_attempts=settings.max_delivery_attempts,
        activation_ttl_days=settings.activation_ttl_days,
    )
    unsubscribe = UnsubscribeConfig(events_stream_name=names.stream, unsubscribe_secret=LOCAL_UNSUBSCRIBE_SECRET)

    config = EvaluatorConfig(
        state_table=names.state_table,
        events_stream_arn=stream_arn,
        schedule_group=names.schedule_group,
        scheduler_role_arn=role_arn,
        timers_dlq_arn=timers_dlq_arn,
        firings_queue_url=firings_url,
        rejected_queue_url=rejected_url,
        rules_dir=rules_dir,
        state_ttl_margin_ms=settings.state_ttl_margin_ms,
        timer_retry_attempts=settings.timer_retry_attempts,
        timer_max_event_age_seconds=settings.timer_max_event_age_seconds,
    )
    return LocalResources(
        settings=settings,
        config=config,
        stream_name=names.stream,
        firings_queue_url=firings_url,
        firings_dlq_url=firings_dlq_url,
        evaluator_dlq_url=evaluator_dlq_url,
        delivery=delivery,
        unsubscribe=unsubscribe,
    )
