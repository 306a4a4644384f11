"""Build the CDK app: settings from context, rules validated and compiled, cdk-nag attached."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from nudge.delivery.validation import check_destinations, validate_paths
from nudge.engine import RuleLoadError, compile_rules
from nudge.settings import SettingsError, StackSettings, placeholder_settings

from .bundling import PROJECT_ROOT, function_code
from .stack import NudgeStack


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, NudgeStack]:
    """The app ``cdk synth`` runs; tests call it with bundling turned off through ``context``."""
    app = cdk.App(context=context, outdir=outdir)
    settings = StackSettings.from_context(app.node.try_get_context("nudge") or _cdk_json_settings())
    rules_dir = (PROJECT_ROOT / settings.rules_dir).resolve()
    # The very checks `nudge validate` runs: rules, their templates, and the links between them.
    validation = validate_paths(rules_dir)
    if validation.errors:
        raise RuleLoadError(validation.errors)
    # A webhook firing reaches its platform only through the route of a configured destination.
    if unrouted := check_destinations(validation.rules, settings.webhooks):
        raise RuleLoadError(unrouted)
    plan = compile_rules([rule for rule in validation.rules.rules if rule.enabled], validation.rules.policy)
    code = function_code(rules_dir, settings.architecture, settings.python_version)
    stack = NudgeStack(
        app,
        "Nudge",
        settings=settings,
        plan=plan,
        code=code,
        rules_dir=rules_dir,
        description="Nudge: behavioural triggers evaluated in real time",
    )
    for rule in plan.rules:
        if rule.rule.action.channel == "push" and not settings.push_application_id:
            cdk.Annotations.of(stack).add_warning_v2(
                f"nudge:push:{rule.id}",
                f"rule {rule.id} sends push, but push_application_id is not set (cdk.json, context.nudge): "
                "its firings will be parked in the firings dead-letter queue",
            )
    if placeholders := placeholder_settings(settings):
        cdk.Annotations.of(stack).add_warning_v2(
            "nudge:example-settings",
            f"{', '.join(placeholders)} still on example.com (cdk.json, context.nudge): set your own sender, "
            "site and webhook endpoints before sending to real customers",
        )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def _cdk_json_settings() -> Any:
    """cdk.json's ``nudge`` context, for ``python app.py`` run without the CDK CLI."""
    return json.loads((PROJECT_ROOT / "cdk.json").read_text()).get("context", {}).get("nudge")


def main() -> None:
    # The CDK CLI sets CDK_OUTDIR; `python app.py` alone writes to ./cdk.out like `cdk synth` would.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(PROJECT_ROOT / "cdk.out")
    try:
        app, _ = build_app(outdir=outdir)
    except (RuleLoadError, SettingsError) as exc:  # file:line or field by field, not a traceback
        print(exc, file=sys.stderr)
        sys.exit(1)
    app.synth()


__all__ = ["Path", "build_app", "main"]
