"""The feedback path in the template: SES's events to the function, End User Messaging's topic, the
phone index, and a function that may only put records on the stream.

Each stack is synthesized once for the module (jsii synthesis costs seconds), without bundling:
the defaults (SMS through SNS: email feedback only) and End User Messaging SMS with the stack's own
configuration set. Every synthesis runs cdk-nag (``build_app``), so these stacks are also nag-clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.app import build_app
from nudge.feedback.ses import DETAIL_TYPES
from nudge.feedback.sms import PUBLISHED_TYPES as SMS_TYPES

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}
CDK_JSON = json.loads(Path("cdk.json").read_text())["context"]["nudge"]
"""The shipped settings (the rules send to its ``crm`` webhook), which a ``nudge`` context replaces."""
END_USER_MESSAGING = {**CDK_JSON, "sms_provider": "end_user_messaging", "sms_origination_identity": "pool-1234"}
FEEDBACK_HANDLER = "nudge.handlers.feedback.handler"


def synth(settings: dict[str, Any]) -> Template:
    app, stack = build_app(context={**NO_BUNDLING, "nudge": settings})
    app.synth()  # runs the AwsSolutions checks: an unacknowledged finding raises
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def email_only() -> Template:
    return synth({})


@pytest.fixture(scope="module")
def with_sms() -> Template:
    return synth(END_USER_MESSAGING)


def logical_id(template: Template, kind: str, props: dict[str, Any]) -> str:
    [found] = template.find_resources(kind, {"Properties": props})
    return found


def function_id(template: Template, handler: str) -> str:
    return logical_id(template, "AWS::Lambda::Function", {"Handler": handler})


def statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """The statements of the policies attached to ``handler``'s role."""
    function = template.find_resources("AWS::Lambda::Function")[function_id(template, handler)]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}})
    return [s for policy in policies.values() for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_configuration_set_publishes_outcomes_to_the_default_bus(email_only: Template):
    email_only.has_resource_properties(
        "AWS::SES::ConfigurationSetEventDestination",
        {
            "ConfigurationSetName": {"Ref": Match.string_like_regexp("EmailConfigurationSet")},
            "EventDestination": {
                "Enabled": True,
                "EventBridgeDestination": {
                    "EventBusArn": {
                        "Fn::Join": ["", Match.array_with([Match.string_like_regexp(":event-bus/default$")])]
                    }
                },
                "MatchingEventTypes": Match.array_equals(
                    ["delivery", "open", "click", "bounce", "complaint", "renderingFailure", "reject"]
                ),
            },
        },
    )


def test_a_rule_hands_this_stacks_ses_events_to_the_function_with_retries_and_a_dead_letter_queue(
    email_only: Template,
):
    function = function_id(email_only, FEEDBACK_HANDLER)
    dlq = logical_id(email_only, "AWS::SQS::Queue", {"QueueName": "nudge-feedback-dlq"})
    email_only.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "nudge-email-feedback",
            "EventBusName": Match.absent(),  # the default bus, the only one SES publishes to
            "EventPattern": {
                "source": ["aws.ses"],
                "detail-type": list(DETAIL_TYPES),
                "detail": {"mail": {"tags": {"ses:configuration-set": ["nudge-email"]}}},
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [function, "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}},
                        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400},
                    }
                )
            ],
        },
    )


def test_a_failing_invocation_is_retried_by_lambda_then_parked(email_only: Template):
    dlq = logical_id(email_only, "AWS::SQS::Queue", {"QueueName": "nudge-feedback-dlq"})
    email_only.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function_id(email_only, FEEDBACK_HANDLER)},
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}},
        },
    )
    email_only.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmDescription": "Messages are waiting in the feedback dead-letter queue"}
    )


def test_the_function_may_only_put_records_on_the_stream(email_only: Template, with_sms: Template):
    for template in (email_only, with_sms):
        granted = statements(template, FEEDBACK_HANDLER)
        kinesis = [s for s in granted if any(a.startswith("kinesis:") for a in actions(s))]
        assert [actions(s) for s in kinesis] == [["kinesis:PutRecords"]]
        assert (
            kinesis[0]["Resource"] == {"Fn::GetAtt": [Match.any_value(), "Arn"]}
            or "Fn::GetAtt" in kinesis[0]["Resource"]
        )
        dynamodb = {a for s in granted for a in actions(s) if a.startswith("dynamodb:")}
        assert dynamodb == (set() if template is email_only else {"dynamodb:GetItem"})


def test_its_configuration_names_the_stream_and_with_sms_the_phone_index(email_only: Template, with_sms: Template):
    [email_function] = email_only.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": FEEDBACK_HANDLER}}
    ).values()
    variables = email_function["Properties"]["Environment"]["Variables"]
    assert variables["NUDGE_EVENTS_STREAM_NAME"] == "nudge-events"
    assert variables["NUDGE_SMS_RECIPIENTS_TABLE"] == variables["NUDGE_UNSUBSCRIBE_SECRET_ARN"] == ""
    [sms_function] = with_sms.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": FEEDBACK_HANDLER}}
    ).values()
    variables = sms_function["Properties"]["Environment"]["Variables"]
    assert variables["NUDGE_SMS_RECIPIENTS_TABLE"] == "nudge-sms-recipients"
    assert "Ref" in variables["NUDGE_UNSUBSCRIBE_SECRET_ARN"]


def test_without_end_user_messaging_there_is_no_sms_topic_nor_phone_index(email_only: Template):
    email_only.resource_count_is("AWS::SNS::Subscription", 0)
    email_only.resource_count_is("AWS::SMSVOICE::ConfigurationSet", 0)
    assert not email_only.find_resources("AWS::DynamoDB::Table", {"Properties": {"TableName": "nudge-sms-recipients"}})


def test_sms_events_and_replies_come_through_a_topic_under_the_stacks_key(with_sms: Template):
    topic = logical_id(with_sms, "AWS::SNS::Topic", {"TopicName": "nudge-sms-feedback"})
    with_sms.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": "nudge-sms-feedback", "KmsMasterKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]}},
    )
    with_sms.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "sms-voice.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        )
                    ]
                )
            },
        },
    )
    with_sms.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "sms-voice.amazonaws.com"},
                                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )
    with_sms.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "lambda",
            "TopicArn": {"Ref": topic},
            "Endpoint": {"Fn::GetAtt": [function_id(with_sms, FEEDBACK_HANDLER), "Arn"]},
        },
    )
    assert with_sms.find_outputs("*", {"Value": {"Ref": topic}})


def test_the_stacks_sms_configuration_set_publishes_what_maps_and_delivery_sends_with_it(with_sms: Template):
    topic = logical_id(with_sms, "AWS::SNS::Topic", {"TopicName": "nudge-sms-feedback"})
    configuration_set = logical_id(with_sms, "AWS::SMSVOICE::ConfigurationSet", {"ConfigurationSetName": "nudge-sms"})
    with_sms.has_resource_properties(
        "AWS::SMSVOICE::ConfigurationSet",
        {
            "ConfigurationSetName": "nudge-sms",
            "EventDestinations": [
                {
                    "Enabled": True,
                    "EventDestinationName": "nudge-feedback",
                    "MatchingEventTypes": list(SMS_TYPES),
                    "SnsDestination": {"TopicArn": {"Ref": topic}},
                }
            ],
        },
    )
    sender = with_sms.find_resources("AWS::Lambda::Function")[function_id(with_sms, "nudge.handlers.delivery.handler")]
    assert sender["Properties"]["Environment"]["Variables"]["NUDGE_SMS_CONFIGURATION_SET"] == "nudge-sms"
    assert configuration_set in sender["DependsOn"]  # named by a literal: created before delivery may send


def test_delivery_writes_the_phone_index_and_only_writes_it(with_sms: Template):
    table = logical_id(with_sms, "AWS::DynamoDB::Table", {"TableName": "nudge-sms-recipients"})
    with_sms.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "nudge-sms-recipients",
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )
    sender = statements(with_sms, "nudge.handlers.delivery.handler")
    on_table = [s for s in sender if s["Resource"] == {"Fn::GetAtt": [table, "Arn"]}]
    assert [actions(s) for s in on_table] == [["dynamodb:PutItem"]]
    sender_variables = with_sms.find_resources("AWS::Lambda::Function")[
        function_id(with_sms, "nudge.handlers.delivery.handler")
    ]
    assert sender_variables["Properties"]["Environment"]["Variables"]["NUDGE_SMS_RECIPIENT_RETENTION_DAYS"] == "90"


def test_with_a_configuration_set_of_your_own_the_stack_creates_none():
    template = synth({**END_USER_MESSAGING, "sms_configuration_set": "my-sms"})
    template.resource_count_is("AWS::SMSVOICE::ConfigurationSet", 0)
    sender = template.find_resources("AWS::Lambda::Function")[function_id(template, "nudge.handlers.delivery.handler")]
    assert sender["Properties"]["Environment"]["Variables"]["NUDGE_SMS_CONFIGURATION_SET"] == "my-sms"
    template.resource_count_is("AWS::SNS::Subscription", 1)  # the topic stays: point your set's destination at it
