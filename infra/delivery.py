"""Delivery: the firings queue, the function that sends, the audit table, the bus for webhooks and
events, the SES configuration set, and the signed unsubscribe endpoint."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, SecretValue, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_ses as ses
from constructs import Construct

from nudge.settings import (
    DELIVERY_TIMEOUT_SECONDS,
    DeliveryAddresses,
    StackSettings,
    UnsubscribeAddresses,
    delivery_config,
    queue_settings,
    table_settings,
    unsubscribe_config,
)

from .functions import LAMBDA_RULES_DIR, nudge_function
from .queues import dead_letter_queue, let_eventbridge_park, work_queue
from .secrets import signing_key
from .tables import nudge_table


class Delivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        key: kms.IKey,
        code: lambda_.Code,
        stream: kinesis.IStream,
    ) -> None:
        super().__init__(scope, construct_id)
        names = settings.names
        queues = queue_settings(settings)
        self.dead_letters = dead_letter_queue(self, "FiringsDeadLetters", queue=queues.firings_dlq, key=key)
        self.queue = work_queue(self, "Firings", queue=queues.firings, key=key, dlq=self.dead_letters)
        self.activations = nudge_table(self, "Activations", table=table_settings(settings).activations, key=key)
        # Webhook payloads carry customers' addresses: the bus stores them under the stack's key (CDK adds
        # the key-policy statement for events.amazonaws.com, conditioned on this bus).
        self.bus = events.EventBus(self, "Bus", event_bus_name=names.event_bus, kms_key=key)
        self.configuration_set = ses.ConfigurationSet(
            self, "EmailConfigurationSet", configuration_set_name=names.ses_configuration_set, reputation_metrics=True
        )
        self.secret = signing_key(
            self,
            "UnsubscribeSecret",
            description="Signs Nudge unsubscribe links",
            key=key,
            why_not_rotated=(
                "An HMAC signing key: rotating it automatically would break every unsubscribe link already "
                "sent. Rotate it by hand, keeping the old key valid for a grace period."
            ),
        )
        self._webhooks(settings, key)

        self.unsubscribe = nudge_function(
            self,
            "Unsubscribe",
            settings=settings,
            code=code,
            handler="nudge.handlers.unsubscribe.handler",
            service="unsubscribe",
            environment=unsubscribe_config(
                settings, UnsubscribeAddresses(unsubscribe_secret_arn=self.secret.secret_arn)
            ).to_env(),
            description="Records one-click unsubscribes as events on the stream",
            reserved_concurrency=settings.unsubscribe_reserved_concurrency,
        )
        self.unsubscribe_url = self.unsubscribe.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)
        stream.grant_write(self.unsubscribe)
        self.secret.grant_read(self.unsubscribe)

        config = delivery_config(
            settings,
            DeliveryAddresses(
                firings_queue_url=self.queue.queue_url,
                firings_dlq_url=self.dead_letters.queue_url,
                unsubscribe_url=self.unsubscribe_url.url,
                unsubscribe_secret_arn=self.secret.secret_arn,
                rules_dir=LAMBDA_RULES_DIR,
            ),
        )
        self.function = nudge_function(
            self,
            "Sender",
            settings=settings,
            code=code,
            handler="nudge.handlers.delivery.handler",
            service="delivery",
            environment=config.to_env(),
            timeout=Duration.seconds(DELIVERY_TIMEOUT_SECONDS),
            description="Sends each firing once, on its channel, and records it",
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        self._grant_sending(settings)
        # Written out: Table.grant would add the table's indexes, which delivery never reads.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:GetItem"], resources=[self.activations.table_arn]
            )
        )
        self.queue.grant(self.function, "sqs:ChangeMessageVisibility")
        self.dead_letters.grant_send_messages(self.function)
        self.bus.grant_put_events_to(self.function)
        self.secret.grant_read(self.function)

    def _grant_sending(self, settings: StackSettings) -> None:
        stack = Stack.of(self)
        identity = stack.format_arn(service="ses", resource="identity", resource_name=settings.ses_identity)
        configuration_set = stack.format_arn(
            service="ses", resource="configuration-set", resource_name=settings.names.ses_configuration_set
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ses:SendEmail", "ses:SendRawEmail"], resources=[identity, configuration_set])
        )
        if settings.sms_provider == "end_user_messaging":
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sms-voice:SendTextMessage"],
                    resources=[stack.format_arn(service="sms-voice", resource="*")],
                )
            )
            Validations.of(self.function).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sms-voice:<AWS::Region>:<AWS::AccountId>:*]",
                    reason=(
                        "SendTextMessage is authorized on the origination identity, which is registered outside "
                        "the stack (phone number, pool or sender id); the grant stays in this account and region."
                    ),
                )
            )
        else:
            # SNS Publish to a phone number has no resource to name: it must be "*". Topics and platform
            # endpoints do have ARNs, so an explicit deny keeps the grant to phone numbers.
            self.function.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=["*"]))
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    effect=iam.Effect.DENY, actions=["sns:Publish"], resources=[f"arn:{stack.partition}:sns:*:*:*"]
                )
            )
        if settings.push_application_id:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["mobiletargeting:SendMessages"],
                    resources=[
                        stack.format_arn(
                            service="mobiletargeting",
                            resource="apps",
                            resource_name=f"{settings.push_application_id}/messages",
                        )
                    ],
                )
            )

    def _webhooks(self, settings: StackSettings, key: kms.IKey) -> None:
        """One connection, API destination and routing rule per configured webhook destination."""
        webhooks_dlq = queue_settings(settings).webhooks_dlq
        if webhooks_dlq is None:  # there is one exactly when webhooks are configured
            return
        dead_letters = dead_letter_queue(self, "WebhookDeadLetters", queue=webhooks_dlq, key=key)
        # EventBridge encrypts what it parks in the (KMS-encrypted) DLQ: the key for the rules of this bus only.
        let_eventbridge_park(key, self, f"{settings.names.event_bus}/*")
        for name, webhook in settings.webhooks.items():
            connection = events.Connection(
                self,
                f"Webhook{name.title()}Connection",
                authorization=events.Authorization.api_key(
                    webhook.api_key_header, SecretValue.secrets_manager(webhook.secret_name)
                ),
                description=f"Nudge webhook '{name}'",
            )
            destination = events.ApiDestination(
                self,
                f"Webhook{name.title()}",
                connection=connection,
                endpoint=webhook.endpoint,
                http_method=events.HttpMethod[webhook.http_method],
                rate_limit_per_second=webhook.rate_limit_per_second,
            )
            events.Rule(
                self,
                f"Webhook{name.title()}Route",
                event_bus=self.bus,
                event_pattern=events.EventPattern(
                    source=["nudge"], detail_type=["nudge.webhook"], detail={"destination": [name]}
                ),
                targets=[
                    targets.ApiDestination(
                        destination,
                        dead_letter_queue=dead_letters,
                        retry_attempts=10,
                        max_event_age=Duration.hours(6),
                    )
                ],
            )
