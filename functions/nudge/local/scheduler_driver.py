"""Deliver due EventBridge Scheduler schedules to their Kinesis target, as AWS would.

moto stores schedules but never fires them. This driver does what the service does for a
one-time ``at(...)`` schedule: when its time comes, put ``Target.Input`` onto the target stream
with ``KinesisParameters.PartitionKey``, then delete the schedule (``ActionAfterCompletion:
DELETE``). The evaluator therefore sees exactly the records it would see on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def parse_at(expression: str) -> int:
    """Epoch ms of ``at(2026-11-22T11:05:00)`` (the timezone is UTC in Nudge's schedules)."""
    if not expression.startswith("at(") or not expression.endswith(")"):
        raise ValueError(f"not a one-time schedule expression: {expression!r}")
    moment = datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


@dataclass(frozen=True)
class PendingSchedule:
    name: str
    due: int
    stream_arn: str
    partition_key: str
    payload: str


class ScheduleDriver:
    """Reads the group's schedules and fires the due ones onto their stream."""

    def __init__(self, session: Any, group_name: str) -> None:
        self.scheduler = session.client("scheduler")
        self.kinesis = session.client("kinesis")
        self.group_name = group_name

    def pending(self) -> list[PendingSchedule]:
        found: list[PendingSchedule] = []
        paginator = self.scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(GroupName=self.group_name):
            for summary in page["Schedules"]:
                detail = self.scheduler.get_schedule(Name=summary["Name"], GroupName=self.group_name)
                target = detail["Target"]
                found.append(
                    PendingSchedule(
                        name=detail["Name"],
                        due=parse_at(detail["ScheduleExpression"]),
                        stream_arn=target["Arn"],
                        partition_key=target["KinesisParameters"]["PartitionKey"],
                        payload=target["Input"],
                    )
                )
        return sorted(found, key=lambda s: (s.due, s.name))

    def fire_due(self, now: int) -> list[PendingSchedule]:
        """Fire every schedule due at or before ``now`` (ms), oldest first; return them."""
        fired = [s for s in self.pending() if s.due <= now]
        for schedule in fired:
            self.kinesis.put_record(
                StreamARN=schedule.stream_arn, Data=schedule.payload.encode(), PartitionKey=schedule.partition_key
            )
            self.scheduler.delete_schedule(Name=schedule.name, GroupName=self.group_name)
        return fired
