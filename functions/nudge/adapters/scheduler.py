"""Timers as EventBridge Scheduler one-time schedules that put a signed timer record onto the stream.

One schedule per arming: named by a hash of (customer, rule, key, arm time), so a retried batch
creates the same schedule again (a conflict: already there). Creating and removing are split
around the state write: ``prepare`` creates the new schedules before it, ``release`` deletes the
replaced and cancelled ones after it. A write that never succeeds then leaves the previous state's
schedules in place (its safety net), and the extra one fires as a no-op (``stale_timer``). A
moved wait costs a create and a delete instead of one update; deleting a cancelled wait's schedule
is one free API call, where a no-op timer would cost a Scheduler invocation, a Kinesis record, a
Lambda invocation share and a state read.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..clock import WALL_CLOCK, Clock
from ..contracts import Timer, TimerKey, encode_timer
from ..engine import TimerCancel, TimerSet

MIN_LEAD_MS = 60_000
"""Scheduler delivers one-time schedules with minute granularity; nearer timers go a minute out."""


_NOT_IN_NAMES = re.compile(r"[^0-9A-Za-z_.\-]")


def schedule_name(customer_id: str, rule: str, key: str | None, arm: int) -> str:
    """Deterministic, ≤ 64 characters of [0-9a-zA-Z-_.] as Scheduler requires; no personal data."""
    digest = hashlib.sha256(f"{customer_id}\x1f{rule}\x1f{key or ''}\x1f{arm}".encode()).hexdigest()[:40]
    readable = _NOT_IN_NAMES.sub("", rule)[:20]  # the hold timer's "~hold" is "hold": the digest keeps it apart
    return f"t-{readable}-{digest}"


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
        timer_key: TimerKey,
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
        self.timer_key = timer_key
        self.retry_attempts = retry_attempts
        self.max_event_age_seconds = max_event_age_seconds
        self.clock = clock

    def prepare(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        """Create the schedules the new state needs (before it is written)."""
        for request in requests:
            if isinstance(request, TimerSet):
                with contextlib.suppress(self.client.exceptions.ConflictException):  # a retried batch made it
                    self.client.create_schedule(**self.definition(request.timer, request.at))

    def release(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        """Delete the schedules the written state no longer needs (after it is written)."""
        for request in requests:
            if isinstance(request, TimerSet):
                if request.replaced_arm is None:
                    continue
                timer = request.timer
                self._delete(schedule_name(timer.customer_id, timer.rule, timer.key, request.replaced_arm))
            else:
                self._delete(schedule_name(request.customer_id, request.rule, request.key, request.arm))

    def _delete(self, name: str) -> None:
        # ResourceNotFound: it already fired (and deleted itself) or was already deleted.
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_schedule(Name=name, GroupName=self.group_name)

    def definition(self, timer: Timer, at: int) -> dict[str, Any]:
        """The full schedule for ``timer``, coming at ``at``."""
        return {
            "Name": schedule_name(timer.customer_id, timer.rule, timer.key, timer.arm),
            "GroupName": self.group_name,
            "ScheduleExpression": at_expression(at, self.clock.now_ms(), self.min_lead_ms),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "State": "ENABLED",
            "Target": {
                "Arn": self.stream_arn,
                "RoleArn": self.role_arn,
                "Input": encode_timer(timer, self.timer_key),
                "KinesisParameters": {"PartitionKey": timer.customer_id},
                "RetryPolicy": {
                    "MaximumRetryAttempts": self.retry_attempts,
                    "MaximumEventAgeInSeconds": self.max_event_age_seconds,
                },
                "DeadLetterConfig": {"Arn": self.dead_letter_arn},
            },
        }
