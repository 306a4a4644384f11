"""The firings queue and its consumer (which logs firings until delivery channels land)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from nudge.settings import StackSettings

from .functions import nudge_function
from .queues import dead_letter_queue, work_queue


class Delivery(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, key: kms.IKey, code: lambda_.Code
    ) -> None:
        super().__init__(scope, construct_id)
        names = settings.names
        timeout = Duration.seconds(30)
        self.dead_letters = dead_letter_queue(self, "FiringsDeadLetters", name=names.firings_dlq, key=key)
        self.queue = work_queue(
            self,
            "Firings",
            name=names.firings_queue,
            key=key,
            dlq=self.dead_letters,
            visibility=Duration.seconds(timeout.to_seconds() * 6),
        )
        self.function = nudge_function(
            self,
            "Consumer",
            settings=settings,
            code=code,
            handler="nudge.handlers.firings_consumer.handler",
            service="firings-consumer",
            environment={},
            timeout=timeout,
            description="Consumes the firings queue",
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
