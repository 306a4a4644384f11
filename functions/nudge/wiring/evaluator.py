"""The evaluator's composition root: rules compiled, state, Scheduler and queue adapters behind the ports."""

from __future__ import annotations

from typing import Any

import boto3

from ..adapters.dynamodb_state import DynamoDBStateStore
from ..adapters.message_log import DynamoDBMessageLog
from ..adapters.scheduler import MIN_LEAD_MS, EventBridgeTimerScheduler
from ..adapters.sqs import SqsDeadLetters, SqsFiringSink
from ..clock import WALL_CLOCK, Clock
from ..config import EvaluatorConfig
from ..contracts import TimerKey
from ..engine import Engine, load_plan
from ..evaluator import BatchEvaluator
from .retries import ABSORB_THROTTLING


def build_evaluator(
    config: EvaluatorConfig,
    session: Any = None,
    clock: Clock = WALL_CLOCK,
    timer_min_lead_ms: int = MIN_LEAD_MS,
) -> BatchEvaluator:
    """Compile the rules and wire the adapters (once per cold start); the local stack and tests pass their clock."""
    session = session or boto3.session.Session()
    engine = Engine(load_plan(config.rules_dir))
    sqs = session.client("sqs", config=ABSORB_THROTTLING)
    key = timer_key(config, session)
    dynamodb = session.client("dynamodb", config=ABSORB_THROTTLING)
    return BatchEvaluator(
        engine=engine,
        store=DynamoDBStateStore(
            dynamodb,
            config.state_table,
            config.profile_table,
            tombstone_seconds=config.erasure_tombstone_seconds,
            now_ms=clock.now_ms,
        ),
        scheduler=timer_scheduler(config, session, clock, timer_min_lead_ms, key),
        sink=SqsFiringSink(sqs, config.firings_queue_url),
        dead_letters=SqsDeadLetters(sqs, config.rejected_queue_url),
        ttl_margin_ms=config.state_ttl_margin_ms,
        timer_key=key,
        profile_retention_ms=config.profile_retention_days * 86_400_000,
        messages=DynamoDBMessageLog(dynamodb, config.activations_table) if config.activations_table else None,
    )


def timer_key(config: EvaluatorConfig, session: Any) -> TimerKey:
    """The key that signs timer records: given directly (tests) or read from Secrets Manager at cold start."""
    if config.timer_key:
        return TimerKey(config.timer_key.encode())
    if config.timer_key_secret_arn:
        client = session.client("secretsmanager")
        return TimerKey(str(client.get_secret_value(SecretId=config.timer_key_secret_arn)["SecretString"]).encode())
    raise ValueError("set NUDGE_TIMER_KEY or NUDGE_TIMER_KEY_SECRET_ARN")


def timer_scheduler(
    config: EvaluatorConfig,
    session: Any,
    clock: Clock = WALL_CLOCK,
    min_lead_ms: int = MIN_LEAD_MS,
    key: TimerKey | None = None,
) -> EventBridgeTimerScheduler:
    """The Scheduler adapter for this stack's group, stream, role and dead-letter queue."""
    return EventBridgeTimerScheduler(
        session.client("scheduler", config=ABSORB_THROTTLING),
        group_name=config.schedule_group,
        stream_arn=config.events_stream_arn,
        role_arn=config.scheduler_role_arn,
        dead_letter_arn=config.timers_dlq_arn,
        timer_key=key or timer_key(config, session),
        retry_attempts=config.timer_retry_attempts,
        max_event_age_seconds=config.timer_max_event_age_seconds,
        clock=clock,
        min_lead_ms=min_lead_ms,
    )
