"""One definition of the stack's resources and tunables, shared by ``infra/`` and the local stack.

CDK reads these to provision AWS; ``nudge local`` reads the very same values to create the
same resources in its embedded moto server, so the two cannot drift apart. Values come from the
``nudge`` key of ``cdk.json``'s context (or ``cdk deploy -c nudge='{"batch_size": 100}'``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .engine.durations import parse_duration


class WebhookSettings(BaseModel):
    """A marketing platform's HTTP API, called through an EventBridge API destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(pattern=r"^https://")
    http_method: Literal["POST", "PUT"] = "POST"
    api_key_header: str = "Authorization"
    secret_name: str = Field(description="Secrets Manager secret holding the API key")
    rate_limit_per_second: int = Field(default=10, ge=1, le=300)


class StackSettings(BaseModel):
    """Tunables of a Nudge deployment; every field has a production-ready default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(default="nudge", pattern=r"^[a-z][a-z0-9-]{1,30}$")
    rules_dir: str = "rules"
    stream_mode: Literal["on_demand", "provisioned"] = "on_demand"
    shard_count: int = Field(default=1, ge=1, description="only with stream_mode: provisioned")
    stream_retention_hours: int = Field(default=24, ge=24, le=8760)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    retry_attempts: int = Field(default=5, ge=0, le=10_000)
    max_record_age_seconds: int = Field(default=6 * 3600, ge=60, le=604_800)
    parallelization_factor: int = Field(default=1, ge=1, le=10)
    state_ttl_margin: str = "1d"
    timer_retry_attempts: int = Field(default=10, ge=0, le=185)
    timer_max_event_age_seconds: int = Field(default=86_400, ge=60, le=86_400)
    architecture: Literal["arm64", "x86_64"] = "arm64"
    python_version: Literal["3.12", "3.13"] = "3.12"
    evaluator_memory_mb: int = Field(default=1024, ge=128, le=10_240)
    evaluator_timeout_seconds: int = Field(default=60, ge=5, le=900)
    log_retention_days: int = 30
    alarm_email: str | None = None
    # Delivery
    email_from: str = "Nudge Shop <hello@shop.example.com>"
    ses_identity: str = "shop.example.com"
    site_url: str = "https://shop.example.com"
    sms_provider: Literal["sns", "end_user_messaging"] = "sns"
    sms_origination_identity: str = ""
    sms_configuration_set: str = ""
    push_application_id: str = ""
    max_delivery_attempts: int = Field(default=5, ge=1, le=20)
    activation_ttl_days: int = Field(default=400, ge=1)
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)

    @property
    def state_ttl_margin_ms(self) -> int:
        return parse_duration(self.state_ttl_margin)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.prefix)

    @classmethod
    def from_context(cls, value: Any) -> StackSettings:
        return cls.model_validate(value or {})


class ResourceNames:
    """Physical names of the stack's resources (fixed, so timers and tools can address them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stream = f"{prefix}-events"
        self.state_table = f"{prefix}-customer-state"
        self.firings_queue = f"{prefix}-firings"
        self.firings_dlq = f"{prefix}-firings-dlq"
        self.evaluator_dlq = f"{prefix}-evaluator-dlq"
        self.rejected_events_queue = f"{prefix}-rejected-events"
        self.schedule_group = f"{prefix}-timers"
        self.timers_dlq = f"{prefix}-timers-dlq"
        self.evaluator_function = f"{prefix}-evaluator"
        self.activations_table = f"{prefix}-activations"
        self.event_bus = f"{prefix}-firings"
        self.ses_configuration_set = f"{prefix}-email"
