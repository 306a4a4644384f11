"""The customer data tools' side of the stack: their audit trail and the one role they use.

``nudge explain``, ``export``, ``erase`` and ``audit`` run on an operator's machine, not in Lambda.
An operator assumes ``<prefix>-customer-data`` (or is given ``<prefix>-customer-data-tools``) and
can then do exactly what the tools do: read one customer's items, query a customer's firings, put
an erasure request on the stream (the evaluator erases, in stream order, so no event of the
customer can slip in between the erasure and a write), and add to and read the audit trail.

The audit trail has a KMS key of its own: no function of the stack is granted the table or its key,
so the code whose use the trail records cannot rewrite it, and a grant on the stack's key (which
every function has) gives no way in.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from nudge.settings import BY_CUSTOMER_INDEX, StackSettings, TableSettings, table_settings

from .tables import nudge_table


def index_arn(table: dynamodb.ITable, settings: TableSettings, name: str) -> str:
    """The ARN of one index of ``table``, checked against the table's settings at synth: a grant on an
    index the table does not have would fail only when a tool first used it."""
    if name not in {index.name for index in settings.indexes}:
        raise ValueError(f"table {settings.name} has no index {name}")
    return f"{table.table_arn}/index/{name}"


class CustomerData(Construct):
    """The audit table (its own key), the tools' managed policy, and the role that has it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        key: kms.IKey,
        stream: kinesis.IStream,
        state: dynamodb.ITable,
        profiles: dynamodb.ITable,
        activations: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        names = settings.names
        tables = table_settings(settings)
        region = Stack.of(self).region
        # The default key policy (the account administers the key) and no grant to anyone else:
        # IAM policies of the account decide, and only the tools' policy names this key.
        self.audit_key = kms.Key(
            self,
            "AuditKey",
            enable_key_rotation=True,
            alias=f"alias/{settings.prefix}-audit",
            description="Nudge audit trail of the customer data tools",
            # The table is retained on stack deletion; so must be the key that can still read it.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.audit_table = nudge_table(self, "AuditTable", table=tables.audit, key=self.audit_key)
        # Each KMS grant only through the service that encrypts with it: the role cannot decrypt
        # or generate data keys by calling KMS itself.
        via_data_services = {
            "StringEquals": {"kms:ViaService": [f"dynamodb.{region}.amazonaws.com", f"kinesis.{region}.amazonaws.com"]}
        }
        via_dynamodb = {"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}}
        self.policy = iam.ManagedPolicy(
            self,
            "ToolsPolicy",
            managed_policy_name=names.customer_data_policy,
            description="What nudge explain, export, erase and audit do, and nothing more",
            statements=[
                # One customer's state item (and erasure tombstone, pk erased#<hash>) and profile item.
                iam.PolicyStatement(
                    sid="ReadOneCustomer",
                    actions=["dynamodb:GetItem"],
                    resources=[state.table_arn, profiles.table_arn],
                ),
                # A customer's firings through by_customer, then each firing's items by its pk.
                iam.PolicyStatement(
                    sid="QueryFirings",
                    actions=["dynamodb:Query"],
                    resources=[activations.table_arn, index_arn(activations, tables.activations, BY_CUSTOMER_INDEX)],
                ),
                # Erasure is an event: the evaluator deletes in stream order, after every earlier event.
                iam.PolicyStatement(
                    sid="RequestErasure",
                    actions=["kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
                    resources=[stream.stream_arn],
                ),
                # Reading the encrypted tables, writing to the encrypted stream.
                iam.PolicyStatement(
                    sid="UseDataKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions=via_data_services,
                ),
                iam.PolicyStatement(
                    sid="WriteAndReadAudit",
                    actions=["dynamodb:PutItem", "dynamodb:Query"],
                    resources=[self.audit_table.table_arn],
                ),
                iam.PolicyStatement(
                    sid="UseAuditKey",
                    actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self.audit_key.key_arn],
                    conditions=via_dynamodb,
                ),
            ],
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.customer_data_role,
            description="Assumed by operators of this account to run nudge explain, export, erase and audit",
            assumed_by=iam.AccountRootPrincipal(),
            max_session_duration=Duration.hours(1),
            managed_policies=[self.policy],
        )
