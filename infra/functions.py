"""One way to declare a Nudge Lambda function: same code asset, runtime, tracing and logging."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from nudge.settings import StackSettings

_RUNTIMES = {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}
LAMBDA_RULES_DIR = "/var/task/rules"
"""Where the code asset puts the rules: beside the ``nudge`` package, at the root of ``/var/task``."""


def nudge_function(
    scope: Construct,
    construct_id: str,
    *,
    settings: StackSettings,
    code: lambda_.Code,
    handler: str,
    service: str,
    environment: dict[str, str],
    memory_mb: int = 512,
    timeout: Duration | None = None,
    description: str = "",
    reserved_concurrency: int | None = None,
) -> lambda_.Function:
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays[_retention(settings.log_retention_days)],
        removal_policy=RemovalPolicy.DESTROY,
    )
    return lambda_.Function(
        scope,
        construct_id,
        function_name=f"{settings.prefix}-{service}",
        description=description,
        runtime=_RUNTIMES[settings.python_version],
        architecture=lambda_.Architecture.ARM_64 if settings.architecture == "arm64" else lambda_.Architecture.X86_64,
        code=code,
        handler=handler,
        memory_size=memory_mb,
        timeout=timeout or Duration.seconds(30),
        reserved_concurrent_executions=reserved_concurrency or None,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        environment={
            "POWERTOOLS_SERVICE_NAME": f"nudge-{service}",
            "POWERTOOLS_METRICS_NAMESPACE": "Nudge",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            **environment,
        },
    )


def _retention(days: int) -> str:
    return {
        1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
        60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR",
    }.get(days, "ONE_MONTH")  # fmt: skip
