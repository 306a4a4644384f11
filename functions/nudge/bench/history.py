"""``nudge bench --history``: what one event costs the engine as its customer's stored history grows.

The issue this answers: a customer who has sent ten times the events must not cost ten times as
much per event. Each referenced event of the workload is processed by the engine (states kept in
memory, as replay keeps them) and timed on its own, and filed under how many events its customer
had stored when it came. The workload can lean on a few customers (``--heavy N``: the first N
customers of the Zipf ranking send ten times their sessions), so the upper buckets are well filled.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import Event
from ..engine import CustomerState, Engine, Plan
from ..evaluator.collector import tuned_collector

BUCKETS = (0, 10, 30, 100, 300, 1000)
"""Lower bounds of the stored-events buckets (the last one is open)."""


@dataclass
class Bucket:
    low: int
    high: int | None
    nanoseconds: list[int] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high - 1}"


def _stored(state: CustomerState) -> int:
    log = state.events
    return sum(len(log.of(name) or ()) for name in log.names())


def history_cost(plan: Plan, events: Sequence[Event], repeat: int = 3) -> list[dict[str, Any]]:
    """Per bucket of stored events: how many events fell in it, and the median time of one, in µs.

    Each event is timed ``repeat`` times on a copy of its customer's state (decoded from the bytes
    the state would be written as), the median kept: single timings of microseconds are noise.
    """
    engine = Engine(plan)
    buckets = [Bucket(low, high) for low, high in zip(BUCKETS, [*BUCKETS[1:], None], strict=True)]
    states: dict[str, CustomerState] = {}
    read, process = engine.read, engine.process
    clock = 0
    with tuned_collector():
        for event in events:
            clock = max(clock, event.ts)
            reading = read(event)
            if reading is None:
                continue
            state = states.get(event.customer_id) or CustomerState(event.customer_id)
            stored = _stored(state)
            raw = state.encode()
            samples = []
            for _ in range(repeat):
                trial = CustomerState.decode(raw)
                _stored(trial)  # the lists unpacked, as in the kept state
                started = time.perf_counter_ns()
                process(trial, event, clock, reading)
                samples.append(time.perf_counter_ns() - started)
            process(state, event, clock, reading)
            states[event.customer_id] = state
            bucket = next(b for b in reversed(buckets) if stored >= b.low)
            bucket.nanoseconds.append(int(statistics.median(samples)))
    return [
        {
            "stored_events": b.label(),
            "events": len(b.nanoseconds),
            "us_per_event": round(statistics.median(b.nanoseconds) / 1000, 2) if b.nanoseconds else None,
            "us_p90": round(sorted(b.nanoseconds)[int(len(b.nanoseconds) * 0.9)] / 1000, 2) if b.nanoseconds else None,
        }
        for b in buckets
    ]


def print_history(rows: Sequence[dict[str, Any]], out: Any) -> None:
    out.write(f"{'stored events of the customer':<30} {'events':>9} {'µs/event (median)':>18} {'p90':>8}\n")
    for row in rows:
        median = "-" if row["us_per_event"] is None else f"{row['us_per_event']:.2f}"
        p90 = "-" if row["us_p90"] is None else f"{row['us_p90']:.2f}"
        out.write(f"{row['stored_events']:<30} {row['events']:>9,} {median:>18} {p90:>8}\n")
