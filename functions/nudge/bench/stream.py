"""Batches as the event source mapping hands them over, and timers as EventBridge Scheduler returns them.

Both designs, in memory and on moto, read the workload through one ``Batcher`` so they see the
same batches: up to ``size`` records, due timers first (they came due before the batch's events
were read), then events in stream order. Each record has its own arrival on the stream: an event
arrives when the stream's clock (the latest event time read so far) reaches it, a timer at its
schedule's ``at`` time (Scheduler's granularity included, as ``nudge.adapters.scheduler`` sets it).
Each record is evaluated at its arrival, as the Lambda handler evaluates by arrival
(``BatchEvaluator.evaluate(by_arrival=True)``): a batch of sparse traffic can span hours, and at
the batch's latest time a wait armed early in it would already look overdue, before the purchase
read a few records later could cancel it. The batch's ``wall`` is its latest arrival.

Timers still pending when the input ends are not drained: a slice of a stream in steady state
also receives the timers of earlier slices, which is what seeding the moto runs reproduces.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
        return [payload for _, payload in self.due_at(before_ms)]

    def due_at(self, before_ms: int) -> list[tuple[int, T]]:
        """``due``, each with the time it is delivered (its ``at``)."""
        out: list[tuple[int, T]] = []
        heap = self._heap
        while heap and heap[0][0] < before_ms:
            at, sequence, name = heapq.heappop(heap)
            live = self._live.get(name)
            if live is None or live[1] != sequence:
                continue  # moved or cancelled since
            del self._live[name]
            out.append((at, live[2]))
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
    timer_arrivals: list[int] = field(default_factory=list)
    """When each timer reached the stream: its schedule's time."""
    arrivals: list[int] = field(default_factory=list)
    """When each event reached the stream: the stream's clock as it was read (never behind an earlier one)."""

    def walls(self) -> Iterator[tuple[T | Event, int]]:
        """Every record with the wall clock it is evaluated at (its arrival): timers, then events."""
        yield from zip(self.timers, self.timer_arrivals, strict=True)
        yield from zip(self.events, self.arrivals, strict=True)

    @property
    def size(self) -> int:
        return len(self.timers) + len(self.events)


class Batcher(Generic[T]):
    """Cuts the stream into batches of ``size`` records, interleaving the timers that came due."""

    def __init__(self, timers: TimerQueue[T], size: int = 500, clock: int | None = None) -> None:
        self.timers = timers
        self.size = size
        self.clock = clock
        self._waiting: deque[tuple[int, T]] = deque()

    def batches(self, events: Sequence[Event], accept: Callable[[Event], bool] | None = None) -> Iterator[Batch[T]]:
        """Lazily: the consumer processes each batch (and sets timers) before the next is cut.

        ``accept`` is the event source mapping's filter: rejected events never reach a batch.
        """
        index, count, size = 0, len(events), self.size
        while True:
            if self.clock is not None:
                self._waiting.extend(self.timers.due_at(self.clock))
            waiting = [self._waiting.popleft() for _ in range(min(len(self._waiting), size))]
            timers = [payload for _, payload in waiting]
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
            arrivals: list[int] = []
            clock = self.clock
            for event in chosen:
                clock = event.ts if clock is None else max(clock, event.ts)
                arrivals.append(clock)
            self.clock = clock if clock is not None else 0
            yield Batch(timers, chosen, self.clock, index - start, [at for at, _ in waiting], arrivals)
