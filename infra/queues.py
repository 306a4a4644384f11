"""KMS-encrypted, TLS-only SQS queues, with or without their own dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
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
