"""The shop's applications: records put on the events stream at their own virtual time.

Each ``Put`` goes out with ``PutRecords`` (records due at the same instant share a call), partition
key = customer id as the SDK sets it, through the service session (a producer is not Nudge's code
and is never faulted). Its arrival on the stream is stamped at its own time even when the run
reaches it late (``VirtualTime.stamped``). Where each record landed (shard, sequence number) is kept,
which is what the lost-event count is measured against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from nudge.contracts import Event

from .virtual_time import VirtualTime
from .workload import envelope

PutKind = Literal["event", "copy", "poison"]


@dataclass(frozen=True)
class Put:
    """One record a producer puts: a workload event, a re-sent copy of one, or a poison record."""

    at_ms: int
    partition_key: str
    data: bytes
    kind: PutKind = "event"
    event: Event | None = None
    label: str = ""
    """What a poison record is (``"800 KiB record"``), for the report."""


def event_put(event: Event, at_ms: int | None = None, kind: PutKind = "event") -> Put:
    data = json.dumps(envelope(event), separators=(",", ":")).encode()
    return Put(event.ts if at_ms is None else at_ms, event.customer_id, data, kind, event)


@dataclass(frozen=True)
class Landed:
    put: Put
    shard_id: str
    sequence_number: str


@dataclass
class Producer:
    """Puts ``puts`` as virtual time reaches them; ``landed`` says where each record went."""

    client: Any
    stream_name: str
    time: VirtualTime
    puts: list[Put]
    landed: list[Landed] = field(default_factory=list)
    _next: int = 0

    def __post_init__(self) -> None:
        self.puts = sorted(self.puts, key=lambda put: put.at_ms)  # stable: same-instant puts keep their order

    def next_at(self) -> int | None:
        return self.puts[self._next].at_ms if self._next < len(self.puts) else None

    def put_due(self, now_ms: int) -> bool:
        """Put every record due by ``now_ms``; True if any was put."""
        did = False
        while self._next < len(self.puts) and self.puts[self._next].at_ms <= now_ms:
            at = self.puts[self._next].at_ms
            group: list[Put] = []
            while self._next < len(self.puts) and self.puts[self._next].at_ms == at and len(group) < 500:
                group.append(self.puts[self._next])
                self._next += 1
            self._put(at, group)
            did = True
        return did

    def _put(self, at_ms: int, group: Iterable[Put]) -> None:
        group = list(group)
        with self.time.stamped(at_ms):
            response = self.client.put_records(
                StreamName=self.stream_name,
                Records=[{"PartitionKey": put.partition_key, "Data": put.data} for put in group],
            )
        if response.get("FailedRecordCount"):
            raise RuntimeError(f"the stream refused {response['FailedRecordCount']} record(s): the run is void")
        for put, entry in zip(group, response["Records"], strict=True):
            self.landed.append(Landed(put, entry["ShardId"], entry["SequenceNumber"]))
