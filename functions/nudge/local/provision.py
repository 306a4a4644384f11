"""Create the stack's resources through the AWS APIs, with the names and settings CDK uses.

Used by ``nudge local`` (against its embedded moto server) and by the integration tests (against
moto in-process). Names, queue and table settings and each function's configuration come from
``nudge.settings``, the functions ``infra/`` calls too; this module only creates the resources and
passes their moto addresses, so the local resources cannot drift from the deployed ones
(``tests/infra/test_local_parity.py`` compares the two).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import DeliveryConfig, EvaluatorConfig, FeedbackConfig, UnsubscribeConfig
from ..settings import (
    DeliveryAddresses,
    EvaluatorAddresses,
    FeedbackAddresses,
    QueueSettings,
    StackSettings,
    TableSettings,
    UnsubscribeAddresses,
    delivery_config,
    evaluator_config,
    feedback_config,
    queue_settings,
    table_settings,
    unsubscribe_config,
)

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
    feedback: FeedbackConfig


def _queues(sqs: Any, settings: StackSettings) -> dict[str, tuple[str, str]]:
    """Every queue of ``queue_settings``, by name: its (URL, ARN)."""
    created: dict[str, tuple[str, str]] = {}
    for queue in queue_settings(settings).in_creation_order():
        url = sqs.create_queue(QueueName=queue.name, Attributes=_queue_attributes(queue, created))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[queue.name] = url, arn
    return created


def _queue_attributes(queue: QueueSettings, created: dict[str, tuple[str, str]]) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout_seconds),
        "MessageRetentionPeriod": str(queue.retention_seconds),
    }
    if queue.redrive is not None:
        _, dlq_arn = created[queue.redrive.dead_letter_queue]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.redrive.max_receive_count)}
        )
    return attributes


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key is not None:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


def _table(dynamodb: Any, table: TableSettings) -> None:
    """An on-demand table with string keys, its indexes (projecting everything) and its TTL."""
    key_schema = _key_schema(table.partition_key, table.sort_key)
    indexes = [
        {
            "IndexName": index.name,
            "KeySchema": _key_schema(index.partition_key, index.sort_key),
            "Projection": {"ProjectionType": "ALL"},
        }
        for index in table.indexes
    ]
    schemas = [key_schema, *(index["KeySchema"] for index in indexes)]
    attributes = sorted({key["AttributeName"] for schema in schemas for key in schema})
    dynamodb.create_table(
        TableName=table.name,
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in attributes],
        KeySchema=key_schema,
        BillingMode="PAY_PER_REQUEST",
        **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
    )
    dynamodb.update_time_to_live(
        TableName=table.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
    )


LOCAL_UNSUBSCRIBE_SECRET = "local-unsubscribe-secret"
"""The value of the local stack's unsubscribe signing secret (CDK generates the deployed one)."""
LOCAL_TIMER_KEY = "local-timer-signing-key"
"""The value of the local stack's timer signing key (CDK generates the deployed one)."""


def provision(
    session: Any, settings: StackSettings, rules_dir: str, unsubscribe_url: str = "http://localhost/unsubscribe"
) -> LocalResources:
    """Create stream, tables (with TTL and indexes, the audit trail's among them), queues, schedule
    group, scheduler role, the event bus, the SES identity and configuration set, and the
    unsubscribe signing secret."""
    names = settings.names
    kinesis = session.client("kinesis")
    if settings.stream_mode == "provisioned":
        kinesis.create_stream(StreamName=names.stream, ShardCount=settings.shard_count)
    else:
        kinesis.create_stream(StreamName=names.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName=names.stream, WaiterConfig={"Delay": 0.1})
    if settings.stream_retention_hours > 24:  # a new stream keeps records 24 hours
        kinesis.increase_stream_retention_period(
            StreamName=names.stream, RetentionPeriodHours=settings.stream_retention_hours
        )
    stream_arn = kinesis.describe_stream_summary(StreamName=names.stream)["StreamDescriptionSummary"]["StreamARN"]

    dynamodb = session.client("dynamodb")
    tables = table_settings(settings)
    _table(dynamodb, tables.state)
    _table(dynamodb, tables.profiles)
    _table(dynamodb, tables.activations)
    _table(dynamodb, tables.audit)  # the customer data tools' trail: `nudge audit` reads it locally too
    if tables.sms_recipients is not None:
        _table(dynamodb, tables.sms_recipients)

    queues = queue_settings(settings)
    created = _queues(session.client("sqs"), settings)
    firings_url, _ = created[queues.firings.name]
    firings_dlq_url, _ = created[queues.firings_dlq.name]

    session.client("scheduler").create_schedule_group(Name=names.schedule_group)
    role_arn = session.client("iam").create_role(
        RoleName=f"{names.prefix}-scheduler", AssumeRolePolicyDocument=json.dumps(_SCHEDULER_TRUST)
    )["Role"]["Arn"]

    session.client("events").create_event_bus(Name=names.event_bus)
    sesv2 = session.client("sesv2")
    sesv2.create_email_identity(EmailIdentity=settings.ses_identity)
    sesv2.create_configuration_set(ConfigurationSetName=names.ses_configuration_set)
    secrets = session.client("secretsmanager")
    secret_arn = secrets.create_secret(
        Name=f"{names.prefix}-unsubscribe-secret", SecretString=LOCAL_UNSUBSCRIBE_SECRET
    )["ARN"]
    timer_key_arn = secrets.create_secret(Name=f"{names.prefix}-timer-key", SecretString=LOCAL_TIMER_KEY)["ARN"]

    delivery = delivery_config(
        settings,
        DeliveryAddresses(
            firings_queue_url=firings_url,
            firings_dlq_url=firings_dlq_url,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_secret_arn=secret_arn,
            rules_dir=rules_dir,
        ),
    )
    unsubscribe = unsubscribe_config(settings, UnsubscribeAddresses(unsubscribe_secret_arn=secret_arn))
    feedback = feedback_config(settings, FeedbackAddresses(unsubscribe_secret_arn=secret_arn))
    config = evaluator_config(
        settings,
        EvaluatorAddresses(
            events_stream_arn=stream_arn,
            scheduler_role_arn=role_arn,
            timers_dlq_arn=created[queues.timers_dlq.name][1],
            firings_queue_url=firings_url,
            rejected_queue_url=created[queues.rejected_events.name][0],
            rules_dir=rules_dir,
            timer_key_secret_arn=timer_key_arn,
        ),
    )
    return LocalResources(
        settings=settings,
        config=config,
        stream_name=names.stream,
        firings_queue_url=firings_url,
        firings_dlq_url=firings_dlq_url,
        evaluator_dlq_url=created[queues.evaluator_dlq.name][0],
        delivery=delivery,
        unsubscribe=unsubscribe,
        feedback=feedback,
    )
