"""The customer data tools in the template: the audit table under a key of its own, and the one role
and policy the tools use, granting exactly what explain, export, erase and audit do.

Synthesized once for the module (without bundling). References are compared as ``<LogicalId.Attr>``
text, with the pseudo parameters filled in, so a grant is checked against the resource it names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import build_app
from tests.infra.cfn import text

ACCOUNT_ROOT = "arn:aws:iam::111122223333:root"
Resources = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    _, stack = build_app(context={"aws:cdk:bundling-stacks": []})
    return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> Resources:
    found: Resources = template["Resources"]
    return found


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def logical_id(resources: Resources, kind: str, **props: Any) -> str:
    [name] = [
        name
        for name, resource in resources.items()
        if resource["Type"] == kind and all(resource["Properties"].get(k) == v for k, v in props.items())
    ]
    return name


def aliased_key(resources: Resources, alias: str) -> str:
    target = resources[logical_id(resources, "AWS::KMS::Alias", AliasName=alias)]["Properties"]["TargetKeyId"]
    name: str = target["Fn::GetAtt"][0]
    return name


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource) pair the statements allow."""
    return {
        (action, resource)
        for statement in (text(s) for s in statements)
        if statement["Effect"] == "Allow"
        for action in listed(statement["Action"])
        for resource in listed(statement["Resource"])
    }


def tools_policy(resources: Resources) -> dict[str, Any]:
    policy = resources[logical_id(resources, "AWS::IAM::ManagedPolicy", ManagedPolicyName="nudge-customer-data-tools")]
    document: dict[str, Any] = policy["Properties"]["PolicyDocument"]
    return document


def arn(resources: Resources, kind: str, **props: Any) -> str:
    return f"<{logical_id(resources, kind, **props)}.Arn>"


def test_the_audit_table_is_retained_under_a_rotating_key_of_its_own_with_ttl(resources: Resources) -> None:
    table = resources[logical_id(resources, "AWS::DynamoDB::Table", TableName="nudge-audit")]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    audit_key, stack_key = aliased_key(resources, "alias/nudge-audit"), aliased_key(resources, "alias/nudge")
    assert audit_key != stack_key
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": [audit_key, "Arn"]},
    }
    key = resources[audit_key]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # it must outlive the stack as long as the table it can read


def test_the_audit_key_policy_grants_only_the_account(resources: Resources) -> None:
    statements = text(resources[aliased_key(resources, "alias/nudge-audit")]["Properties"]["KeyPolicy"]["Statement"])
    assert [statement["Principal"] for statement in statements] == [{"AWS": ACCOUNT_ROOT}]


def test_the_role_is_assumable_by_the_account_for_an_hour_and_has_the_tools_policy_only(resources: Resources) -> None:
    role_id = logical_id(resources, "AWS::IAM::Role", RoleName="nudge-customer-data")
    props = text(resources[role_id]["Properties"])
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": ACCOUNT_ROOT}}
    ]
    assert props["MaxSessionDuration"] == 3600
    policy_id = logical_id(resources, "AWS::IAM::ManagedPolicy", ManagedPolicyName="nudge-customer-data-tools")
    assert props["ManagedPolicyArns"] == [f"<{policy_id}>"]
    assert "Policies" not in props
    inline = [
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", [])
    ]
    assert inline == []


def test_the_tools_policy_allows_exactly_what_the_tools_do(resources: Resources) -> None:
    table = "AWS::DynamoDB::Table"
    state, profiles = (
        arn(resources, table, TableName="nudge-customer-state"),
        arn(resources, table, TableName="nudge-customer-profiles"),
    )
    activations = arn(resources, table, TableName="nudge-activations")
    audit = arn(resources, table, TableName="nudge-audit")
    stream = arn(resources, "AWS::Kinesis::Stream", Name="nudge-events")
    stack_key = f"<{aliased_key(resources, 'alias/nudge')}.Arn>"
    audit_key = f"<{aliased_key(resources, 'alias/nudge-audit')}.Arn>"
    document = tools_policy(resources)
    assert grants(document["Statement"]) == {
        ("dynamodb:GetItem", state),
        ("dynamodb:GetItem", profiles),
        ("dynamodb:Query", activations),
        ("dynamodb:Query", f"{activations}/index/by_customer"),
        ("kinesis:PutRecords", stream),
        ("kinesis:DescribeStreamSummary", stream),
        ("kms:Decrypt", stack_key),
        ("kms:GenerateDataKey", stack_key),
        ("dynamodb:PutItem", audit),
        ("dynamodb:Query", audit),
        ("kms:Encrypt", audit_key),
        ("kms:Decrypt", audit_key),
        ("kms:GenerateDataKey", audit_key),
    }
    for statement in text(document["Statement"]):
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in listed(statement["Action"])), statement
        assert not any("*" in resource for resource in listed(statement["Resource"])), statement


def test_the_keys_are_usable_only_through_the_services_that_encrypt_with_them(resources: Resources) -> None:
    stack_key = f"<{aliased_key(resources, 'alias/nudge')}.Arn>"
    audit_key = f"<{aliased_key(resources, 'alias/nudge-audit')}.Arn>"
    conditions = {
        statement["Resource"]: statement.get("Condition")
        for statement in text(tools_policy(resources)["Statement"])
        if any(action.startswith("kms:") for action in listed(statement["Action"]))
    }
    assert conditions == {
        stack_key: {
            "StringEquals": {"kms:ViaService": ["dynamodb.eu-west-1.amazonaws.com", "kinesis.eu-west-1.amazonaws.com"]}
        },
        audit_key: {"StringEquals": {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}},
    }


def test_only_the_tools_policy_names_the_audit_table_or_its_key(resources: Resources) -> None:
    """No function's role, no other role or policy: what refers to the table or the key is the table
    (its encryption), the alias, and the tools' policy."""
    audit_key = aliased_key(resources, "alias/nudge-audit")
    audit_table = logical_id(resources, "AWS::DynamoDB::Table", TableName="nudge-audit")
    referring = {
        name
        for name, resource in resources.items()
        for target in (audit_key, audit_table)
        if name != target and f'"{target}"' in json.dumps(resource)
    }
    alias = logical_id(resources, "AWS::KMS::Alias", AliasName="alias/nudge-audit")
    tools = logical_id(resources, "AWS::IAM::ManagedPolicy", ManagedPolicyName="nudge-customer-data-tools")
    assert referring == {audit_table, alias, tools}
    # And by name: no policy of any function grants on an audit ARN spelt out.
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 4
    function_roles = {r["Properties"]["Role"]["Fn::GetAtt"][0] for r in functions}
    for name, resource in resources.items():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {role["Ref"] for role in resource["Properties"].get("Roles", [])} & function_roles
        ):
            assert "nudge-audit" not in json.dumps(resource), name


def test_the_evaluator_may_erase_a_customers_profile_and_activations(resources: Resources) -> None:
    table = "AWS::DynamoDB::Table"
    state = arn(resources, table, TableName="nudge-customer-state")
    profiles = arn(resources, table, TableName="nudge-customer-profiles")
    activations = arn(resources, table, TableName="nudge-activations")
    evaluator = next(
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == "nudge.handlers.evaluator.handler"
    )
    role = evaluator["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    dynamodb = {(action, resource) for action, resource in grants(statements) if action.startswith("dynamodb:")}
    assert dynamodb == {
        ("dynamodb:BatchGetItem", state),
        ("dynamodb:PutItem", state),
        ("dynamodb:DeleteItem", state),  # tombstones are read with BatchGetItem: no GetItem
        ("dynamodb:BatchGetItem", profiles),
        ("dynamodb:PutItem", profiles),
        ("dynamodb:DeleteItem", profiles),
        ("dynamodb:PutItem", activations),
        ("dynamodb:UpdateItem", activations),
        ("dynamodb:Query", activations),
        ("dynamodb:DeleteItem", activations),
        ("dynamodb:Query", f"{activations}/index/by_customer"),
    }


def test_the_outputs_give_the_role_and_the_policy(template: dict[str, Any], resources: Resources) -> None:
    outputs = template["Outputs"]
    role = logical_id(resources, "AWS::IAM::Role", RoleName="nudge-customer-data")
    policy = logical_id(resources, "AWS::IAM::ManagedPolicy", ManagedPolicyName="nudge-customer-data-tools")
    assert outputs["CustomerDataRoleArn"]["Value"] == {"Fn::GetAtt": [role, "Arn"]}
    assert outputs["CustomerDataPolicyArn"]["Value"] == {"Ref": policy}
