"""Handler configuration from environment variables, validated once per cold start.

A deployment's values are built from its ``StackSettings`` by ``nudge.settings`` alone
(``evaluator_config``, ``delivery_config``, ``unsubscribe_config``, ``feedback_config``), for CDK and
``nudge local`` alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


def _default_rules_dir() -> str:
    # In the Lambda bundle, rules/ sits beside the nudge package at the root of the code asset.
    return str(Path(__file__).resolve().parents[1] / "rules")


class EnvConfig(BaseModel):
    """A handler's settings, carried in ``NUDGE_<FIELD>`` environment variables."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {name: env[f"NUDGE_{name.upper()}"] for name in cls.model_fields if f"NUDGE_{name.upper()}" in env}
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        return {f"NUDGE_{name.upper()}": str(value) for name, value in self.model_dump().items()}


class EvaluatorConfig(EnvConfig):
    """What the evaluator needs to know about its stack (set by CDK, or by ``nudge local``)."""

    state_table: str
    profile_table: str
    activations_table: str = ""
    """Where each message event is recorded against its firing (``""``: nowhere, as in a bare test)."""
    profile_retention_days: int = 730
    erasure_tombstone_seconds: int = 8 * 86_400
    """How long an erasure's tombstone stops events older than it (``StackSettings.erasure_tombstone_seconds``)."""
    tracing: bool = False
    """Powertools' Tracer in the evaluator (``StackSettings.evaluator_tracing``); read by the handler at import."""
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
    timer_key: str = ""
    """The key that signs timer records, given directly (tests); deployments set ``timer_key_secret_arn``."""
    timer_key_secret_arn: str = ""


class DeliveryConfig(EnvConfig):
    """What the delivery function needs: queues, the activation log, channel settings, links."""

    activations_table: str
    firings_queue_url: str
    firings_dlq_url: str
    event_bus: str
    site_url: str = "https://shop.example.com"
    unsubscribe_url: str = "https://unsubscribe.example.com"
    unsubscribe_secret: str = ""
    unsubscribe_secret_arn: str = ""
    rules_dir: str = Field(default_factory=_default_rules_dir)
    email_from: str = "Nudge <hello@example.com>"
    ses_configuration_set: str = ""
    sms_provider: str = "sns"
    sms_origination_identity: str = ""
    sms_configuration_set: str = ""
    sms_recipients_table: str = ""
    """The phone index a ``STOP`` reply is mapped by; empty: none (the SNS path gets no replies)."""
    sms_recipient_retention_days: int = 90
    push_application_id: str = ""
    webhook_default_destination: str = ""
    max_attempts: int = 5
    activation_ttl_days: int = 400


class UnsubscribeConfig(EnvConfig):
    """The unsubscribe endpoint: where opt-outs go, and the key that signs the links."""

    events_stream_name: str
    unsubscribe_secret: str = ""
    unsubscribe_secret_arn: str = ""


class FeedbackConfig(EnvConfig):
    """The feedback function: where message events go, and the SMS phone index a reply is read by.

    The signing secret is read only with an index: the phone index's key is derived from it.
    """

    events_stream_name: str
    sms_recipients_table: str = ""
    unsubscribe_secret: str = ""
    unsubscribe_secret_arn: str = ""
