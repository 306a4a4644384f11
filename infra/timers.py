"""Timers: the schedule group the evaluator creates one-time schedules in, and Scheduler's role.

Scheduler assumes ``role`` to deliver a due timer: it may put records to the events stream (and
use its key) and park undeliverable timers in the timers DLQ, nothing else.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from nudge.settings import StackSettings, queue_settings

from .queues import dead_letter_queue


class Timers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        key: kms.IKey,
        stream: kinesis.IStream,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = scheduler.ScheduleGroup(
            self, "Group", schedule_group_name=settings.names.schedule_group, removal_policy=RemovalPolicy.DESTROY
        )
        self.dead_letters = dead_letter_queue(self, "DeadLetters", queue=queue_settings(settings).timers_dlq, key=key)
        account = Stack.of(self).account
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": self.group.schedule_group_arn},
                },
            ),
            description="EventBridge Scheduler puts due Nudge timers onto the events stream",
        )
        # Written out rather than granted, so the role holds exactly these actions and no wildcards.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[stream.stream_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn])
        )

    def grant_manage_schedules(self, grantee: iam.IGrantable) -> None:
        """Create, update and delete schedules in this group only, passing only this role."""
        stack = Stack.of(self)
        schedules = stack.format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.group.schedule_group_name}/*"
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
            resource_arns=[schedules],
        )
        self.role.grant_pass_role(grantee)
