"""KMS-encrypted, TLS-only SQS queues, with or without their own dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

RETENTION = Duration.days(14)


def dead_letter_queue(scope: Construct, construct_id: str, *, name: str, key: kms.IKey) -> sqs.Queue:
    """A terminal queue: where messages are parked for inspection and redrive."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=RETENTION,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(id="AwsSolutions-SQS3", reason="This queue is itself a dead-letter (parking) queue.")
    )
    return queue


def work_queue(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    key: kms.IKey,
    dlq: sqs.IQueue,
    visibility: Duration,
    max_receive_count: int = 5,
) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=RETENTION,
        visibility_timeout=visibility,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive_count),
    )
