"""EventBridge Scheduler's part: due one-time schedules put their target's input on the stream.

moto stores schedules and never fires them. For an enabled ``at(...)`` schedule (UTC) this does
what the service does when its time comes: ``PutRecord`` of ``Target.Input`` to the target stream
with ``KinesisParameters.PartitionKey``, stamped at the time it fires, then deletes the schedule
(``ActionAfterCompletion: DELETE``). With the flexible window off Scheduler still fires "within a
minute"; each schedule gets a seeded delay in ``[0, max_delay_ms]`` (a function of its name and
expression, so a moved schedule gets a new one). Scheduler is at-least-once: ``duplicate_rate`` puts
a second copy of some timers a few seconds later.

Schedules are read from moto's backend (what ``ListSchedules`` + ``GetSchedule`` would return, without
the round trips); puts and deletes go through the service session's clients, never faulted.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from nudge.local.scheduler_driver import parse_at

from .moto_stack import ACCOUNT, REGION
from .virtual_time import VirtualTime


@dataclass(frozen=True)
class Due:
    name: str
    fires_at: int
    stream_arn: str
    partition_key: str
    payload: str


@dataclass
class SchedulerService:
    kinesis: Any
    scheduler: Any
    group: str
    time: VirtualTime
    seed: int
    max_delay_ms: int = 30_000
    duplicate_rate: float = 0.0
    fired: int = 0
    duplicates: int = 0
    _echoes: list[Due] = field(default_factory=list)
    _known: dict[tuple[str, str], Due] = field(default_factory=dict)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _schedules(self) -> list[Any]:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(self.group)
        return list(group.schedules.values()) if group is not None else []

    def pending(self) -> list[Due]:
        due = []
        for schedule in self._schedules():
            if schedule.state != "ENABLED" or not schedule.schedule_expression.startswith("at("):
                continue
            target = schedule.target
            key = (schedule.name, f"{schedule.schedule_expression}\x1f{target['Input']}")
            if key not in self._known:
                salt = f"{self.seed}:{key}".encode()
                delay = int.from_bytes(hashlib.sha256(salt).digest()[:4], "big") % (self.max_delay_ms + 1)
                at = parse_at(schedule.schedule_expression) + delay
                partition_key = target["KinesisParameters"]["PartitionKey"]
                self._known[key] = Due(schedule.name, at, target["Arn"], partition_key, target["Input"])
            due.append(self._known[key])
        return sorted([*due, *self._echoes], key=lambda d: (d.fires_at, d.name))

    def next_due(self) -> int | None:
        pending = self.pending()
        return pending[0].fires_at if pending else None

    def fire_due(self, now_ms: int) -> bool:
        """Fire every schedule due by ``now_ms``, oldest first; True if any fired."""
        fired = [d for d in self.pending() if d.fires_at <= now_ms]
        for due in fired:
            with self.time.stamped(due.fires_at):
                self.kinesis.put_record(
                    StreamARN=due.stream_arn, Data=due.payload.encode(), PartitionKey=due.partition_key
                )
            if due in self._echoes:
                self._echoes.remove(due)
                continue
            self.fired += 1
            self.scheduler.delete_schedule(Name=due.name, GroupName=self.group)
            if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
                self.duplicates += 1
                self._echoes.append(
                    Due(
                        f"{due.name}#again",
                        due.fires_at + self._rng.randint(1_000, 30_000),
                        due.stream_arn,
                        due.partition_key,
                        due.payload,
                    )
                )
        return bool(fired)
