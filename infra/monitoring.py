"""Alarms that page someone: dropped stream records, parked messages, errors and lag."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from nudge.settings import StackSettings


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True, display_name="Nudge alarms")
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self._action = actions.SnsAction(self.topic)

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)

    def watch_mapping(self, construct_id: str, mapping_id: str) -> None:
        """Records the mapping dropped (expired or out of retries) must never go unnoticed."""
        dropped = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="DroppedEventCount",
            dimensions_map={"EventSourceMappingUUID": mapping_id},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        self._alarm(construct_id, dropped, 1, "The evaluator's stream mapping dropped records")

    def watch_queue(self, construct_id: str, queue: sqs.IQueue, what: str) -> None:
        visible = queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum")
        self._alarm(construct_id, visible, 1, f"Messages are waiting in {what}")

    def watch_function(self, construct_id: str, function: lambda_.IFunction, iterator_age: bool = False) -> None:
        self._alarm(f"{construct_id}Errors", function.metric_errors(period=Duration.minutes(5)), 1, "Function errors")
        if iterator_age:
            age = cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="IteratorAge",
                dimensions_map={"FunctionName": function.function_name},
                statistic="Maximum",
                period=Duration.minutes(5),
            )
            self._alarm(f"{construct_id}IteratorAge", age, 5 * 60 * 1000, "The evaluator lags the stream by 5 minutes")
