"""KMS-encrypted, TLS-only SQS queues, with or without their own dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from nudge.settings import QueueSettings


def dead_letter_queue(scope: Construct, construct_id: str, *, queue: QueueSettings, key: kms.IKey) -> sqs.Queue:
    """A terminal queue: where messages are parked for inspection and redrive."""
    if queue.redrive is not None:
        raise ValueError(f"{queue.name} redrives to {queue.redrive.dead_letter_queue}: not a parking queue")
    created = _queue(scope, construct_id, queue, key, None)
    Validations.of(created).acknowledge(
        Acknowledgment(id="AwsSolutions-SQS3", reason="This queue is itself a dead-letter (parking) queue.")
    )
    return created


def work_queue(
    scope: Construct, construct_id: str, *, queue: QueueSettings, key: kms.IKey, dlq: sqs.IQueue
) -> sqs.Queue:
    """A queue a function consumes, redriving to ``dlq`` (the queue its settings name) after its receives."""
    if queue.redrive is None:
        raise ValueError(f"{queue.name} has no redrive policy")
    return _queue(
        scope,
        construct_id,
        queue,
        key,
        sqs.DeadLetterQueue(queue=dlq, max_receive_count=queue.redrive.max_receive_count),
    )


def _queue(
    scope: Construct, construct_id: str, queue: QueueSettings, key: kms.IKey, dlq: sqs.DeadLetterQueue | None
) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=queue.name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.seconds(queue.retention_seconds),
        visibility_timeout=Duration.seconds(queue.visibility_timeout_seconds),
        dead_letter_queue=dlq,
    )


def let_eventbridge_park(key: kms.IKey, scope: Construct, rules: str) -> None:
    """Let EventBridge use ``key`` for what the rules named ``rules`` (a name or a pattern) park in a
    queue it encrypts: their dead letters. By the rules' ARN text, not their tokens: a key policy
    naming a rule whose target names a queue under that key would be a dependency cycle."""
    stack = Stack.of(scope)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": stack.format_arn(service="events", resource="rule", resource_name=rules)},
            },
        )
    )
