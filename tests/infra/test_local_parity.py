"""``nudge local`` builds the stack CDK deploys: same resources, same settings, same function configuration.

The stack is synthesized once for the module (without bundling) and the local stack provisioned
once into an embedded moto server, both from the same non-default settings, so a value either
side hard-codes, forgets or derives differently shows up here. Every setting both sides read is
compared: each function's ``NUDGE_*`` environment (literals equal; a CloudFormation reference
must be, locally, a concrete address of the resource it references), every queue's attributes,
every table's keys, indexes and TTL, the stream, and the named resources the functions address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import build_app
from nudge.local.embedded import REGION, EmbeddedAws
from nudge.local.stack import LocalStack
from nudge.settings import StackSettings, WebhookSettings

SETTINGS = StackSettings(
    prefix="parity",
    stream_mode="provisioned",
    shard_count=2,
    stream_retention_hours=48,
    state_ttl_margin="2h",
    timer_retry_attempts=3,
    timer_max_event_age_seconds=3600,
    email_from="Parity <hello@parity.example.org>",
    ses_identity="parity.example.org",
    site_url="https://parity.example.org",
    sms_provider="end_user_messaging",
    sms_origination_identity="pool-0123456789",
    sms_configuration_set="parity-sms",
    push_application_id="0123456789abcdef",
    max_delivery_attempts=7,
    activation_ttl_days=90,
    webhooks={"crm": WebhookSettings(endpoint="https://api.crm.example.com/v1/events", secret_name="parity/crm")},
)
"""No default where a default could hide drift."""

HANDLERS = (
    "nudge.handlers.evaluator.handler",
    "nudge.handlers.delivery.handler",
    "nudge.handlers.unsubscribe.handler",
    "nudge.handlers.feedback.handler",
)

# CloudFormation's documented defaults, for properties a template leaves out.
QUEUE_DEFAULTS = {
    "VisibilityTimeout": 30,
    "MessageRetentionPeriod": 345_600,
    "DelaySeconds": 0,
    "ReceiveMessageWaitTimeSeconds": 0,
}
STREAM_RETENTION_DEFAULT_HOURS = 24

Resources = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def template() -> Resources:
    _, stack = build_app(context={"aws:cdk:bundling-stacks": [], "nudge": SETTINGS.model_dump(mode="json")})
    resources: Resources = Template.from_stack(stack).to_json()["Resources"]
    return resources


@pytest.fixture(scope="module")
def local() -> Iterator[LocalStack]:
    aws = EmbeddedAws()
    try:
        yield LocalStack("rules", settings=SETTINGS, aws=aws)
    finally:
        aws.stop()


def of_type(template: Resources, kind: str) -> list[dict[str, Any]]:
    return [resource["Properties"] for resource in template.values() if resource["Type"] == kind]


def referenced(template: Resources, value: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(resource type, attribute, properties) of a ``Ref`` or ``Fn::GetAtt``; ``Ref`` is attribute "Ref"."""
    if set(value) == {"Ref"}:
        logical_id, attribute = value["Ref"], "Ref"
    elif set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
    else:
        pytest.fail(f"not a plain reference: {value}")
    resource = template[logical_id]
    return resource["Type"], attribute, resource.get("Properties", {})


# -- functions -------------------------------------------------------------------------------------


def _arn(service: str, rest: str) -> str:
    return rf"arn:aws:{service}:{REGION}:\d{{12}}:{rest}"


# What a reference in the template must be locally: a pattern the local value fully matches,
# built from the referenced resource's properties (its physical name, where the template sets one).
ADDRESS_PATTERNS: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("AWS::DynamoDB::Table", "Ref"): lambda p: re.escape(p["TableName"]),
    ("AWS::Kinesis::Stream", "Ref"): lambda p: re.escape(p["Name"]),
    ("AWS::Events::EventBus", "Ref"): lambda p: re.escape(p["Name"]),
    ("AWS::Scheduler::ScheduleGroup", "Ref"): lambda p: re.escape(p["Name"]),
    ("AWS::Kinesis::Stream", "Arn"): lambda p: _arn("kinesis", "stream/" + re.escape(p["Name"])),
    ("AWS::SQS::Queue", "Arn"): lambda p: _arn("sqs", re.escape(p["QueueName"])),
    ("AWS::SQS::Queue", "Ref"): lambda p: r"https?://[^/]+/\d{12}/" + re.escape(p["QueueName"]),
    ("AWS::IAM::Role", "Arn"): lambda p: r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+",
    ("AWS::SecretsManager::Secret", "Ref"): lambda p: _arn("secretsmanager", r"secret:[\w/+=.@-]+"),
    ("AWS::Lambda::Url", "FunctionUrl"): lambda p: r"https?://\S+",
}

# Literal values the deployment alone decides, with what the local value must be instead.
LOCAL_LITERALS: dict[str, Callable[[str], bool]] = {
    # /var/task/rules in the Lambda bundle; locally the rules directory the stack was started with.
    "NUDGE_RULES_DIR": lambda value: (Path(value) / "templates").is_dir(),
}


def local_environment(local: LocalStack, handler: str) -> dict[str, str]:
    resources = local.resources
    config = {
        HANDLERS[0]: resources.config,
        HANDLERS[1]: resources.delivery,
        HANDLERS[2]: resources.unsubscribe,
        HANDLERS[3]: resources.feedback,
    }
    return config[handler].to_env()


def test_the_same_functions_are_configured(template: Resources):
    assert sorted(props["Handler"] for props in of_type(template, "AWS::Lambda::Function")) == sorted(HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.split(".")[2])
def test_function_environment_matches_the_template(template: Resources, local: LocalStack, handler: str):
    [function] = [p for p in of_type(template, "AWS::Lambda::Function") if p["Handler"] == handler]
    deployed = {k: v for k, v in function["Environment"]["Variables"].items() if k.startswith("NUDGE_")}
    mine = local_environment(local, handler)
    assert sorted(mine) == sorted(deployed)
    literals = {k: v for k, v in deployed.items() if isinstance(v, str) and k not in LOCAL_LITERALS}
    assert {k: mine[k] for k in literals} == literals
    for name, value in deployed.items():
        if name in LOCAL_LITERALS:
            assert LOCAL_LITERALS[name](mine[name]), f"{name}={mine[name]!r} locally (deployed: {value!r})"
        elif not isinstance(value, str):
            kind, attribute, props = referenced(template, value)
            pattern = ADDRESS_PATTERNS.get((kind, attribute))
            assert pattern is not None, f"{name} references {kind}.{attribute}: add what it must be locally"
            assert re.fullmatch(pattern(props), mine[name]), f"{name}={mine[name]!r} is not a {kind} {attribute}"


def test_the_scheduler_role_is_assumed_by_scheduler(template: Resources, local: LocalStack):
    """NUDGE_SCHEDULER_ROLE_ARN is a role either way; it must also trust the same service."""
    [evaluator] = [p for p in of_type(template, "AWS::Lambda::Function") if p["Handler"] == HANDLERS[0]]
    _, _, role = referenced(template, evaluator["Environment"]["Variables"]["NUDGE_SCHEDULER_ROLE_ARN"])
    role_name = local.resources.config.scheduler_role_arn.rsplit("/", 1)[1]
    mine = local.session.client("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(mine, str):
        mine = json.loads(mine)

    def principals(document: dict[str, Any]) -> set[str]:
        return {s["Principal"]["Service"] for s in document["Statement"] if s["Action"] == "sts:AssumeRole"}

    assert principals(mine) == principals(role["AssumeRolePolicyDocument"]) == {"scheduler.amazonaws.com"}


def test_the_unsubscribe_secret_is_a_stored_secret(local: LocalStack):
    """Both functions read the signing key from Secrets Manager, as deployed: no key in the environment."""
    arn = local.resources.delivery.unsubscribe_secret_arn
    assert local.resources.unsubscribe.unsubscribe_secret_arn == arn
    assert local.session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


# -- queues, tables, stream, named resources -------------------------------------------------------


def deployed_queues(template: Resources) -> dict[str, dict[str, Any]]:
    queues = {}
    for props in of_type(template, "AWS::SQS::Queue"):
        attributes: dict[str, Any] = {name: props.get(name, default) for name, default in QUEUE_DEFAULTS.items()}
        if "RedrivePolicy" in props:
            _, _, dlq = referenced(template, props["RedrivePolicy"]["deadLetterTargetArn"])
            attributes["RedrivePolicy"] = {
                "deadLetterTarget": dlq["QueueName"],
                "maxReceiveCount": int(props["RedrivePolicy"]["maxReceiveCount"]),
            }
        queues[props["QueueName"]] = attributes
    return queues


def local_queues(local: LocalStack) -> dict[str, dict[str, Any]]:
    sqs = local.session.client("sqs")
    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        attributes: dict[str, Any] = {name: int(found[name]) for name in QUEUE_DEFAULTS}
        if "RedrivePolicy" in found:
            policy = json.loads(found["RedrivePolicy"])
            attributes["RedrivePolicy"] = {
                "deadLetterTarget": policy["deadLetterTargetArn"].rsplit(":", 1)[1],
                "maxReceiveCount": int(policy["maxReceiveCount"]),
            }
        queues[url.rsplit("/", 1)[1]] = attributes
    return queues


def test_queues_match_the_template(template: Resources, local: LocalStack):
    deployed = deployed_queues(template)
    assert "RedrivePolicy" in deployed[f"{SETTINGS.prefix}-firings"]
    assert local_queues(local) == deployed


def _key_schema(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema]


def _indexes(indexes: list[dict[str, Any]]) -> dict[str, Any]:
    return {i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in indexes}


def deployed_tables(template: Resources) -> dict[str, dict[str, Any]]:
    return {
        props["TableName"]: {
            "keys": _key_schema(props["KeySchema"]),
            "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]),
            "billing": props["BillingMode"],
            "indexes": _indexes(props.get("GlobalSecondaryIndexes", [])),
            "ttl": (props["TimeToLiveSpecification"]["AttributeName"], props["TimeToLiveSpecification"]["Enabled"]),
        }
        for props in of_type(template, "AWS::DynamoDB::Table")
    }


def local_tables(local: LocalStack) -> dict[str, dict[str, Any]]:
    dynamodb = local.session.client("dynamodb")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        tables[name] = {
            "keys": _key_schema(table["KeySchema"]),
            "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]),
            "billing": table["BillingModeSummary"]["BillingMode"],
            "indexes": _indexes(table.get("GlobalSecondaryIndexes", [])),
            "ttl": (ttl.get("AttributeName"), ttl["TimeToLiveStatus"] == "ENABLED"),
        }
    return tables


def test_tables_match_the_template(template: Resources, local: LocalStack):
    assert local_tables(local) == deployed_tables(template)


def test_stream_matches_the_template(template: Resources, local: LocalStack):
    [stream] = of_type(template, "AWS::Kinesis::Stream")
    summary = local.session.client("kinesis").describe_stream_summary(StreamName=stream["Name"])
    summary = summary["StreamDescriptionSummary"]
    mode = stream.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    assert summary["StreamModeDetails"]["StreamMode"] == mode == "PROVISIONED"
    assert summary["OpenShardCount"] == stream["ShardCount"]
    assert summary["RetentionPeriodHours"] == stream.get("RetentionPeriodHours", STREAM_RETENTION_DEFAULT_HOURS)


def test_named_resources_exist_locally(template: Resources, local: LocalStack):
    """The schedule group, event bus and SES configuration set the functions address by name."""
    [group] = of_type(template, "AWS::Scheduler::ScheduleGroup")
    [bus] = of_type(template, "AWS::Events::EventBus")
    [configuration_set] = of_type(template, "AWS::SES::ConfigurationSet")
    session = local.session
    assert session.client("scheduler").get_schedule_group(Name=group["Name"])["Name"] == group["Name"]
    assert session.client("events").describe_event_bus(Name=bus["Name"])["Name"] == bus["Name"]
    sesv2 = session.client("sesv2")
    found = sesv2.get_configuration_set(ConfigurationSetName=configuration_set["Name"])
    assert found["ConfigurationSetName"] == configuration_set["Name"]
