"""cdk-nag's AwsSolutions checks run at synth and fail on any unacknowledged finding."""

from __future__ import annotations

import pytest
from aws_cdk import aws_iam as iam

from infra.app import build_app


def test_the_stack_passes_aws_solutions_checks():
    app, _ = build_app(context={"aws:cdk:bundling-stacks": []})
    assembly = app.synth()
    assert [stack.stack_name for stack in assembly.stacks] == ["Nudge"]


def test_an_unacknowledged_finding_fails_synth():
    app, stack = build_app(context={"aws:cdk:bundling-stacks": []})
    stack.evaluation.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        app.synth()
