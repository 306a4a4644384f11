"""Handler configuration from environment variables, validated once per cold start."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


def _default_rules_dir() -> str:
    # In the Lambda bundle, rules/ sits beside the nudge package at the root of the code asset.
    return str(Path(__file__).resolve().parents[2] / "rules")


class EvaluatorConfig(BaseModel):
    """What the evaluator needs to know about its stack (set by CDK, or by ``nudge local``)."""

    model_config = ConfigDict(frozen=True)

    state_table: str
    events_stream_arn: str
    schedule_group: str
    scheduler_role_arn: str
    timers_dlq_arn: str
    firings_queue_url: str
    rejected_queue_url: str
    rules_dir: str = Field(default_factory=_default_rules_dir)
    state_ttl_margin_ms: int = 86_400_000
    timer_retry_attempts: int = 10
    timer_max_event_age_seconds: int = 86_400

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EvaluatorConfig:
        env = os.environ if environ is None else environ
        values = {name: env[f"NUDGE_{name.upper()}"] for name in cls.model_fields if f"NUDGE_{name.upper()}" in env}
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        return {f"NUDGE_{name.upper()}": str(value) for name, value in self.model_dump().items()}
