"""Batches as the event source mapping hands them over, and timers as EventBridge Scheduler returns them.

Both designs, in memory and on moto, read the workload through one ``Batcher`` so they see the
same batches: up to ``size`` records, due timers first (they came due before the batch's events
were read), then events in stream order. The batch's wall clock is the latest event time read so
far, which stands for the time the batch is processed. A timer is due at its schedule's ``at``
time: Scheduler's minute granularity included, as ``nudge.adapters.scheduler`` sets it.

Timers still pending when the input ends are not drained: a slice of a stream in steady state
also receives the timers of earlier slices, which is what seeding the moto runs reproduces.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..adapters.scheduler import MIN_LEAD_MS
from ..contracts import Event

T = TypeVar("T")


def schedule_at(due_ms: int, wall_ms: int) -> int:
    """When Scheduler delivers a wait due at ``due_ms`` set at ``wall_ms`` (see ``at_expression``)."""
    return -(-max(due_ms, wall_ms + MIN_LEAD_MS) // 1000) * 1000


class TimerQueue(Generic[T]):
    """Pending one-time schedules by name; ``due`` returns them in delivery order, once each."""

    def __init__(self) -> None:
        self._live: dict[str, tuple[int, int, T]] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._sequence = itertools.count()
        self.fired = 0

    def put(self, name: str, at_ms: int, payload: T) -> None:
        """Create or move the schedule ``name`` (a create and an update are the same here)."""
        sequence = next(self._sequence)
        self._live[name] = (at_ms, sequence, payload)
        heapq.heappush(self._heap, (at_ms, sequence, name))

    def cancel(self, name: str) -> None:
        self._live.pop(name, None)

    def due(self, before_ms: int) -> list[T]:
        """Every live schedule due strictly before ``before_ms``, which Scheduler then deletes."""
        out: list[T] = []
        heap = self._heap
        while heap and heap[0][0] < before_ms:
            _, sequence, name = heapq.heappop(heap)
            live = self._live.get(name)
            if live is None or live[1] != sequence:
                continue  # moved or cancelled since
            del self._live[name]
            out.append(live[2])
            self.fired += 1
        return out

    def pending(self) -> list[tuple[str, int, T]]:
        """(name, at, payload) of every live schedule, in delivery order."""
        return sorted(((name, at, payload) for name, (at, _, payload) in self._live.items()), key=lambda x: x[1])

    def __len__(self) -> int:
        return len(self._live)


@dataclass
class Batch(Generic[T]):
    """One invocation's records: due timers, then events; ``consumed`` counts filtered-out events too."""

    timers: list[T]
    events: list[Event]
    wall: int
    consumed: int

    @property
    def size(self) -> int:
        return len(self.timers) + len(self.events)


class Batcher(Generic[T]):
    """Cuts the stream into batches of ``size`` records, interleaving the timers that came due."""

    def __init__(self, timers: TimerQueue[T], size: int = 500, clock: int | None = None) -> None:
        self.timers = timers
        self.size = size
        self.clock = clock
        self._waiting: deque[T] = deque()

    def batches(self, events: Sequence[Event], accept: Callable[[Event], bool] | None = None) -> Iterator[Batch[T]]:
        """Lazily: the consumer processes each batch (and sets timers) before the next is cut.

        ``accept`` is the event source mapping's filter: rejected events never reach a batch.
        """
        index, count, size = 0, len(events), self.size
        while True:
            if self.clock is not None:
                self._waiting.extend(self.timers.due(self.clock))
            timers = [self._waiting.popleft() for _ in range(min(len(self._waiting), size))]
            room = size - len(timers)
            start = index
            if accept is None:
                chosen = list(events[index : index + room])
                index += len(chosen)
            else:
                chosen = []
                while room and index < count:
                    event = events[index]
                    index += 1
                    if accept(event):
                        chosen.append(event)
                        room -= 1
            if not timers and not chosen and index >= count:
                return
            latest = max((event.ts for event in chosen), default=self.clock or 0)
            self.clock = latest if self.clock is None else max(self.clock, latest)
            yield Batch(timers, chosen, self.clock, index - start)
