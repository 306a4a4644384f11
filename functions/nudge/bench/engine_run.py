"""Both designs in memory, on one core: how fast the engine itself goes, with no AWS in the way.

Customer state lives in a dict as the bytes ``CustomerState.encode`` produces, so each design pays
for decoding and encoding exactly as often as it would read and write DynamoDB:

- Nudge (``run_batched``): per batch of 500 records, events no rule can use are dropped after one
  ``Engine.needs`` check, the rest are grouped by customer, and each customer's state is decoded
  once, runs all its events, and is encoded once if it changed (deleted if it became empty).
- The per-event design (``run_per_event``): every record on its own: decode, evaluate, encode.

Timers go through a ``TimerQueue`` and come back as ``Timer`` records in later batches, so both
designs also pay for the timers they set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..contracts import Event, Firing, Timer
from ..engine import CustomerState, Engine, Reading, TimerCancel, TimerSet
from ..evaluator.batch import coalesce
from .stream import Batcher, TimerQueue, schedule_at

States = dict[str, bytes]


@dataclass
class EngineRun:
    """Counts and time of one in-memory run (or of several phases added up)."""

    events: int = 0
    records: int = 0
    batches: int = 0
    evaluated: int = 0
    firings: int = 0
    timers_set: int = 0
    timers_cancelled: int = 0
    decodes: int = 0
    encodes: int = 0
    seconds: float = 0.0
    states: States = field(default_factory=dict)
    sent: list[Firing] = field(default_factory=list, repr=False)
    """Every firing the run sent (the batched loop's): what the channels' reports are made from."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _apply(queue: TimerQueue[Timer], request: TimerSet | TimerCancel, wall: int, run: EngineRun) -> None:
    """One timer per (customer, rule, key) in memory: a set replaces it, a cancel removes it."""
    if isinstance(request, TimerSet):
        timer = request.timer
        queue.put(_slot(timer.customer_id, timer.rule, timer.key), schedule_at(request.at, wall), timer)
        run.timers_set += 1
    else:
        queue.cancel(_slot(request.customer_id, request.rule, request.key))
        run.timers_cancelled += 1


def _slot(customer_id: str, rule: str, key: str | None) -> str:
    return f"{customer_id}\x1f{rule}\x1f{key or ''}"


def run_batched(engine: Engine, batcher: Batcher[Timer], events: Sequence[Event], run: EngineRun) -> EngineRun:
    """Nudge's evaluator loop, minus the I/O: skip, group, decode once, evaluate, encode once."""
    states, read, queue = run.states, engine.read, batcher.timers
    process, on_timer = engine.process, engine.on_timer
    decode, started = CustomerState.decode, time.perf_counter()
    for batch in batcher.batches(events):
        wall = batch.wall
        # Each record at its own arrival (the handler evaluates by arrival), each timer at its schedule's time.
        groups: dict[str, list[tuple[Event | Timer, int, Reading | None]]] = {}
        for timer, arrival in zip(batch.timers, batch.timer_arrivals, strict=True):
            groups.setdefault(timer.customer_id, []).append((timer, arrival, None))
        for event, arrival in zip(batch.events, batch.arrivals, strict=True):
            reading = read(event)
            if reading is not None:
                groups.setdefault(event.customer_id, []).append((event, arrival, reading))
        for customer_id, items in groups.items():
            raw = states.get(customer_id)
            state = decode(raw) if raw is not None else CustomerState(customer_id)
            run.decodes += raw is not None
            changed = False
            requests: list[TimerSet | TimerCancel] = []
            for payload, arrival, reading in items:
                if isinstance(payload, Timer):
                    outcome = on_timer(state, payload, arrival)
                else:
                    outcome = process(state, payload, arrival, reading)
                changed |= outcome.changed
                requests += outcome.timers
                if outcome.firings:
                    run.firings += len(outcome.firings)
                    run.sent += outcome.firings
            for request in coalesce(requests):
                _apply(queue, request, wall, run)
            if changed:
                if state.is_empty():
                    states.pop(customer_id, None)
                else:
                    states[customer_id] = state.encode()
                    run.encodes += 1
            run.evaluated += len(items)
        run.events += batch.consumed
        run.records += batch.size
        run.batches += 1
    run.seconds += time.perf_counter() - started
    return run


def run_per_event(engine: Engine, batcher: Batcher[Timer], events: Sequence[Event], run: EngineRun) -> EngineRun:
    """The per-event design's loop, minus the I/O: every record decodes, evaluates and encodes."""
    states, queue = run.states, batcher.timers
    decode, started = CustomerState.decode, time.perf_counter()
    for batch in batcher.batches(events):
        items = list(batch.walls())
        for item, arrival in items:
            customer_id = item.customer_id
            raw = states.get(customer_id)
            state = decode(raw) if raw is not None else CustomerState(customer_id)
            run.decodes += raw is not None
            if isinstance(item, Timer):
                outcome = engine.on_timer(state, item, arrival)
            else:
                outcome = engine.process(state, item, arrival)
            for request in outcome.timers:
                _apply(queue, request, batch.wall, run)  # created while the batch is processed
            run.firings += len(outcome.firings)
            states[customer_id] = state.encode()
            run.encodes += 1
        run.evaluated += len(items)
        run.events += batch.consumed
        run.records += batch.size
        run.batches += 1
    run.seconds += time.perf_counter() - started
    return run


Loop = Callable[[Engine, Batcher[Timer], Sequence[Event], EngineRun], EngineRun]


def drain(loop: Loop, engine: Engine, batcher: Batcher[Timer], run: EngineRun, limit: int = 10_000) -> EngineRun:
    """After the input: deliver every timer still pending, in time, as a quiet stream would.

    The clock moves to the next timer due (a timer set then is due at least Scheduler's lead after
    it), so each wait and hold is decided as replay's ``finish`` decides them: then the loop's
    firings are replay's, which is what comparing it with the peers needs.
    """
    for _ in range(limit):
        pending = batcher.timers.pending()
        if not pending:
            return run
        batcher.clock = pending[0][1] + 1
        run = loop(engine, batcher, [], run)
    raise RuntimeError(f"timers still coming after {limit} quiet batches")


def unreferenced_cost_us(engine: Engine, events: Sequence[Event], states: States, per_event: bool) -> float:
    """Microseconds one event no rule references costs each design's engine side.

    Nudge: one ``Engine.needs`` (on AWS the mapping's filter drops it before Lambda even runs).
    Per-event design: decode the customer's state, evaluate, encode it back, as it does for any event.
    """
    names = engine.plan.routes
    sample = [e for e in events if e.name not in names and e.name != "identify"][:50_000]
    if not sample:
        return 0.0
    started = time.perf_counter()
    if per_event:
        decode = CustomerState.decode
        for event in sample:
            raw = states.get(event.customer_id)
            state = decode(raw) if raw is not None else CustomerState(event.customer_id)
            engine.process(state, event, event.ts)
            state.encode()
    else:
        needs = engine.needs
        for event in sample:
            needs(event)
    return (time.perf_counter() - started) / len(sample) * 1e6
