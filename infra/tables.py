"""DynamoDB tables as ``nudge.settings.table_settings`` describes them, with the stack's protections."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from nudge.settings import TableSettings


def _string(name: str | None) -> dynamodb.Attribute | None:
    return None if name is None else dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def nudge_table(scope: Construct, construct_id: str, *, table: TableSettings, key: kms.IKey) -> dynamodb.Table:
    """On-demand, point-in-time recovery, the stack's KMS key, TTL, and retained on stack deletion:
    customer state and the audit trail must outlive a mistaken ``cdk destroy``."""
    created = dynamodb.Table(
        scope,
        construct_id,
        table_name=table.name,
        partition_key=dynamodb.Attribute(name=table.partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=_string(table.sort_key),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=table.ttl_attribute,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for index in table.indexes:
        created.add_global_secondary_index(
            index_name=index.name,
            partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=_string(index.sort_key),
        )
    return created
