"""The events stream: where SDKs and timers put records, partitioned by customer id."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from nudge.settings import StackSettings


class Ingestion(Construct):
    """A KMS-encrypted Kinesis stream, on-demand by default (provisioned shards as an option)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        provisioned = settings.stream_mode == "provisioned"
        self.stream = kinesis.Stream(
            self,
            "Events",
            stream_name=settings.names.stream,
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=settings.shard_count if provisioned else None,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=Duration.hours(settings.stream_retention_hours),
            removal_policy=RemovalPolicy.DESTROY,
        )
