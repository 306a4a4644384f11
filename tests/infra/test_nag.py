"""cdk-nag's AwsSolutions checks run at synth and fail on any unacknowledged finding."""

from __future__ import annotations

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra.app import build_app

ALL_OPTIONS = {
    "aws:cdk:bundling-stacks": [],
    "nudge": {
        "sms_provider": "end_user_messaging",
        "sms_origination_identity": "pool-1234",
        "push_application_id": "0123456789abcdef",
        "stream_mode": "provisioned",
        "shard_count": 2,
        "webhooks": {"crm": {"endpoint": "https://api.crm.example.com/v1/events", "secret_name": "nudge/crm-key"}},
    },
}


def test_the_stack_passes_aws_solutions_checks():
    app, _ = build_app(context={"aws:cdk:bundling-stacks": []})
    assembly = app.synth()
    assert [stack.stack_name for stack in assembly.stacks] == ["Nudge"]


def test_every_option_passes_the_checks_too():
    """Provisioned shards, End User Messaging SMS, push and a webhook destination: still clean."""
    _, stack = build_app(context=ALL_OPTIONS)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Kinesis::Stream", {"ShardCount": 2})
    template.has_resource_properties(
        "AWS::Events::ApiDestination", {"InvocationEndpoint": "https://api.crm.example.com/v1/events"}
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["nudge"], "detail-type": ["nudge.webhook"], "detail": {"destination": ["crm"]}}},
    )


def test_an_unacknowledged_finding_fails_synth():
    app, stack = build_app(context={"aws:cdk:bundling-stacks": []})
    stack.evaluation.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        app.synth()
