"""Evaluate one Kinesis batch: group by customer, one read, in-memory evaluation, one write each.

Order of effects per customer: new timers, then firings, then the conditional state write, then
the removal of the timers it replaced. A crash or error between them is safe because every effect
is idempotent (schedule names and firing ids are deterministic) and the state is written after
everything it relies on and before anything that undoes the previous state's safety net: a retried
batch recomputes the same effects and finds what it already did, and a batch that is never written
leaves the previous state and its timers as they were. A customer that fails is reported through the batch's earliest
failed record, so Kinesis redelivers from there; the other customers' redelivered records are
then no-ops through event-id dedupe and arm-time monotonicity.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..contracts import FEEDBACK_EVENTS, Event, Firing, Timer, TimerKey
from ..engine import GUARDRAIL_DECISIONS, Engine, Reading, TimerCancel, TimerSet, future_problem
from .ports import (
    DeadLetters,
    FiringSink,
    MessageLog,
    StateStore,
    StateTooLarge,
    StoredState,
    TimerScheduler,
    VersionConflict,
)
from .records import InputRecord, Rejected, TimerRecord, decode_record

log = logging.getLogger(__name__)

SAVE_BUDGET_MS = 15_000
"""A customer's write starts only with this much of the invocation left: a throttled write with its
retries (``wiring/retries.py``) takes up to about 15 s."""

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
    trimmed: int = 0
    feedback: int = 0
    """Message events recorded against their firings in the activations table."""
    erased: int = 0
    """Customers erased (``erasure_requested``), with their activations."""
    dropped_erased: int = 0
    """Events stamped at or before their customer's erasure, dropped."""
    failed_sequence_number: str | None = None
    rejections: list[Rejected] = field(default_factory=list)
    guarded: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Per (rule, decision kind), the guardrails' decisions for written customers: firings not sent
    for want of consent or over a cap, firings held by quiet hours, time zones that were not ones."""

    def guarded_as(self, kind: str) -> int:
        return sum(n for (_, k), n in self.guarded.items() if k == kind)

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
            "TrimmedStates": self.trimmed,
            "MessageEventsRecorded": self.feedback,
            "CustomersErased": self.erased,
            "EventsDroppedAfterErasure": self.dropped_erased,
            "SuppressedForDisengagement": self.guarded_as("suppressed_disengaged"),
            "StepsSkipped": self.guarded_as("skipped_unreachable"),
            "SuppressedForConsent": self.guarded_as("suppressed_consent"),
            "SuppressedForBounce": self.guarded_as("suppressed_bounced"),
            "SuppressedForComplaint": self.guarded_as("suppressed_complaint"),
            "SuppressedForCap": self.guarded_as("suppressed_cap"),
            "HeldForQuietHours": self.guarded_as("held"),
            "InvalidTimeZones": self.guarded_as("invalid_timezone"),
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
    erased: bool = False
    dropped_erased: int = 0
    guarded: list[tuple[str, str]] = field(default_factory=list)
    """(rule, kind) of each guardrail decision of this evaluation (``GUARDRAIL_DECISIONS``)."""

    @property
    def first_index(self) -> int:
        return self.items[0][0]


TimerSlot = tuple[str, str, str | None]
"""(customer, rule, key): the one timer a (rule, key) of a customer has at a time."""


def coalesce(requests: Sequence[TimerSet | TimerCancel]) -> list[TimerSet | TimerCancel]:
    """The net effect of a batch's timer requests: per (customer, rule, key), at most one timer to create
    (the last one set, if the batch ends with one) replacing at most one to remove (the one pending
    before the batch).

    A timer created and cancelled within one batch never needs a call; one created and moved within
    the batch is created once, at its final arming; one moved away and back needs nothing.
    """
    before: dict[TimerSlot, int | None] = {}
    last: dict[TimerSlot, TimerSet | TimerCancel] = {}
    for request in requests:
        if isinstance(request, TimerSet):
            slot: TimerSlot = (request.timer.customer_id, request.timer.rule, request.timer.key)
            before.setdefault(slot, request.replaced_arm)
        else:
            slot = (request.customer_id, request.rule, request.key)
            before.setdefault(slot, request.arm)
        last[slot] = request
    result: list[TimerSet | TimerCancel] = []
    for slot, request in last.items():
        pending = before[slot]
        if isinstance(request, TimerSet):
            if request.timer.arm != pending:
                result.append(replace(request, replaced_arm=pending))
        elif pending is not None:
            result.append(TimerCancel(*slot, arm=pending))
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
        timer_key: TimerKey,
        conflict_retries: int = 3,
        profile_retention_ms: int = 730 * 86_400_000,
        messages: MessageLog | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.scheduler = scheduler
        self.sink = sink
        self.dead_letters = dead_letters
        self.ttl_margin_ms = ttl_margin_ms
        self.timer_key = timer_key
        self.conflict_retries = conflict_retries
        self.profile_retention_ms = profile_retention_ms
        """How long the durable profile (traits, consent) outlives the customer's last event."""
        self.messages = messages
        """Where message events are recorded against their firings (the activations table)."""

    def evaluate(
        self,
        records: Sequence[InputRecord],
        wall: int,
        event_walls: EventWalls | None = None,
        time_left_ms: Callable[[], int] | None = None,
        by_arrival: bool = False,
    ) -> BatchReport:
        """Evaluate a batch at wall-clock time ``wall`` (ms).

        ``event_walls`` gives single events their own clock: ``nudge local`` sends a file's events
        in batches and evaluates each at replay's virtual clock for it, so its firings are
        replay's. Each event's wall is settled here, once, and travels with the event.
        ``time_left_ms`` is the invocation's remaining time: a customer is written only with
        ``SAVE_BUDGET_MS`` left, the rest fail and are redelivered, so a throttled batch ends with a
        partial response instead of a timeout (which would redeliver all of it).
        ``by_arrival`` evaluates each record at the time it reached the stream (when earlier than
        ``wall``), as the Lambda handler does: a record that waited behind a failing batch, or an
        outage, is then judged as it would have been on time, not as a late event.
        """
        report = BatchReport(records=len(records))
        walls = event_walls or {}
        customers: dict[str, _Customer] = {}
        rejected: list[tuple[int, Rejected]] = []
        feedback: list[tuple[int, Event]] = []
        for index, record in enumerate(records):
            item = decode_record(record, self.timer_key)
            if isinstance(item, Event) and (problem := self._from_future(item, record, wall)):
                item = Rejected(record, problem)
            if isinstance(item, Rejected):
                rejected.append((index, item))
                continue
            if (
                self.messages is not None
                and isinstance(item, Event)
                and item.name in FEEDBACK_EVENTS
                and isinstance(item.properties.get("firing_id"), str)
            ):
                feedback.append((index, item))
            reading: Reading | None = None
            record_wall = min(wall, record.arrival_ms) if by_arrival and record.arrival_ms > 0 else wall
            if isinstance(item, TimerRecord):
                payload: Event | Timer = item.timer
                customer_id, payload_wall = item.timer.customer_id, record_wall
            elif (reading := self.engine.read(item)) is not None:
                payload, customer_id, payload_wall = item, item.customer_id, walls.get(item.event_id, record_wall)
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
        if feedback:
            failed_indexes += self._record_feedback(feedback, report)
        if customers:
            self._evaluate_customers(customers, wall, report, time_left_ms)
            report.late = sum(customer.late for customer in customers.values())
            failed = [c for c in customers.values() if c.failed]
            report.failed_customers = len(failed)
            report.guarded = Counter(pair for c in customers.values() if not c.failed for pair in c.guarded)
            failed_indexes += [c.first_index for c in failed]
        if failed_indexes:
            report.failed_sequence_number = records[min(failed_indexes)].sequence_number
        return report

    def _record_feedback(self, feedback: list[tuple[int, Event]], report: BatchReport) -> list[int]:
        """Record message events against their firings; the indexes of those that failed (redelivered,
        and recorded again identically)."""
        assert self.messages is not None
        try:
            unrecorded = {id(event) for event in self.messages.record_feedback([event for _, event in feedback])}
        except Exception:
            log.exception("recording %d message event(s) failed", len(feedback))
            unrecorded = {id(event) for _, event in feedback}
        report.feedback += len(feedback) - len(unrecorded)
        return [index for index, event in feedback if id(event) in unrecorded]

    def _from_future(self, event: Event, record: InputRecord, wall: int) -> str | None:
        """Why ``event`` is refused as stamped too far ahead of its arrival on the stream (the batch's
        clock when the record carries none); it then never reaches a state, so never moves one."""
        received = record.arrival_ms if record.arrival_ms > 0 else wall
        return future_problem(event.ts, received, self.engine.plan.max_future_skew)

    # -- per batch ------------------------------------------------------------------------------

    def _evaluate_customers(
        self,
        customers: dict[str, _Customer],
        wall: int,
        report: BatchReport,
        time_left_ms: Callable[[], int] | None = None,
    ) -> None:
        try:
            loaded = self.store.load_many(list(customers))
        except Exception:
            log.exception("loading customer state failed for %d customers", len(customers))
            for customer in customers.values():
                customer.failed = True
            return
        for customer_id, customer in customers.items():
            stored = loaded.get(customer_id)
            if stored is None:
                customer.failed = True  # its state could not be read: redelivered, the others go on
                continue
            customer.stored = stored
            self._run(customer)
        for customer in customers.values():
            self._apply_timers(customer, report)
        self._send_firings([c for c in customers.values() if not c.failed], report)
        for customer_id, customer in customers.items():
            if customer.failed:
                continue
            if time_left_ms is not None and time_left_ms() < SAVE_BUDGET_MS:
                customer.failed = True  # out of time: redelivered, its effects found already done
                continue
            if customer.erased and not self._erase_activations(customer_id, customer):
                continue
            self._save(customer_id, customer, wall, report)
            if customer.erased and not customer.failed:
                report.erased += 1
            if not customer.failed:
                report.dropped_erased += customer.dropped_erased

    def _run(self, customer: _Customer) -> None:
        assert customer.stored is not None
        state = customer.stored.state
        customer.firings, customer.timers, customer.changed, customer.late = [], [], False, 0
        customer.guarded, customer.erased, customer.dropped_erased = [], False, 0
        for _, payload, wall, reading in customer.items:
            if isinstance(payload, Timer):
                outcome = self.engine.on_timer(state, payload, wall)
            else:
                outcome = self.engine.process(state, payload, wall, reading)
            customer.guarded += [(d.rule, d.kind) for d in outcome.decisions if d.kind in GUARDRAIL_DECISIONS]
            customer.firings += outcome.firings
            customer.timers += outcome.timers
            customer.changed |= outcome.changed
            customer.late += outcome.late
            customer.erased |= outcome.erased
            customer.dropped_erased += outcome.dropped_erased
        customer.timers = coalesce(customer.timers)

    def _erase_activations(self, customer_id: str, customer: _Customer) -> bool:
        """An erasure's deletions outside the state, before the state write that records it: a failure
        fails the customer, and the redelivered erasure (read against the unwritten state) does it all
        again. The state store's write then leaves the tombstone and deletes the profile and state."""
        if self.messages is None:
            return True
        try:
            self.messages.erase_customer(customer_id)
        except Exception:
            log.exception("erasing a customer's activations failed")
            customer.failed = True
            return False
        return True

    def _apply_timers(self, customer: _Customer, report: BatchReport) -> None:
        """Create the timers the new state needs; the ones it replaces go after the write (``_release``)."""
        if not customer.timers or customer.failed:
            return
        try:
            self.scheduler.prepare(customer.timers)
        except Exception:
            log.exception("creating %d timer(s) failed", len(customer.timers))
            customer.failed = True
            return
        report.timers_set += sum(isinstance(t, TimerSet) for t in customer.timers)
        report.timers_cancelled += sum(isinstance(t, TimerCancel) for t in customer.timers)

    def _release(self, customer: _Customer) -> None:
        """After the write: remove replaced and cancelled timers. A failure here costs a no-op timer, not a retry."""
        if not any(isinstance(t, TimerCancel) or t.replaces for t in customer.timers):
            return
        try:
            self.scheduler.release(customer.timers)
        except Exception:
            log.exception("removing %d replaced timer(s) failed; each will come as a no-op", len(customer.timers))

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
            state = customer.stored.state
            profile_expires = (max(wall, state.now or wall) + self.profile_retention_ms) // 1000
            try:
                try:
                    self.store.save(customer.stored, self._expires_at(customer.stored, wall), profile_expires)
                except StateTooLarge:
                    trim = self.engine.fit(customer.stored.state, self.store.encoded_size, self.store.budget)
                    report.trimmed += 1
                    log.warning("customer state trimmed to fit: %r", trim)  # sizes and counts, no data
                    self.store.save(customer.stored, self._expires_at(customer.stored, wall), profile_expires)
                report.writes += 1
                self._release(customer)
                return
            except VersionConflict:
                report.conflicts += 1
                if attempt == self.conflict_retries:
                    break
                # Someone else wrote this customer: evaluate again on their state, re-apply effects.
                try:
                    customer.stored = self.store.load_many([customer_id])[customer_id]  # KeyError: unread
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
        return (self.engine.kept_until(stored.state, wall) + self.ttl_margin_ms) // 1000
