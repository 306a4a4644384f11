"""NudgeStack: the rules, validated at synth, and every resource that runs them."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, CfnOutput, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from nudge.engine import Plan
from nudge.evaluator.source_filters import event_filter_patterns
from nudge.settings import StackSettings

from .customer_data import CustomerData
from .delivery import Delivery
from .evaluation import Evaluation
from .feedback import Feedback
from .ingestion import Ingestion
from .monitoring import Monitoring
from .state import CustomerState
from .timers import Timers

KMS_GRANT_REASON = "CDK's grant on the stack's one key for its encrypted queues and table; the resource is that key."


class NudgeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        plan: Plan,
        code: lambda_.Code,
        rules_dir: Path,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.key = kms.Key(
            self, "Key", enable_key_rotation=True, alias=f"alias/{settings.prefix}", description="Nudge data at rest"
        )
        # CloudWatch alarms publish to the encrypted alarm topic: alarms of this account and region only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        self.ingestion = Ingestion(self, "Ingestion", settings=settings, key=self.key)
        self.state = CustomerState(self, "State", settings=settings, key=self.key)
        self.timers = Timers(self, "Timers", settings=settings, key=self.key, stream=self.ingestion.stream)
        self.delivery = Delivery(
            self, "Delivery", settings=settings, key=self.key, code=code, stream=self.ingestion.stream
        )
        self.feedback = Feedback(
            self,
            "Feedback",
            settings=settings,
            key=self.key,
            code=code,
            stream=self.ingestion.stream,
            configuration_set=self.delivery.configuration_set,
            secret=self.delivery.secret,
        )
        self.feedback.serve_delivery(self.delivery.function)
        self.evaluation = Evaluation(
            self,
            "Evaluation",
            settings=settings,
            key=self.key,
            code=code,
            stream=self.ingestion.stream,
            table=self.state.table,
            profiles=self.state.profiles,
            activations=self.delivery.activations,
            timers=self.timers,
            firings_queue=self.delivery.queue,
            filter_patterns=event_filter_patterns(plan),
        )
        # The customer data tools (explain, export, erase, audit): their role and their audit trail.
        self.customer_data = CustomerData(
            self,
            "CustomerData",
            settings=settings,
            key=self.key,
            stream=self.ingestion.stream,
            state=self.state.table,
            profiles=self.state.profiles,
            activations=self.delivery.activations,
        )
        self.monitoring = Monitoring(self, "Monitoring", settings=settings, key=self.key)
        self.monitoring.watch_mapping("EvaluatorDroppedRecords", self.evaluation.source.event_source_mapping_id)
        self.monitoring.watch_function("Evaluator", self.evaluation.function, iterator_age=True)
        self.monitoring.watch_function("Delivery", self.delivery.function)
        self.monitoring.watch_function("Unsubscribe", self.delivery.unsubscribe)
        self.monitoring.watch_function("Feedback", self.feedback.function)
        for alarm_id, queue, what in (
            ("EvaluatorDeadLetters", self.evaluation.dead_letters, "the evaluator's dead-letter queue"),
            ("RejectedEvents", self.evaluation.rejected, "the rejected-events queue"),
            ("TimerDeadLetters", self.timers.dead_letters, "the timers' dead-letter queue"),
            ("FiringDeadLetters", self.delivery.dead_letters, "the firings dead-letter queue"),
            ("FeedbackDeadLetters", self.feedback.dead_letters, "the feedback dead-letter queue"),
        ):
            self.monitoring.watch_queue(alarm_id, queue, what)
        self._encrypt_log_groups()
        self._acknowledge()
        CfnOutput(self, "EventsStreamName", value=self.ingestion.stream.stream_name)
        CfnOutput(self, "EventsStreamArn", value=self.ingestion.stream.stream_arn)
        CfnOutput(self, "StateTableName", value=self.state.table.table_name)
        CfnOutput(self, "ProfileTableName", value=self.state.profiles.table_name)
        CfnOutput(self, "FiringsQueueUrl", value=self.delivery.queue.queue_url)
        CfnOutput(self, "RejectedEventsQueueUrl", value=self.evaluation.rejected.queue_url)
        CfnOutput(self, "UnsubscribeUrl", value=self.delivery.unsubscribe_url.url)
        CfnOutput(self, "ActivationsTableName", value=self.delivery.activations.table_name)
        CfnOutput(self, "FiringsDeadLetterQueueUrl", value=self.delivery.dead_letters.queue_url)
        CfnOutput(self, "CustomerDataRoleArn", value=self.customer_data.role.role_arn)
        CfnOutput(self, "CustomerDataPolicyArn", value=self.customer_data.policy.managed_policy_arn)
        CfnOutput(self, "RulesDeployed", value=",".join(rule.id for rule in plan.rules) or "(none)")

    def _encrypt_log_groups(self) -> None:
        """Every log group of the stack under the stack's key, and the key policy CloudWatch Logs needs.

        The condition names the stack's log groups by the names CloudFormation generates for them
        (``<stack name>-<logical id>-<suffix>``): their ARNs cannot appear in the key's own policy, since
        each group refers to the key.
        """
        for construct in self.node.find_all():
            if isinstance(construct, logs.CfnLogGroup):
                construct.kms_key_id = self.key.key_arn
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{self.stack_name}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    def _acknowledge(self) -> None:
        """cdk-nag findings we accept, each with its reason."""
        basic_role = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        unscoped = {
            self.evaluation.function: "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource.",
            self.delivery.unsubscribe: "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource.",
            self.feedback.function: "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource.",
            self.delivery.function: (
                "X-Ray's PutTraceSegments/PutTelemetryRecords and SNS Publish to a phone number take no resource."
            ),
        }
        for function, reason in unscoped.items():
            Validations.of(function).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM4[{basic_role}]",
                    reason="The AWS managed basic execution role only lets the function write its own logs.",
                ),
                Acknowledgment(id="AwsSolutions-IAM5[Resource::*]", reason=reason),
                Acknowledgment(
                    id="AwsSolutions-L1",
                    reason=(
                        "The Python runtime is a deliberate setting (python_version: 3.12 or 3.13), "
                        "the versions the project and its bundled wheels are tested on."
                    ),
                ),
                Acknowledgment(id="AwsSolutions-IAM5[Action::kms:ReEncrypt*]", reason=KMS_GRANT_REASON),
                Acknowledgment(id="AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", reason=KMS_GRANT_REASON),
            )
        Validations.of(self.evaluation.function).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
                f"schedule/{self.settings.names.schedule_group}/*]",
                reason=(
                    "Timers are one schedule per (customer, rule, key), named at run time, so the grant covers "
                    "every schedule of the stack's own group and no other."
                ),
            ),
        )
        Validations.of(self.ingestion.stream).acknowledge(
            Acknowledgment(
                id="AwsSolutions-KDS3",
                reason="A customer-managed key is deliberate: one key, with its own policy, for all of Nudge's data.",
            )
        )
