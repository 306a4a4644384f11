"""Timers as EventBridge Scheduler one-time schedules that put a timer record onto the stream.

One schedule per (customer, rule, key), named by a hash of the three, so a debounce moves the
same schedule and a retry re-applies the same request. When a wait is cancelled the schedule is
deleted: a delete is one free API call, while a no-op timer would cost a Scheduler invocation, a
Kinesis record, a Lambda invocation share and a state read.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..clock import WALL_CLOCK, Clock
from ..contracts import Timer, encode_timer
from ..engine import TimerCancel, TimerSet

logger = logging.getLogger(__name__)

MIN_LEAD_MS = 60_000
"""Scheduler delivers one-time schedules with minute granularity; nearer timers go a minute out."""


def schedule_name(customer_id: str, rule: str, key: str | None) -> str:
    """Deterministic, ≤ 64 characters of [0-9a-zA-Z-_.] as Scheduler requires; no personal data."""
    digest = hashlib.sha256(f"{customer_id}\x1f{rule}\x1f{key or ''}".encode()).hexdigest()[:40]
    return f"t-{rule[:20]}-{digest}"


def at_expression(due_ms: int, now_ms: int, min_lead_ms: int = MIN_LEAD_MS) -> str:
    when = max(due_ms, now_ms + min_lead_ms)
    seconds = -(-when // 1000)  # round up: never fire before the wait is over
    return "at(" + datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + ")"


class EventBridgeTimerScheduler:
    """``TimerScheduler`` over EventBridge Scheduler, targeting the events stream."""

    def __init__(
        self,
        client: Any,
        group_name: str,
        stream_arn: str,
        role_arn: str,
        dead_letter_arn: str,
        retry_attempts: int = 10,
        max_event_age_seconds: int = 86_400,
        clock: Clock = WALL_CLOCK,
        min_lead_ms: int = MIN_LEAD_MS,
    ) -> None:
        self.client = client
        self.min_lead_ms = min_lead_ms
        self.group_name = group_name
        self.stream_arn = stream_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn
        self.retry_attempts = retry_attempts
        self.max_event_age_seconds = max_event_age_seconds
        self.clock = clock

    def apply(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        for request in requests:
            if isinstance(request, TimerSet):
                self._set(request)
            else:
                self._cancel(request)

    def definition(self, timer: Timer, at: int) -> dict[str, Any]:
        """The full schedule for ``timer``, coming at ``at`` (create and update take the same shape)."""
        return {
            "Name": schedule_name(timer.customer_id, timer.rule, timer.key),
            "GroupName": self.group_name,
            "ScheduleExpression": at_expression(at, self.clock.now_ms(), self.min_lead_ms),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "State": "ENABLED",
            "Target": {
                "Arn": self.stream_arn,
                "RoleArn": self.role_arn,
                "Input": encode_timer(timer),
                "KinesisParameters": {"PartitionKey": timer.customer_id},
                "RetryPolicy": {
                    "MaximumRetryAttempts": self.retry_attempts,
                    "MaximumEventAgeInSeconds": self.max_event_age_seconds,
                },
                "DeadLetterConfig": {"Arn": self.dead_letter_arn},
            },
        }

    def _set(self, request: TimerSet) -> None:
        definition = self.definition(request.timer, request.at)
        errors = self.client.exceptions
        if request.replaces:
            try:
                self.client.update_schedule(**definition)
                return
            except errors.ResourceNotFoundException:
                # It already fired, or a retried batch never created it: create it below.
                logger.debug("timer to move was gone; creating it")
        try:
            self.client.create_schedule(**definition)
        except errors.ConflictException:
            self.client.update_schedule(**definition)

    def _cancel(self, request: TimerCancel) -> None:
        # ResourceNotFound: it already fired (and deleted itself) or was already cancelled.
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_schedule(
                Name=schedule_name(request.customer_id, request.rule, request.key), GroupName=self.group_name
            )
