"""Evaluate one Kinesis batch: group by customer, one read, in-memory evaluation, one write each.

Order of effects per customer: timers, then firings, then the conditional state write. A crash
or error between them is safe because every effect is idempotent (schedule names and firing ids
are deterministic) and the state is written last: a retried batch recomputes the same effects
and finds what it already did. A customer that fails is reported through the batch's earliest
failed record, so Kinesis redelivers from there; the other customers' redelivered records are
then no-ops through event-id dedupe and arm-time monotonicity.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..contracts import Event, Firing, Timer
from ..engine import Engine, Reading, TimerCancel, TimerSet
from .ports import DeadLetters, FiringSink, StateStore, StoredState, TimerScheduler, VersionConflict
from .records import InputRecord, Rejected, TimerRecord, decode_record

log = logging.getLogger(__name__)

Item = tuple[int, Event | Timer, int, Reading | None]
"""(index of the record in the batch, payload, the wall clock in ms it is evaluated at, the event's reading)."""

EventWalls = Mapping[str, int]
"""Event id -> the wall clock (ms) that one event is evaluated at, instead of the batch's."""


@dataclass
class BatchReport:
    """What one batch did; ``failed_sequence_number`` is where Kinesis must resume, if anywhere."""

    records: int = 0
    rejected: int = 0
    skipped: int = 0
    customers: int = 0
    firings: int = 0
    timers_set: int = 0
    timers_cancelled: int = 0
    writes: int = 0
    conflicts: int = 0
    failed_customers: int = 0
    late: int = 0
    failed_sequence_number: str | None = None
    rejections: list[Rejected] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The batch's counts by metric name: what the handler publishes for each invocation."""
        return {
            "Records": self.records,
            "RejectedRecords": self.rejected,
            "SkippedEvents": self.skipped,
            "Customers": self.customers,
            "Firings": self.firings,
            "TimersSet": self.timers_set,
            "TimersCancelled": self.timers_cancelled,
            "StateWrites": self.writes,
            "StateConflicts": self.conflicts,
            "FailedCustomers": self.failed_customers,
            "LateEvents": self.late,
        }

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response for a stream: resume from the earliest failure."""
        if self.failed_sequence_number is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.failed_sequence_number}]}


@dataclass
class _Customer:
    items: list[Item]
    stored: StoredState | None = None
    firings: list[Firing] = field(default_factory=list)
    timers: list[TimerSet | TimerCancel] = field(default_factory=list)
    changed: bool = False
    failed: bool = False
    late: int = 0

    @property
    def first_index(self) -> int:
        return self.items[0][0]


def coalesce(requests: Sequence[TimerSet | TimerCancel]) -> list[TimerSet | TimerCancel]:
    """Keep one request per (customer, rule, key): the last one, unless the batch made it moot.

    A timer created and cancelled within one batch never needs a call; a timer created and then
    moved within one batch is simply created at its final time.
    """
    first: dict[tuple[str, str, str | None], TimerSet | TimerCancel] = {}
    last: dict[tuple[str, str, str | None], TimerSet | TimerCancel] = {}
    for request in requests:
        timer_key = (
            (request.timer.customer_id, request.timer.rule, request.timer.key)
            if isinstance(request, TimerSet)
            else (request.customer_id, request.rule, request.key)
        )
        first.setdefault(timer_key, request)
        last[timer_key] = request
    result: list[TimerSet | TimerCancel] = []
    for timer_key, request in last.items():
        opening = first[timer_key]
        created_here = isinstance(opening, TimerSet) and not opening.replaces
        if created_here and isinstance(request, TimerCancel):
            continue
        if created_here and isinstance(request, TimerSet) and request.replaces:
            result.append(replace(request, replaces=False))
        else:
            result.append(request)
    return result


class BatchEvaluator:
    """The evaluator's whole job for one batch, with AWS behind the ``ports`` interfaces."""

    def __init__(
        self,
        engine: Engine,
        store: StateStore,
        scheduler: TimerScheduler,
        sink: FiringSink,
        dead_letters: DeadLetters,
        ttl_margin_ms: int,
        conflict_retries: int = 3,
    ) -> None:
        self.engine = engine
        self.store = store
        self.scheduler = scheduler
        self.sink = sink
        self.dead_letters = dead_letters
        self.ttl_margin_ms = ttl_margin_ms
        self.conflict_retries = conflict_retries
        self.horizon_ms = engine.retention()

    def evaluate(self, records: Sequence[InputRecord], wall: int, event_walls: EventWalls | None = None) -> BatchReport:
        """Evaluate a batch at wall-clock time ``wall`` (ms).

        ``event_walls`` gives single events their own clock: ``nudge local`` sends a file's events
        in batches and evaluates each at replay's virtual clock for it, so its firings are
        replay's. Each event's wall is settled here, once, and travels with the event.
        """
        report = BatchReport(records=len(records))
        walls = event_walls or {}
        customers: dict[str, _Customer] = {}
        rejected: list[tuple[int, Rejected]] = []
        for index, record in enumerate(records):
            item = decode_record(record)
            if isinstance(item, Rejected):
                rejected.append((index, item))
                continue
            reading: Reading | None = None
            if isinstance(item, TimerRecord):
                payload: Event | Timer = item.timer
                customer_id, payload_wall = item.timer.customer_id, wall
            elif (reading := self.engine.read(item)) is not None:
                payload, customer_id, payload_wall = item, item.customer_id, walls.get(item.event_id, wall)
            else:
                report.skipped += 1  # no rule can use it: no read, no write
                continue
            customers.setdefault(customer_id, _Customer([])).items.append((index, payload, payload_wall, reading))
        report.customers = len(customers)
        failed_indexes: list[int] = []
        if rejected:
            report.rejected = len(rejected)
            report.rejections = [r for _, r in rejected]
            unparked = {id(r) for r in self.dead_letters.reject(report.rejections)}
            failed_indexes += [index for index, r in rejected if id(r) in unparked]
        if customers:
            self._evaluate_customers(customers, wall, report)
            report.late = sum(customer.late for customer in customers.values())
            failed = [c for c in customers.values() if c.failed]
            report.failed_customers = len(failed)
            failed_indexes += [c.first_index for c in failed]
        if failed_indexes:
            report.failed_sequence_number = records[min(failed_indexes)].sequence_number
        return report

    # -- per batch ------------------------------------------------------------------------------

    def _evaluate_customers(self, customers: dict[str, _Customer], wall: int, report: BatchReport) -> None:
        try:
            loaded = self.store.load_many(list(customers))
        except Exception:
            log.exception("loading customer state failed for %d customers", len(customers))
            for customer in customers.values():
                customer.failed = True
            return
        for customer_id, customer in customers.items():
            customer.stored = loaded[customer_id]
            self._run(customer)
        for customer in customers.values():
            self._apply_timers(customer, report)
        self._send_firings([c for c in customers.values() if not c.failed], report)
        for customer_id, customer in customers.items():
            if not customer.failed:
                self._save(customer_id, customer, wall, report)

    def _run(self, customer: _Customer) -> None:
        assert customer.stored is not None
        state = customer.stored.state
        customer.firings, customer.timers, customer.changed, customer.late = [], [], False, 0
        for _, payload, wall, reading in customer.items:
            if isinstance(payload, Timer):
                outcome = self.engine.on_timer(state, payload, wall)
            else:
                outcome = self.engine.process(state, payload, wall, reading)
            customer.firings += outcome.firings
            customer.timers += outcome.timers
            customer.changed |= outcome.changed
            customer.late += outcome.late
        customer.timers = coalesce(customer.timers)

    def _apply_timers(self, customer: _Customer, report: BatchReport) -> None:
        if not customer.timers or customer.failed:
            return
        try:
            self.scheduler.apply(customer.timers)
        except Exception:
            log.exception("applying %d timer change(s) failed", len(customer.timers))
            customer.failed = True
            return
        report.timers_set += sum(isinstance(t, TimerSet) for t in customer.timers)
        report.timers_cancelled += sum(isinstance(t, TimerCancel) for t in customer.timers)

    def _send_firings(self, customers: list[_Customer], report: BatchReport) -> None:
        firings = [f for c in customers for f in c.firings]
        if not firings:
            return
        try:
            unsent = self.sink.send(firings)
        except Exception:
            log.exception("queueing %d firing(s) failed", len(firings))
            unsent = firings
        unsent_ids = {f.firing_id for f in unsent}
        for customer in customers:
            if any(f.firing_id in unsent_ids for f in customer.firings):
                customer.failed = True
        report.firings += len(firings) - len(unsent)

    def _save(self, customer_id: str, customer: _Customer, wall: int, report: BatchReport) -> None:
        for attempt in range(self.conflict_retries + 1):
            assert customer.stored is not None
            if not customer.changed:
                return
            try:
                self.store.save(customer.stored, self._expires_at(customer.stored, wall))
                report.writes += 1
                return
            except VersionConflict:
                report.conflicts += 1
                if attempt == self.conflict_retries:
                    break
                # Someone else wrote this customer: evaluate again on their state, re-apply effects.
                try:
                    customer.stored = self.store.load_many([customer_id])[customer_id]
                except Exception:
                    log.exception("reloading state after a version conflict failed")
                    break
                self._run(customer)
                self._apply_timers(customer, report)
                if not customer.failed:
                    self._send_firings([customer], report)
                if customer.failed:
                    return
            except Exception:
                log.exception("writing customer state failed")
                break
        customer.failed = True

    def _expires_at(self, stored: StoredState, wall: int) -> int:
        """Seconds since epoch after which DynamoDB may delete the item (TTL)."""
        state = stored.state
        latest = max(wall, state.now or wall)
        expires = latest + self.horizon_ms + self.ttl_margin_ms
        for _, pending in state.pending():
            expires = max(expires, pending.due + self.engine.lateness + self.ttl_margin_ms)
        return expires // 1000
