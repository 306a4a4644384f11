"""The customer state table: one bounded item per customer, expired by TTL."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from constructs import Construct

from nudge.settings import StackSettings, table_settings

from .tables import nudge_table


class CustomerState(Construct):
    """On-demand, point-in-time recovery, customer-managed KMS key, TTL on ``expires_at``."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = nudge_table(self, "Table", table=table_settings(settings).state, key=key)
