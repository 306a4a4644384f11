"""The evaluator: its function, its stream mapping (filters, retries, DLQ) and its queues."""

from __future__ import annotations

from aws_cdk import Annotations, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from nudge.settings import (
    BY_CUSTOMER_INDEX,
    EvaluatorAddresses,
    StackSettings,
    evaluator_config,
    queue_settings,
    table_settings,
)

from .customer_data import index_arn
from .functions import LAMBDA_RULES_DIR, nudge_function
from .queues import dead_letter_queue
from .secrets import signing_key
from .timers import Timers


class Evaluation(Construct):
    """The evaluator function, fed by the events stream through a filtered event source mapping."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        key: kms.IKey,
        code: lambda_.Code,
        stream: kinesis.IStream,
        table: dynamodb.ITable,
        profiles: dynamodb.ITable,
        activations: dynamodb.ITable,
        timers: Timers,
        firings_queue: sqs.IQueue,
        filter_patterns: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        queues = queue_settings(settings)
        self.dead_letters = dead_letter_queue(self, "DeadLetters", queue=queues.evaluator_dlq, key=key)
        self.rejected = dead_letter_queue(self, "RejectedEvents", queue=queues.rejected_events, key=key)
        # Signs timer records (the schedules' input): only the evaluator reads it, so a producer that
        # may put records on the stream cannot forge a timer and decide a wait early.
        self.timer_key = signing_key(
            self,
            "TimerKey",
            description="Signs Nudge timer records (HMAC-SHA256); read by the evaluator only",
            key=key,
            why_not_rotated=(
                "An HMAC signing key: rotating it would make every pending timer's signature fail. "
                "Rotate it by hand when no wait is pending, or accept that pending waits are then "
                "decided at each customer's next event."
            ),
        )
        config = evaluator_config(
            settings,
            EvaluatorAddresses(
                events_stream_arn=stream.stream_arn,
                scheduler_role_arn=timers.role.role_arn,
                timers_dlq_arn=timers.dead_letters.queue_arn,
                firings_queue_url=firings_queue.queue_url,
                rejected_queue_url=self.rejected.queue_url,
                rules_dir=LAMBDA_RULES_DIR,
                timer_key_secret_arn=self.timer_key.secret_arn,
            ),
        )
        self.function = nudge_function(
            self,
            "Function",
            settings=settings,
            code=code,
            handler="nudge.handlers.evaluator.handler",
            service="evaluator",
            environment=config.to_env(),
            memory_mb=settings.evaluator_memory_mb,
            timeout=Duration.seconds(settings.evaluator_timeout_seconds),
            description="Evaluates Nudge rules over each batch of the events stream",
        )
        # Least privilege: the item operations the state store uses, nothing else. Erasure is an event
        # the evaluator applies in stream order: it deletes the state item (and writes the tombstone,
        # read back with BatchGetItem), the profile, and the customer's activations.
        table.grant(self.function, "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        profiles.grant(self.function, "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        # Message events against their firings (status moves up: a conditional UpdateItem, and a PutItem).
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem", "dynamodb:UpdateItem"], resources=[activations.table_arn])
        )
        # Erasure: a customer's firings through by_customer, then each firing's items, deleted.
        # Written out: Table.grant would cover every index of the table (index/*).
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:Query", "dynamodb:DeleteItem"], resources=[activations.table_arn])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[index_arn(activations, table_settings(settings).activations, BY_CUSTOMER_INDEX)],
            )
        )
        key.grant_encrypt_decrypt(self.function)
        self.timer_key.grant_read(self.function)
        timers.grant_manage_schedules(self.function)
        firings_queue.grant_send_messages(self.function)
        self.rejected.grant_send_messages(self.function)
        self.source = sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=settings.batch_size,
            max_batching_window=Duration.seconds(settings.batching_window_seconds),
            parallelization_factor=settings.parallelization_factor,
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            # -1: retried until max_record_age (Lambda's MaximumRetryAttempts -1), so an outage
            # shorter than that loses nothing; past it, the batch's position goes to the DLQ.
            retry_attempts=settings.retry_attempts,
            max_record_age=Duration.seconds(settings.max_record_age_seconds),
            on_failure=sources.SqsDlq(self.dead_letters),
            filters=[{"pattern": pattern} for pattern in filter_patterns],
            metrics_config=lambda_.MetricsConfig(metrics=[lambda_.MetricType.EVENT_COUNT]),
        )
        self.function.add_event_source(self.source)
        if settings.retry_attempts >= 0:
            Annotations.of(self).add_warning_v2(
                "nudge:retry-attempts",
                f"retry_attempts is {settings.retry_attempts}: a failing batch is given up after that many "
                "retries, which an outage spends in seconds; -1 retries it until max_record_age_seconds",
            )
