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
        # Schedule details by name, refreshed only when the summary says the schedule changed.
        self._known: dict[str, tuple[Any, PendingSchedule]] = {}

    def pending(self) -> list[PendingSchedule]:
        found: list[PendingSchedule] = []
        seen: set[str] = set()
        paginator = self.scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(GroupName=self.group_name):
            for summary in page["Schedules"]:
                name = summary["Name"]
                seen.add(name)
                stamp = summary.get("LastModificationDate")
                cached = self._known.get(name)
                if cached is None or cached[0] != stamp:
                    detail = self.scheduler.get_schedule(Name=name, GroupName=self.group_name)
                    target = detail["Target"]
                    schedule = PendingSchedule(
                        name=name,
                        due=parse_at(detail["ScheduleExpression"]),
                        stream_arn=target["Arn"],
                        partition_key=target["KinesisParameters"]["PartitionKey"],
                        payload=target["Input"],
                    )
                    self._known[name] = (stamp, schedule)
                found.append(self._known[name][1])
        for name in set(self._known) - seen:
            del self._known[name]
        return sorted(found, key=lambda s: (s.due, s.name))

    def fire_due(self, now: int, strictly_before: bool = False) -> list[PendingSchedule]:
        """Fire every schedule due at or before ``now`` (ms) — or strictly before it — oldest first."""
        fired = [s for s in self.pending() if s.due < now or (s.due == now and not strictly_before)]
        for schedule in fired:
            self.kinesis.put_record(
                StreamARN=schedule.stream_arn, Data=schedule.payload.encode(), PartitionKey=schedule.partition_key
            )
            self.scheduler.delete_schedule(Name=schedule.name, GroupName=self.group_name)
            self._known.pop(schedule.name, None)
        return fired
