"""The customer tables: behaviour (one bounded item per customer, expiring with its windows) and
profiles (traits and consent, expiring ``profile_retention_days`` after the customer's last event)."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from constructs import Construct

from nudge.settings import StackSettings, table_settings

from .tables import nudge_table


class CustomerState(Construct):
    """Both on-demand, with point-in-time recovery, the customer-managed KMS key and TTL on ``expires_at``."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        tables = table_settings(settings)
        self.table = nudge_table(self, "Table", table=tables.state, key=key)
        self.profiles = nudge_table(self, "Profiles", table=tables.profiles, key=key)
