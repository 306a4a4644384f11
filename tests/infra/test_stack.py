"""The synthesized template: every resource and setting the runtime relies on, and cdk-nag clean.

The stack is synthesized once for the module (jsii synthesis costs seconds), without bundling.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template
from pydantic import ValidationError

from infra.app import build_app
from nudge.engine import RuleLoadError, compile_rules, load_rules_or_raise
from nudge.evaluator.source_filters import event_filter_patterns
from nudge.settings import StackSettings

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="module")
def template() -> Template:
    _, stack = build_app(context=NO_BUNDLING)
    return Template.from_stack(stack)


def only(template: Template, kind: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.values()))


def test_events_stream_is_on_demand_and_kms_encrypted(template: Template):
    template.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "nudge-events",
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": Match.any_value()},
        },
    )


def test_event_source_mapping_settings(template: Template):
    mapping = only(template, "AWS::Lambda::EventSourceMapping", {"FilterCriteria": Match.any_value()})
    props = mapping["Properties"]
    assert props["BatchSize"] == 500
    assert props["MaximumBatchingWindowInSeconds"] == 1
    assert props["BisectBatchOnFunctionError"] is True
    # Retried until the records are 12 hours old, not for a fixed number of attempts (-1).
    assert props["MaximumRetryAttempts"] == -1
    assert props["MaximumRecordAgeInSeconds"] == 12 * 3600
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["MetricsConfig"] == {"Metrics": ["EventCount"]}
    assert "OnFailure" in props["DestinationConfig"]


def test_the_stream_keeps_records_a_week_past_the_mapping_giving_up_on_them(template: Template):
    [stream] = template.find_resources("AWS::Kinesis::Stream").values()
    mapping = only(template, "AWS::Lambda::EventSourceMapping", {"FilterCriteria": Match.any_value()})
    assert stream["Properties"]["RetentionPeriodHours"] == 168
    assert mapping["Properties"]["MaximumRecordAgeInSeconds"] < 168 * 3600


def test_retry_settings_old_values_still_load_and_impossible_ones_are_refused_with_the_reason():
    assert StackSettings().retry_attempts == -1
    assert StackSettings.from_context({"retry_attempts": 5, "max_record_age_seconds": 21600}).retry_attempts == 5
    with pytest.raises(ValidationError, match="retry_attempts"):
        StackSettings(retry_attempts=-2)
    with pytest.raises(ValidationError, match="must be shorter than the stream retention"):
        StackSettings(stream_retention_hours=24, max_record_age_seconds=86_400)


def test_an_old_fixed_retry_count_still_deploys_with_a_warning():
    crm = {"endpoint": "https://api.crm.test/v1/events", "secret_name": "nudge/crm"}  # the shipped rules send to crm
    settings = {"retry_attempts": 5, "max_record_age_seconds": 21600, "webhooks": {"crm": crm}}
    _, stack = build_app(context={**NO_BUNDLING, "nudge": settings})
    mapping = only(Template.from_stack(stack), "AWS::Lambda::EventSourceMapping", {"FilterCriteria": Match.any_value()})
    assert mapping["Properties"]["MaximumRetryAttempts"] == 5
    annotations = Annotations.from_stack(stack)
    annotations.has_warning("*", Match.string_like_regexp("retry_attempts is 5: .* -1 retries it"))
    # The sender and site are still the defaults (the webhook endpoint is not on example.com).
    annotations.has_warning("*", Match.string_like_regexp("^email_from, ses_identity, site_url still on example.com"))


def test_event_filters_are_generated_from_the_deployed_rules(template: Template):
    mapping = only(template, "AWS::Lambda::EventSourceMapping", {"FilterCriteria": Match.any_value()})
    patterns = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    plan = compile_rules(load_rules_or_raise("rules"))
    consent = {"consent_updated", "unsubscribed", "message_bounced", "message_complained"}
    messages = {"message_delivered", "message_opened", "message_clicked", "message_failed"}
    names = sorted({*plan.referenced_events(), "identify", "erasure_requested", *consent, *messages})
    assert patterns[0] == {"data": {"event": names}}  # consent and message events pass whatever the rules read
    assert {"data": {"type": ["nudge.timer"]}} in patterns
    assert {"data": {"event": [{"exists": False}]}} in patterns
    assert {"data": {"event": [None, ""]}} in patterns
    assert len(patterns) <= 5
    assert "page_viewed" in names and "remove_from_cart" not in names


def test_dropped_records_raise_an_alarm(template: Template):
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "DroppedEventCount", "Namespace": "AWS/Lambda", "Threshold": 1},
    )


def test_state_table_is_on_demand_with_pitr_kms_and_ttl(template: Template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "nudge-customer-state",
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        },
    )


def test_every_queue_is_kms_encrypted(template: Template):
    queues = template.find_resources("AWS::SQS::Queue")
    # firings + its DLQ, the evaluator's DLQ, rejected events, the timers' DLQ, the feedback DLQ, the webhooks'
    # DLQ (cdk.json's crm)
    assert len(queues) == 7
    for queue in queues.values():
        assert "KmsMasterKeyId" in queue["Properties"]


def test_schedule_group_and_scheduler_role_may_only_put_to_the_stream(template: Template):
    template.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": "nudge-timers"})
    roles = template.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Principal": {"Service": "scheduler.amazonaws.com"}})]
                    )
                }
            }
        },
    )
    [role_id] = roles
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    [policy] = policies.values()
    actions = sorted(
        action
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    )
    assert actions == [
        "kinesis:PutRecord",
        "kinesis:PutRecords",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sqs:SendMessage",
    ]
    kinesis = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "kinesis:PutRecord" in s["Action"])
    assert kinesis["Resource"] == {"Fn::GetAtt": [Match.any_value(), "Arn"]} or "Fn::GetAtt" in kinesis["Resource"]


def test_functions_are_arm64_python_with_tracing(template: Template):
    functions = template.find_resources("AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"] for f in functions.values()}
    assert handlers == {
        "nudge.handlers.evaluator.handler",
        "nudge.handlers.delivery.handler",
        "nudge.handlers.unsubscribe.handler",
        "nudge.handlers.feedback.handler",
    }
    for function in functions.values():
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] in ("python3.12", "python3.13")
        assert props["TracingConfig"] == {"Mode": "Active"}


def test_evaluator_is_told_where_everything_is(template: Template):
    evaluator = only(template, "AWS::Lambda::Function", {"Handler": "nudge.handlers.evaluator.handler"})
    variables = evaluator["Properties"]["Environment"]["Variables"]
    for name in (
        "NUDGE_STATE_TABLE",
        "NUDGE_EVENTS_STREAM_ARN",
        "NUDGE_SCHEDULE_GROUP",
        "NUDGE_SCHEDULER_ROLE_ARN",
        "NUDGE_TIMERS_DLQ_ARN",
        "NUDGE_FIRINGS_QUEUE_URL",
        "NUDGE_REJECTED_QUEUE_URL",
    ):
        assert name in variables
    assert variables["NUDGE_RULES_DIR"] == "/var/task/rules"


def test_evaluator_may_only_touch_state_items_it_uses(template: Template):
    evaluator_policies = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any("Evaluation" in r["Ref"] for r in p["Properties"]["Roles"])
    ]
    dynamodb_actions = {
        action
        for policy in evaluator_policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if action.startswith("dynamodb:")
    }
    assert dynamodb_actions == {
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",  # erasure: a customer's activations, through by_customer
    }
    # UpdateItem only on the activations table (a message event moves its firing's status), no index.
    updating = [
        statement
        for policy in evaluator_policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "dynamodb:UpdateItem" in statement["Action"]
    ]
    assert [statement["Resource"] for statement in updating] == [
        {
            "Fn::GetAtt": [
                next(
                    iter(
                        template.find_resources(
                            "AWS::DynamoDB::Table", {"Properties": {"TableName": "nudge-activations"}}
                        )
                    )
                ),
                "Arn",
            ]
        }
    ]


def test_data_key_rotates(template: Template):
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_outputs_name_the_stream(template: Template):
    outputs = template.find_outputs("EventsStreamName")
    assert outputs


def test_an_invalid_rule_fails_synth_with_its_file_and_line(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("id: bad\nwhen:\n  event: purchase\n  within: 1hr\naction: {channel: event}\n")
    with pytest.raises(RuleLoadError) as raised:
        build_app(context={**NO_BUNDLING, "nudge": {"rules_dir": str(tmp_path)}})
    assert f"{tmp_path / 'bad.yaml'}:4:" in str(raised.value)
    assert "bad duration" in str(raised.value)


def test_event_filters_split_long_name_lists_and_refuse_what_cannot_fit():
    from nudge.engine import Rule

    def plan_with(names: list[str]):  # type: ignore[no-untyped-def]
        rules = [
            Rule.model_validate({"id": f"r{i}", "when": {"event": name}, "action": {"channel": "event"}})
            for i, name in enumerate(names)
        ]
        return compile_rules(rules)

    patterns = event_filter_patterns(plan_with([f"event_{i:03d}_{'x' * 100}" for i in range(60)]))
    assert len(patterns) == 5
    assert all(len(p) <= 4096 for p in patterns)
    with pytest.raises(ValueError, match="event names"):
        event_filter_patterns(plan_with([f"event_{i:03d}_{'x' * 100}" for i in range(200)]))


def test_activations_table_keeps_the_audit_trail_for_400_days(template: Template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "nudge-activations",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )
    sender = only(template, "AWS::Lambda::Function", {"Handler": "nudge.handlers.delivery.handler"})
    assert sender["Properties"]["Environment"]["Variables"]["NUDGE_ACTIVATION_TTL_DAYS"] == "400"


def test_delivery_reads_the_firings_queue_with_partial_batch_responses(template: Template):
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )


def test_email_has_a_configuration_set_and_a_bus_takes_webhooks_and_events(template: Template):
    template.has_resource_properties("AWS::SES::ConfigurationSet", {"Name": "nudge-email"})
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "nudge-firings"})


def test_unsubscribe_endpoint_is_a_public_function_url_with_a_signing_secret(template: Template):
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE"})
    template.has_resource_properties(
        "AWS::SecretsManager::Secret", {"GenerateSecretString": Match.object_like({"PasswordLength": 48})}
    )
    unsubscribe = only(template, "AWS::Lambda::Function", {"Handler": "nudge.handlers.unsubscribe.handler"})
    assert "NUDGE_UNSUBSCRIBE_SECRET_ARN" in unsubscribe["Properties"]["Environment"]["Variables"]
    # Public, so capped: a flood of valid links cannot take the evaluator's and delivery's concurrency.
    assert unsubscribe["Properties"]["ReservedConcurrentExecutions"] == 5


def test_a_bad_policy_fails_synth_with_its_file_and_line(tmp_path: Path):
    shutil.copy("rules/cart_abandonment.yaml", tmp_path)
    shutil.copytree("rules/templates", tmp_path / "templates")
    (tmp_path / "policy.yaml").write_text("allowed_lateness: 2m\ndedupe_window: 1m\n")
    with pytest.raises(RuleLoadError) as raised:
        build_app(context={**NO_BUNDLING, "nudge": {"rules_dir": str(tmp_path)}})
    assert f"{tmp_path / 'policy.yaml'}:1:" in str(raised.value)
    assert "dedupe_window 1m is shorter than allowed_lateness 2m" in str(raised.value)


def test_a_bad_guardrail_fails_synth_with_its_file_and_line(tmp_path: Path):
    shutil.copy("rules/cart_abandonment.yaml", tmp_path)
    shutil.copytree("rules/templates", tmp_path / "templates")
    (tmp_path / "policy.yaml").write_text(
        'frequency_caps:\n  - {channel: any, max: 3, per: 7d}\nquiet_hours:\n  start: "21:00"\n  end: "9"\n'
    )
    with pytest.raises(RuleLoadError) as raised:
        build_app(context={**NO_BUNDLING, "nudge": {"rules_dir": str(tmp_path)}})
    assert f"{tmp_path / 'policy.yaml'}:5:" in str(raised.value)
    assert "'9' is not a time of day" in str(raised.value)
