"""The evaluator: its function, its stream mapping (filters, retries, DLQ) and its queues."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from nudge.settings import EvaluatorAddresses, StackSettings, evaluator_config, queue_settings

from .functions import LAMBDA_RULES_DIR, nudge_function
from .queues import dead_letter_queue
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
        timers: Timers,
        firings_queue: sqs.IQueue,
        filter_patterns: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        queues = queue_settings(settings)
        self.dead_letters = dead_letter_queue(self, "DeadLetters", queue=queues.evaluator_dlq, key=key)
        self.rejected = dead_letter_queue(self, "RejectedEvents", queue=queues.rejected_events, key=key)
        config = evaluator_config(
            settings,
            EvaluatorAddresses(
                events_stream_arn=stream.stream_arn,
                scheduler_role_arn=timers.role.role_arn,
                timers_dlq_arn=timers.dead_letters.queue_arn,
                firings_queue_url=firings_queue.queue_url,
                rejected_queue_url=self.rejected.queue_url,
                rules_dir=LAMBDA_RULES_DIR,
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
        # Least privilege: the three item operations the state store uses, nothing else.
        table.grant(self.function, "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        key.grant_encrypt_decrypt(self.function)
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
            retry_attempts=settings.retry_attempts,
            max_record_age=Duration.seconds(settings.max_record_age_seconds),
            on_failure=sources.SqsDlq(self.dead_letters),
            filters=[{"pattern": pattern} for pattern in filter_patterns],
            metrics_config=lambda_.MetricsConfig(metrics=[lambda_.MetricType.EVENT_COUNT]),
        )
        self.function.add_event_source(self.source)
