"""The stack's one KMS key: what it encrypts, which services may use it and on whose behalf; and the
delivery role's SNS grant, which reaches phone numbers and no topic.

Synthesized once for the module, with a webhook destination (so the webhook DLQ exists) and the
default SNS path for SMS.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import build_app
from tests.infra.cfn import text

CONTEXT = {
    "aws:cdk:bundling-stacks": [],
    "nudge": {"webhooks": {"crm": {"endpoint": "https://api.crm.example.com/v1/events", "secret_name": "nudge/crm"}}},
}
Statement = dict[str, Any]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    _, stack = build_app(context=CONTEXT)
    resources: dict[str, Any] = Template.from_stack(stack).to_json()["Resources"]
    return resources


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template.items() if resource["Type"] == kind}


def key_id(template: dict[str, Any]) -> str:
    """The stack's key, by its alias (the audit trail has a key of its own, ``alias/nudge-audit``)."""
    [alias] = [
        a for a in of_type(template, "AWS::KMS::Alias").values() if a["Properties"]["AliasName"] == "alias/nudge"
    ]
    name: str = alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
    return name


def key_policy(template: dict[str, Any]) -> list[Statement]:
    statements: list[Statement] = template[key_id(template)]["Properties"]["KeyPolicy"]["Statement"]
    return [text(statement) for statement in statements]


def grants_to(template: dict[str, Any], service: str) -> list[Statement]:
    return [s for s in key_policy(template) if s["Principal"].get("Service") == service]


def listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_cloudwatch_may_use_the_key_for_this_accounts_alarms_only(template: dict[str, Any]):
    [grant] = grants_to(template, "cloudwatch.amazonaws.com")
    assert sorted(listed(grant["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111122223333"},
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:*"},
    }


def test_eventbridge_may_park_failed_webhooks_in_the_encrypted_dlq(template: dict[str, Any]):
    [rule] = [r for r in of_type(template, "AWS::Events::Rule").values() if "EventBusName" in r["Properties"]]
    [target] = rule["Properties"]["Targets"]
    dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert template[dlq]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id(template), "Arn"]}
    # A rule of the Nudge bus: its ARN is arn:...:rule/nudge-firings/<name>, whatever name it is given.
    bus = of_type(template, "AWS::Events::EventBus")
    assert rule["Properties"]["EventBusName"] == {"Ref": next(iter(bus))}
    rules_of_the_bus = "arn:aws:events:eu-west-1:111122223333:rule/nudge-firings/*"
    [grant] = [
        s
        for s in grants_to(template, "events.amazonaws.com")
        if s.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn") == rules_of_the_bus
    ]
    assert sorted(listed(grant["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111122223333"},
        "ArnLike": {"aws:SourceArn": rules_of_the_bus},
    }


def test_eventbridge_may_park_undeliverable_ses_events_in_the_encrypted_feedback_dlq(template: dict[str, Any]):
    [rule] = [r for r in of_type(template, "AWS::Events::Rule").values() if "EventBusName" not in r["Properties"]]
    [target] = rule["Properties"]["Targets"]
    dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert template[dlq]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id(template), "Arn"]}
    # A rule of the default bus, named: its ARN is arn:...:rule/<name>.
    feedback_rule = f"arn:aws:events:eu-west-1:111122223333:rule/{rule['Properties']['Name']}"
    [grant] = [
        s
        for s in grants_to(template, "events.amazonaws.com")
        if s.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn") == feedback_rule
    ]
    assert sorted(listed(grant["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": "111122223333"}


def test_the_bus_carrying_webhook_payloads_is_encrypted_with_the_stack_key(template: dict[str, Any]):
    [bus] = of_type(template, "AWS::Events::EventBus").values()
    assert bus["Properties"]["KmsKeyIdentifier"] == {"Fn::GetAtt": [key_id(template), "Arn"]}
    bus_arn = "arn:aws:events:eu-west-1:111122223333:event-bus/nudge-firings"
    [grant] = [s for s in grants_to(template, "events.amazonaws.com") if "ArnLike" not in s.get("Condition", {})]
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(listed(grant["Action"]))
    assert grant["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": "111122223333",
            "aws:SourceArn": bus_arn,
            "kms:EncryptionContext:aws:events:event-bus:arn": bus_arn,
        }
    }


def test_every_log_group_is_encrypted_with_the_stack_key_that_logs_may_use_for_them(template: dict[str, Any]):
    groups = of_type(template, "AWS::Logs::LogGroup")
    assert len(groups) == 4  # one per function
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id(template), "Arn"]}
        # The condition matches CloudFormation's generated names (<stack>-<logical id>-<suffix>).
        assert "LogGroupName" not in group["Properties"]
    [grant] = grants_to(template, "logs.eu-west-1.amazonaws.com")
    assert "kms:GenerateDataKey*" in grant["Action"] and "kms:Decrypt*" in grant["Action"]
    pattern = "arn:aws:logs:eu-west-1:111122223333:log-group:Nudge-*"
    assert grant["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": pattern}}
    for name in groups:
        assert fnmatchcase(f"arn:aws:logs:eu-west-1:111122223333:log-group:Nudge-{name}-AbC123", pattern)


def test_no_service_may_use_the_key_without_a_condition(template: dict[str, Any]):
    services = [s for s in key_policy(template) if "Service" in s["Principal"]]
    # cloudwatch, logs, events for the bus, events for the webhook DLQ, events for the feedback DLQ
    assert len(services) == 5
    for statement in services:
        assert statement.get("Condition"), statement


def allowed(statements: list[Statement], action: str, resource: str) -> bool:
    """IAM's verdict for one request: an explicit deny wins, else any allow, else the implicit deny."""

    def matches(statement: Statement) -> bool:
        actions, resources = listed(statement["Action"]), listed(statement["Resource"])
        return any(fnmatchcase(action, a) for a in actions) and any(fnmatchcase(resource, r) for r in resources)

    verdicts = {statement["Effect"] for statement in statements if matches(statement)}
    return "Deny" not in verdicts and "Allow" in verdicts


def test_delivery_may_text_a_phone_number_but_publish_to_no_topic(template: dict[str, Any]):
    [policy] = [p for p in of_type(template, "AWS::IAM::Policy").values() if "Sender" in str(p["Properties"]["Roles"])]
    statements = [text(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    sns = [s for s in statements if any(a.startswith("sns:") for a in listed(s["Action"]))]
    assert {(s["Effect"], s["Resource"]) for s in sns} == {("Allow", "*"), ("Deny", "arn:aws:sns:*:*:*")}
    # A direct SMS Publish names the phone number, not an ARN: only the allow on "*" matches it.
    assert allowed(statements, "sns:Publish", "+15555550100")
    for target in (
        "arn:aws:sns:eu-west-1:111122223333:nudge-alarms",
        "arn:aws:sns:us-east-1:999999999999:someone-elses-topic",
        "arn:aws:sns:eu-west-1:111122223333:endpoint/GCM/app/0123",
    ):
        assert not allowed(statements, "sns:Publish", target), target
