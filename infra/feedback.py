"""Feedback: what SES and End User Messaging SMS report about each message, back on the customer's stream.

Email: the SES configuration set publishes delivery, open, click, bounce, complaint, rendering
failure and reject events to the default EventBridge bus (the only bus SES publishes to); a rule
matching the events of this stack's configuration set invokes the feedback function. SMS (with
``sms_provider: end_user_messaging``): an SNS topic, encrypted with the stack's key, takes the
configuration set's delivery events and the origination number's inbound replies, and invokes the
same function; the phone index (``<prefix>-sms-recipients``) lets a ``STOP`` reply find its customer.

Both paths invoke the function asynchronously: Lambda retries a failed invocation twice, then puts
it in the feedback dead-letter queue; EventBridge parks there what it could not hand to Lambda.
The function may only ``PutRecords`` to the events stream (and read the phone index).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from aws_cdk import aws_smsvoice as smsvoice
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from nudge.feedback import ses as ses_feedback
from nudge.feedback import sms as sms_feedback
from nudge.settings import FeedbackAddresses, StackSettings, feedback_config, queue_settings, table_settings

from .functions import nudge_function
from .queues import dead_letter_queue, let_eventbridge_park
from .tables import nudge_table

ASYNC_RETRIES = 2
"""Lambda's own retries of a failed asynchronous invocation (the most it allows)."""
MAX_EVENT_AGE = Duration.hours(6)
"""How long an event may wait for an invocation (Lambda's longest) before it is parked."""


class Feedback(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        key: kms.IKey,
        code: lambda_.Code,
        stream: kinesis.IStream,
        configuration_set: ses.ConfigurationSet,
        secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = dead_letter_queue(self, "DeadLetters", queue=queue_settings(settings).feedback_dlq, key=key)
        recipients = table_settings(settings).sms_recipients
        self.recipients = None if recipients is None else nudge_table(self, "SmsRecipients", table=recipients, key=key)
        self.function = nudge_function(
            self,
            "Function",
            settings=settings,
            code=code,
            handler="nudge.handlers.feedback.handler",
            service="feedback",
            environment=feedback_config(settings, FeedbackAddresses(unsubscribe_secret_arn=secret.secret_arn)).to_env(),
            memory_mb=256,
            description="Puts what SES and End User Messaging report about each message on the customer's stream",
        )
        self.function.configure_async_invoke(
            retry_attempts=ASYNC_RETRIES,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        # Written out: stream.grant_write would add PutRecord, ListShards and the stream's other reads.
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecords"], resources=[stream.stream_arn])
        )
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[key.key_arn]))
        self._email(settings, key, configuration_set)
        self.sms_topic: sns.Topic | None = None
        self.sms_configuration_set: smsvoice.CfnConfigurationSet | None = None
        if settings.sms_provider == "end_user_messaging":
            self._sms(settings, key, secret)

    def _email(self, settings: StackSettings, key: kms.IKey, configuration_set: ses.ConfigurationSet) -> None:
        """The configuration set's events to the default bus, and the rule that hands them to the function."""
        names = settings.names
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        configuration_set.add_event_destination(
            "Feedback",
            configuration_set_event_destination_name="nudge-feedback",
            destination=ses.EventDestination.event_bus(default_bus),
            events=[ses.EmailSendingEvent[name] for name in ses_feedback.PUBLISHED_TYPES],
        )
        rule = events.Rule(
            self,
            "EmailFeedback",
            rule_name=names.email_feedback_rule,
            description="SES events of Nudge's configuration set, to the feedback function",
            event_pattern=events.EventPattern(
                source=["aws.ses"],
                detail_type=list(ses_feedback.DETAIL_TYPES),
                detail={"mail": {"tags": {"ses:configuration-set": [names.ses_configuration_set]}}},
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letters,
                # EventBridge's own retries cover only handing the event to Lambda (throttling): its longest.
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )
        # EventBridge encrypts what it parks in the (KMS-encrypted) DLQ.
        let_eventbridge_park(key, self, names.email_feedback_rule)

    def _sms(self, settings: StackSettings, key: kms.IKey, secret: secretsmanager.ISecret) -> None:
        """The SMS feedback topic, the configuration set that publishes to it, and the phone index."""
        names = settings.names
        stack = Stack.of(self)
        service = iam.ServicePrincipal("sms-voice.amazonaws.com")
        # End User Messaging publishes for this account's configuration sets and numbers only.
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="sms-voice", resource="*")},
        }
        self.sms_topic = sns.Topic(
            self,
            "SmsFeedback",
            topic_name=names.sms_feedback_topic,
            master_key=key,
            enforce_ssl=True,
            display_name="Nudge SMS delivery events and replies",
        )
        self.sms_topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[service],
                actions=["sns:Publish"],
                resources=[self.sms_topic.topic_arn],
                conditions=conditions,
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[service],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions=conditions,
            )
        )
        self.sms_topic.add_subscription(subscriptions.LambdaSubscription(self.function))
        if not settings.sms_configuration_set:
            self.sms_configuration_set = smsvoice.CfnConfigurationSet(
                self,
                "SmsConfigurationSet",
                configuration_set_name=names.sms_configuration_set,
                event_destinations=[
                    smsvoice.CfnConfigurationSet.EventDestinationProperty(
                        enabled=True,
                        event_destination_name="nudge-feedback",
                        matching_event_types=list(sms_feedback.PUBLISHED_TYPES),
                        sns_destination=smsvoice.CfnConfigurationSet.SnsDestinationProperty(
                            topic_arn=self.sms_topic.topic_arn
                        ),
                    )
                ],
            )
        CfnOutput(
            self,
            "SmsFeedbackTopicArn",
            value=self.sms_topic.topic_arn,
            description=(
                "The origination number's two-way channel (STOP replies) and, with a configuration set of "
                "your own, its SNS event destination"
            ),
        )
        if self.recipients is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[self.recipients.table_arn])
            )
            key.grant_decrypt(self.function)
        secret.grant_read(self.function)

    def serve_delivery(self, function: lambda_.Function) -> None:
        """What the delivery function needs of this construct: to write the phone index before each
        text (``PutItem`` only), and the stack's SMS configuration set to exist before it sends (its
        configuration names the set, a literal CloudFormation cannot order by)."""
        if self.recipients is not None:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.recipients.table_arn])
            )
        if self.sms_configuration_set is not None:
            # The function resource only: its role must not wait (the key's policy names the role).
            resource = function.node.default_child
            assert isinstance(resource, lambda_.CfnFunction)
            resource.add_dependency(self.sms_configuration_set)
