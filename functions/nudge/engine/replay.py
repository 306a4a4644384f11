"""Replay: the engine over a stream of events on a virtual clock, with timers kept in memory.

The virtual clock stands for production's wall clock: it is the largest event timestamp seen so
far. A timer comes at its wait's decision time (due + allowed lateness), as Scheduler is asked to
deliver it. Before an event is processed, every timer that comes strictly before the new clock
fires, as the scheduler would have delivered it first; one that comes exactly at an event's
clock fires after it. An event is late when it is more than the allowed lateness behind the clock.
Memory holds one state per customer with something to remember, plus one entry per pending wait.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..contracts import HOLD_RULE, Event, Firing, Timer
from .plan.compiled import Plan
from .runtime.engine import Engine
from .runtime.outcome import Decision, Outcome, TimerCancel, TimerSet
from .runtime.skew import future_problem
from .runtime.state import CustomerState

TimerKey = tuple[str, str, str | None]


@dataclass
class RuleTally:
    """Per-rule counts of what happened, for summaries."""

    armed: int = 0
    fired: int = 0
    cancelled: int = 0
    superseded: int = 0
    suppressed_audience: int = 0
    suppressed_cooldown: int = 0
    suppressed_consent: int = 0
    suppressed_bounced: int = 0
    suppressed_complaint: int = 0
    suppressed_cap: int = 0
    suppressed_disengaged: int = 0
    """Marketing sends not made because the channel rests for a customer who never answers."""
    skipped_unreachable: int = 0
    """Escalation steps passed over for want of an address on their channel (the next step went)."""
    steps: int = 0
    """Escalation steps sent (after the action itself): counted in ``fired`` too."""
    held: int = 0
    """Firings quiet hours held (each then sent, or not, at the end of the quiet hours)."""
    invalid_timezone: int = 0


@dataclass
class ReplayStats:
    events: int = 0
    accepted: int = 0
    late: int = 0
    """Events more than ``allowed_lateness`` (ms) behind the virtual clock when they came."""
    allowed_lateness: int = 0
    future: int = 0
    """Events refused as stamped more than ``max_future_skew`` ahead of their arrival."""
    timers_fired: int = 0
    """Waits that came due (their timers)."""
    holds_ended: int = 0
    """Hold timers that came: a customer's held firings reached their send time."""
    rules: dict[str, RuleTally] = field(default_factory=dict)

    def record(self, decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            if decision.kind == "stale_timer":
                continue
            tally = self.rules.setdefault(decision.rule, RuleTally())
            setattr(tally, decision.kind, getattr(tally, decision.kind) + 1)
            if decision.kind == "fired" and decision.reason:
                tally.steps += 1  # a later step's firing says which step it is


class Replayer:
    """Feeds events in order and yields firings as the virtual clock reaches them."""

    def __init__(self, plan: Plan, on_decision: Callable[[str, Decision], None] | None = None) -> None:
        """``on_decision`` hears every decision as it is taken, with its customer (no-op timers aside)."""
        self.engine = Engine(plan)
        self.on_decision = on_decision
        self.states: dict[str, CustomerState] = {}
        self.clock: int | None = None
        self.stats = ReplayStats(allowed_lateness=plan.allowed_lateness)
        for rule in plan.rules:
            self.stats.rules[rule.id] = RuleTally()
        # Heap entries are (due, customer, rule, key text, sequence, timer); an entry whose timer is no
        # longer the live one for its (customer, rule, key) was moved or cancelled and is skipped.
        self._heap: list[tuple[int, str, str, str, int, Timer]] = []
        self._live: dict[TimerKey, Timer] = {}
        self._sequence = 0

    def feed(self, event: Event, arrival: int | None = None) -> list[Firing]:
        """Advance the clock to the event, fire due timers, then process the event.

        ``arrival`` is when the event reached the stream, when known: an event stamped more than
        ``max_future_skew`` ahead of it is refused (counted in ``stats.future``) and changes nothing.
        """
        self.stats.events += 1
        if arrival is not None and future_problem(event.ts, arrival, self.engine.plan.max_future_skew):
            self.stats.future += 1
            return []
        clock, firings = self._advance(event.ts)
        reading = self.engine.read(event)
        if reading is None:
            return firings  # no rule can use it: no state is looked at, as the evaluator reads no item
        state = self.states.get(event.customer_id)
        if state is None:
            state = CustomerState(event.customer_id)
        outcome = self.engine.process(state, event, clock, reading)
        if outcome.accepted:
            self.stats.accepted += 1
        if outcome.late:
            self.stats.late += 1
        if outcome.decisions or outcome.timers:
            self._absorb(outcome, event.customer_id)
        if outcome.changed:  # most events change nothing: a state kept stays, a new one stays out
            self._keep(state)
        firings.extend(outcome.firings)
        return firings

    def tick(self, ts: int) -> list[Firing]:
        """An event no rule reads, of which only its time is known: the clock moves, as ``feed`` moves it.

        ``nudge replay`` reads no more than this of what the stream mapping would filter out
        (``source_filters.passing_names``); it counts as an event, and changes no state.
        """
        self.stats.events += 1
        return self._advance(ts)[1]

    def _advance(self, ts: int) -> tuple[int, list[Firing]]:
        """The clock moved to ``ts`` (it never goes back), and the firings of the timers due before it."""
        clock = ts if self.clock is None else max(self.clock, ts)
        firings = self._fire_timers(before=clock) if self._heap and self._heap[0][0] < clock else []
        self.clock = clock
        return clock, firings

    def finish(self, until: int | None = None) -> list[Firing]:
        """End of input: decide every wait due by ``until`` (all of them when ``None``).

        The input holds everything there is, so there is no straggler left to wait for: a wait due
        at ``until`` is decided, its timer coming the allowed lateness later as always.
        """
        if until is None:
            return self._fire_timers(before=None)
        firings = self._fire_timers(before=until + self.engine.lateness + 1)
        self.clock = until if self.clock is None else max(self.clock, until)
        return firings

    def pending_timers(self) -> int:
        return len(self._live)

    def _keep(self, state: CustomerState) -> None:
        if state.is_empty() and state.erased_at is None:  # an erasure's tombstone is kept: it drops older events
            self.states.pop(state.customer_id, None)
        else:
            self.states[state.customer_id] = state

    def _absorb(self, outcome: Outcome, customer_id: str) -> None:
        self.stats.record(outcome.decisions)
        if self.on_decision is not None:
            for decision in outcome.decisions:
                if decision.kind != "stale_timer":
                    self.on_decision(customer_id, decision)
        for request in outcome.timers:
            if isinstance(request, TimerSet):
                timer = request.timer
                self._live[(timer.customer_id, timer.rule, timer.key)] = timer
                self._sequence += 1
                entry = (request.at, timer.customer_id, timer.rule, timer.key or "", self._sequence, timer)
                heapq.heappush(self._heap, entry)
            elif isinstance(request, TimerCancel):
                self._live.pop((request.customer_id, request.rule, request.key), None)

    def _fire_timers(self, before: int | None) -> list[Firing]:
        firings: list[Firing] = []
        heap = self._heap
        while heap and (before is None or heap[0][0] < before):
            comes, customer_id, _, _, _, timer = heapq.heappop(heap)
            timer_key = (customer_id, timer.rule, timer.key)
            if self._live.get(timer_key) is not timer:
                continue  # moved or cancelled since it was queued
            del self._live[timer_key]
            state = self.states.get(customer_id)
            if state is None:
                continue
            self.clock = comes if self.clock is None else max(self.clock, comes)
            outcome = self.engine.on_timer(state, timer, self.clock)
            if timer.rule == HOLD_RULE:
                self.stats.holds_ended += 1
            else:
                self.stats.timers_fired += 1
            self._absorb(outcome, customer_id)
            self._keep(state)
            firings.extend(outcome.firings)
        return firings


def replay(plan: Plan, events: Iterable[Event], until: int | None = None) -> Iterator[Firing]:
    """Every firing of ``events`` replayed in order (a convenience over ``Replayer``)."""
    replayer = Replayer(plan)
    for event in events:
        yield from replayer.feed(event)
    yield from replayer.finish(until)


def count_by_rule(firings: Iterable[Firing]) -> Counter[str]:
    return Counter(firing.rule for firing in firings)
