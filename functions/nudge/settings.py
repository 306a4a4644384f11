"""One definition of the stack's resources and tunables, shared by ``infra/`` and the local stack.

CDK reads these to provision AWS; ``nudge local`` reads the very same values to create the
same resources in its embedded moto server, so the two cannot drift apart. Values come from the
``nudge`` key of ``cdk.json``'s context (or ``cdk deploy -c nudge='{"batch_size": 100}'``).

This module is also the only place settings become runtime configuration: ``queue_settings``,
``table_settings`` and the ``*_config`` functions are what both sides call. They differ only in
the addresses (``*Addresses``) they pass: CDK tokens in ``infra/``, moto's ARNs and URLs locally.
Imported by the Lambda code too, so nothing here may import boto3 or aws_cdk.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import DeliveryConfig, EvaluatorConfig, FeedbackConfig, UnsubscribeConfig
from .engine import parse_duration


class WebhookSettings(BaseModel):
    """A marketing platform's HTTP API, called through an EventBridge API destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(pattern=r"^https://")
    http_method: Literal["POST", "PUT"] = "POST"
    api_key_header: str = "Authorization"
    secret_name: str = Field(description="Secrets Manager secret holding the API key")
    rate_limit_per_second: int = Field(default=10, ge=1, le=300)


RETRY_UNTIL_MAX_RECORD_AGE = -1
"""``retry_attempts`` meaning: retry a failing batch until its records reach ``max_record_age_seconds``."""


class StackSettings(BaseModel):
    """Tunables of a Nudge deployment; every field has a production-ready default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(default="nudge", pattern=r"^[a-z][a-z0-9-]{1,30}$")
    rules_dir: str = "rules"
    stream_mode: Literal["on_demand", "provisioned"] = "on_demand"
    shard_count: int = Field(default=1, ge=1, description="only with stream_mode: provisioned")
    stream_retention_hours: int = Field(default=168, ge=24, le=8760)
    """How long the stream keeps a record: 7 days, so a record the mapping gave up on (after
    ``max_record_age_seconds``) can still be fetched back by ``nudge redrive --evaluator``."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    retry_attempts: int = Field(default=RETRY_UNTIL_MAX_RECORD_AGE, ge=-1, le=10_000)
    """-1 (the default): a failing batch is retried until its oldest record is
    ``max_record_age_seconds`` old. A number N >= 0 discards it after N retries, which an outage
    spends in seconds."""
    max_record_age_seconds: int = Field(default=12 * 3600, ge=60, le=604_800)
    """The outage the mapping rides out on its own: 12 hours (a night with nobody awake). It leaves
    12 hours of the default 24-hour dedupe window (``rules/policy.yaml``) for ``nudge redrive
    --evaluator``, inside which a re-put event the evaluator had already seen is an exact no-op."""
    parallelization_factor: int = Field(default=1, ge=1, le=10)
    state_ttl_margin: str = "1d"
    profile_retention_days: int = Field(default=730, ge=1, le=3650)
    """How long a customer's profile and consent outlive their last event (the behaviour expires
    with its rules' windows); erasure removes them sooner."""
    timer_retry_attempts: int = Field(default=10, ge=0, le=185)
    timer_max_event_age_seconds: int = Field(default=86_400, ge=60, le=86_400)
    architecture: Literal["arm64", "x86_64"] = "arm64"
    python_version: Literal["3.12", "3.13"] = "3.12"
    evaluator_memory_mb: int = Field(default=1024, ge=128, le=10_240)
    evaluator_timeout_seconds: int = Field(default=60, ge=5, le=900)
    evaluator_tracing: bool = False
    """X-Ray subsegments for the evaluator's own AWS calls (Powertools' Tracer). Off by default: the
    X-Ray SDK is about 170 ms of every cold start, for a function a stream keeps warm; Lambda's own
    trace of each invocation (active tracing) is kept either way."""
    log_retention_days: int = 30
    alarm_email: str | None = None
    # Delivery
    email_from: str = "Nudge Shop <hello@shop.example.com>"
    ses_identity: str = "shop.example.com"
    site_url: str = "https://shop.example.com"
    sms_provider: Literal["sns", "end_user_messaging"] = "sns"
    sms_origination_identity: str = ""
    sms_configuration_set: str = ""
    """An End User Messaging configuration set of your own; empty (the default): the stack creates
    one (``<prefix>-sms``) that publishes delivery events to the feedback function. Yours must get
    an SNS event destination to the ``SmsFeedbackTopicArn`` output for SMS feedback to arrive."""
    sms_recipient_retention_days: int = Field(default=90, ge=1, le=730)
    """With End User Messaging: how long after the last text to a number a ``STOP`` reply from it is
    still mapped to its customer (the phone index's TTL)."""
    push_application_id: str = ""
    max_delivery_attempts: int = Field(default=5, ge=1, le=20)
    unsubscribe_reserved_concurrency: int = Field(default=5, ge=0, le=1000)
    """Concurrency reserved for (and capping) the public unsubscribe endpoint, so a flood of links
    cannot take the concurrency the evaluator and delivery share; 0 leaves it unreserved (an account
    must keep 10 unreserved: on one whose quota is 10, set 0)."""
    activation_ttl_days: int = Field(default=400, ge=1)
    audit_retention_days: int = Field(default=1095, ge=1, le=3650)
    """How long the audit trail keeps a record of each ``nudge explain``, ``export`` and ``erase``
    (three years by default): accountability outlives the data it accounts for."""
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _records_outlive_their_retries(self) -> StackSettings:
        retention_seconds = self.stream_retention_hours * 3600
        if self.max_record_age_seconds >= retention_seconds:
            raise ValueError(
                f"max_record_age_seconds ({self.max_record_age_seconds}) must be shorter than the stream retention "
                f"(stream_retention_hours: {self.stream_retention_hours}, {retention_seconds} s): a batch the mapping "
                "gives up on must still be on the stream for `nudge redrive --evaluator` to fetch it back"
            )
        return self

    @property
    def erasure_tombstone_seconds(self) -> int:
        """How long an erasure's tombstone is kept: the longest a record of the customer can still
        arrive after it (the stream's retention, plus the mapping's maximum record age for a batch
        that was retried to the end of it)."""
        return self.stream_retention_hours * 3600 + self.max_record_age_seconds

    @property
    def state_ttl_margin_ms(self) -> int:
        return parse_duration(self.state_ttl_margin)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.prefix)

    @classmethod
    def from_context(cls, value: Any) -> StackSettings:
        """The ``nudge`` context: cdk.json's object, or ``-c nudge='{...}'``'s JSON string (CDK passes
        ``-c`` values as strings). ``SettingsError`` lists each wrong field, with a did-you-mean."""
        source = "-c nudge" if isinstance(value, str) else 'cdk.json "nudge"'
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise SettingsError(
                    [f'{source}: not valid JSON ({exc}); e.g. -c nudge=\'{{"prefix": "shop2"}}\'']
                ) from None
        if value is not None and not isinstance(value, dict):
            raise SettingsError([f"{source}: must be an object of settings, not {type(value).__name__}"])
        try:
            return cls.model_validate(value or {})
        except ValidationError as exc:
            raise SettingsError([_settings_problem(source, error) for error in exc.errors()]) from None


_EXAMPLE_DOMAIN = re.compile(r"(^|[./@])example\.com\b")


def placeholder_settings(settings: StackSettings) -> list[str]:
    """The settings still on the example.com placeholders (the shipped defaults and cdk.json's sample
    webhook): ``cdk synth`` warns about them, since mail would not be delivered nor links resolve."""
    values = {
        "email_from": settings.email_from,
        "ses_identity": settings.ses_identity,
        "site_url": settings.site_url,
        **{f"webhooks.{name}.endpoint": webhook.endpoint for name, webhook in settings.webhooks.items()},
    }
    return [name for name, value in values.items() if _EXAMPLE_DOMAIN.search(value)]


class SettingsError(ValueError):
    """Wrong stack settings: one line per field (``cdk synth`` prints them and exits 1)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _settings_problem(source: str, error: Any) -> str:
    """One pydantic error as ``<source>.<field>: <what is wrong>[; did you mean <close match>?]``."""
    loc = tuple(str(part) for part in error["loc"])
    where = ".".join((source, *loc))
    # The model the last key belongs to: StackSettings, or one webhook's WebhookSettings.
    model: type[BaseModel] = WebhookSettings if len(loc) == 3 and loc[0] == "webhooks" else StackSettings
    field = loc[-1] if loc else ""
    if error["type"] == "extra_forbidden":
        return where + ": unknown setting" + _did_you_mean(field, list(model.model_fields))
    given = error.get("input")
    if error["type"] == "literal_error" and field in model.model_fields:
        allowed = [str(choice) for choice in get_args(model.model_fields[field].annotation)]
        hint = _did_you_mean(str(given), allowed)
        if hint and not isinstance(given, str):
            hint = hint.replace(" mean ", ' mean "').replace("?", '" (a string)?')
        return f"{where}: {given!r} is not one of {', '.join(allowed)}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" + (f" (got {given!r})" if loc and error["type"] != "missing" else "")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


class ResourceNames:
    """Physical names of the stack's resources (fixed, so timers and tools can address them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stream = f"{prefix}-events"
        self.state_table = f"{prefix}-customer-state"
        self.profile_table = f"{prefix}-customer-profiles"
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
        self.webhooks_dlq = f"{prefix}-webhooks-dlq"
        self.feedback_dlq = f"{prefix}-feedback-dlq"
        self.email_feedback_rule = f"{prefix}-email-feedback"
        self.sms_configuration_set = f"{prefix}-sms"
        self.sms_feedback_topic = f"{prefix}-sms-feedback"
        self.sms_recipients_table = f"{prefix}-sms-recipients"
        self.audit_table = f"{prefix}-audit"
        self.customer_data_policy = f"{prefix}-customer-data-tools"
        self.customer_data_role = f"{prefix}-customer-data"


DELIVERY_TIMEOUT_SECONDS = 60
"""The delivery function's timeout; the firings queue's visibility timeout is derived from it."""
QUEUE_RETENTION_SECONDS = 14 * 86_400
"""SQS's longest retention, on every queue: a parked message waits two weeks for its redrive."""
SQS_DEFAULT_VISIBILITY_SECONDS = 30
BY_CUSTOMER_INDEX = "by_customer"
"""The activations table's index of a customer's firings (support, export, erasure)."""
TTL_ATTRIBUTE = "expires_at"
"""The epoch-seconds attribute DynamoDB expires items by, in both tables."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Redrive(_Frozen):
    """Where a queue moves a message that was received ``max_receive_count`` times."""

    dead_letter_queue: str
    max_receive_count: int = Field(ge=1, le=1000)


class QueueSettings(_Frozen):
    """One SQS queue as both CDK and the local stack create it."""

    name: str
    visibility_timeout_seconds: int = SQS_DEFAULT_VISIBILITY_SECONDS
    retention_seconds: int = QUEUE_RETENTION_SECONDS
    redrive: Redrive | None = None


class Queues(_Frozen):
    """Every queue of the stack; ``webhooks_dlq`` exists only when webhooks are configured."""

    firings: QueueSettings
    firings_dlq: QueueSettings
    evaluator_dlq: QueueSettings
    rejected_events: QueueSettings
    timers_dlq: QueueSettings
    feedback_dlq: QueueSettings
    """Provider events the feedback function could not put on the stream after its retries."""
    webhooks_dlq: QueueSettings | None = None

    def in_creation_order(self) -> list[QueueSettings]:
        """Dead-letter queues before the queues that redrive to them (a redrive names an existing ARN)."""
        queues = [q for q in (getattr(self, name) for name in type(self).model_fields) if q is not None]
        return sorted(queues, key=lambda queue: queue.redrive is not None)


def queue_settings(settings: StackSettings) -> Queues:
    """The stack's queues: parking queues keep SQS's defaults but the longest retention; the firings
    queue hides a message for six delivery timeouts (Lambda's advice for SQS sources, so a slow
    batch is not redelivered while it runs). The delivery function parks a firing itself, with its
    reason, after ``max_delivery_attempts``; SQS's redrive comes two receives later, so it only
    catches what the function could not park (a crash or a timeout on every attempt)."""
    names = settings.names
    parking = {
        "firings_dlq": names.firings_dlq,
        "evaluator_dlq": names.evaluator_dlq,
        "rejected_events": names.rejected_events_queue,
        "timers_dlq": names.timers_dlq,
        "feedback_dlq": names.feedback_dlq,
    }
    if settings.webhooks:
        parking["webhooks_dlq"] = names.webhooks_dlq
    return Queues(
        firings=QueueSettings(
            name=names.firings_queue,
            visibility_timeout_seconds=6 * DELIVERY_TIMEOUT_SECONDS,
            redrive=Redrive(dead_letter_queue=names.firings_dlq, max_receive_count=settings.max_delivery_attempts + 2),
        ),
        **{field: QueueSettings(name=name) for field, name in parking.items()},
    )


class IndexSettings(_Frozen):
    """A global secondary index with string keys, projecting every attribute."""

    name: str
    partition_key: str
    sort_key: str | None = None


class TableSettings(_Frozen):
    """One DynamoDB table: string keys, on-demand, expired by ``ttl_attribute``."""

    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str = TTL_ATTRIBUTE
    indexes: tuple[IndexSettings, ...] = ()


class Tables(_Frozen):
    state: TableSettings
    profiles: TableSettings
    activations: TableSettings
    audit: TableSettings
    """The audit trail of the customer data tools: one item per call, in a partition per month."""
    sms_recipients: TableSettings | None = None
    """Only with End User Messaging SMS, the one SMS path that reports replies."""


def table_settings(settings: StackSettings) -> Tables:
    """The customer state (one item per customer, expiring with its behaviour), the profiles (traits
    and consent, one item per customer, expiring ``profile_retention_days`` after the last event),
    the activation log (one item per send, readable per customer through ``by_customer`` for support
    and erasure requests) and, with End User Messaging SMS, the phone index (one item per number
    texted, keyed by its HMAC, expiring ``sms_recipient_retention_days`` after the last text)."""
    names = settings.names
    sms_recipients = (
        TableSettings(name=names.sms_recipients_table, partition_key="pk")
        if settings.sms_provider == "end_user_messaging"
        else None
    )
    return Tables(
        sms_recipients=sms_recipients,
        state=TableSettings(name=names.state_table, partition_key="pk"),
        profiles=TableSettings(name=names.profile_table, partition_key="pk"),
        activations=TableSettings(
            name=names.activations_table,
            partition_key="pk",
            sort_key="sk",
            indexes=(IndexSettings(name=BY_CUSTOMER_INDEX, partition_key="customer_id", sort_key="fired_at"),),
        ),
        audit=TableSettings(name=names.audit_table, partition_key="pk", sort_key="sk"),
    )


class EvaluatorAddresses(_Frozen):
    """What only the deployment knows about the evaluator's resources: CDK tokens, or moto's values.

    Field names are the ``EvaluatorConfig`` fields they fill.
    """

    events_stream_arn: str
    scheduler_role_arn: str
    timers_dlq_arn: str
    firings_queue_url: str
    rejected_queue_url: str
    rules_dir: str
    timer_key_secret_arn: str


class DeliveryAddresses(_Frozen):
    """What only the deployment knows about the delivery function's resources (``DeliveryConfig`` fields)."""

    firings_queue_url: str
    firings_dlq_url: str
    unsubscribe_url: str
    unsubscribe_secret_arn: str
    rules_dir: str


class UnsubscribeAddresses(_Frozen):
    """What only the deployment knows about the unsubscribe endpoint's resources (``UnsubscribeConfig`` fields)."""

    unsubscribe_secret_arn: str


class FeedbackAddresses(_Frozen):
    """What only the deployment knows about the feedback function's resources (``FeedbackConfig`` fields)."""

    unsubscribe_secret_arn: str


def evaluator_config(settings: StackSettings, addresses: EvaluatorAddresses) -> EvaluatorConfig:
    names = settings.names
    return EvaluatorConfig(
        state_table=names.state_table,
        profile_table=names.profile_table,
        activations_table=names.activations_table,
        profile_retention_days=settings.profile_retention_days,
        erasure_tombstone_seconds=settings.erasure_tombstone_seconds,
        tracing=settings.evaluator_tracing,
        schedule_group=names.schedule_group,
        state_ttl_margin_ms=settings.state_ttl_margin_ms,
        timer_retry_attempts=settings.timer_retry_attempts,
        timer_max_event_age_seconds=settings.timer_max_event_age_seconds,
        **addresses.model_dump(),
    )


def sms_configuration_set(settings: StackSettings) -> str:
    """The End User Messaging configuration set texts are sent with: yours, or the stack's own."""
    if settings.sms_provider != "end_user_messaging":
        return settings.sms_configuration_set
    return settings.sms_configuration_set or settings.names.sms_configuration_set


def _sms_recipients_table(settings: StackSettings) -> str:
    table = table_settings(settings).sms_recipients
    return "" if table is None else table.name


def delivery_config(settings: StackSettings, addresses: DeliveryAddresses) -> DeliveryConfig:
    names = settings.names
    return DeliveryConfig(
        activations_table=names.activations_table,
        event_bus=names.event_bus,
        ses_configuration_set=names.ses_configuration_set,
        site_url=settings.site_url,
        email_from=settings.email_from,
        sms_provider=settings.sms_provider,
        sms_origination_identity=settings.sms_origination_identity,
        sms_configuration_set=sms_configuration_set(settings),
        sms_recipients_table=_sms_recipients_table(settings),
        sms_recipient_retention_days=settings.sms_recipient_retention_days,
        push_application_id=settings.push_application_id,
        max_attempts=settings.max_delivery_attempts,
        activation_ttl_days=settings.activation_ttl_days,
        **addresses.model_dump(),
    )


def unsubscribe_config(settings: StackSettings, addresses: UnsubscribeAddresses) -> UnsubscribeConfig:
    return UnsubscribeConfig(events_stream_name=settings.names.stream, **addresses.model_dump())


def feedback_config(settings: StackSettings, addresses: FeedbackAddresses) -> FeedbackConfig:
    """The signing secret's ARN only with a phone index, the one thing it is read for here."""
    table = _sms_recipients_table(settings)
    return FeedbackConfig(
        events_stream_name=settings.names.stream,
        sms_recipients_table=table,
        unsubscribe_secret_arn=addresses.unsubscribe_secret_arn if table else "",
    )
