"""One seeded run: the workload through the whole stack on moto, under one fault, then the judgement.

The stack is provisioned in moto in-process (``moto_stack``) with the deployment's settings; the
evaluator and the deliverer are wired by ``nudge.wiring`` on moto with the virtual clock, and their
real Lambda handlers are invoked by the event source emulations (``lambda_runtime``). Then, until
the run is quiet:

1. the producer puts every record due by the clock (workload events at their event time);
2. Scheduler fires every due schedule onto the stream;
3. the Kinesis mapping reads, batches and invokes the evaluator (retries, bisects, discards);
4. the SQS mapping receives from the firings queue and invokes delivery;
5. when nothing is due now, the clock jumps to the earliest thing due later.

Quiet means: nothing left to put, no schedule in the group, nothing unread or in flight on the
stream, no message visible or in flight on the firings queue. The scenario's fault is armed
after the wiring and before the first record (``Scenario.arm``); then ``measure`` counts at moto
and ``Expectation.judge`` says whether the promise held.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nudge.contracts import Event, Firing
from nudge.engine import Plan, load_plan
from nudge.settings import DELIVERY_TIMEOUT_SECONDS, StackSettings
from nudge.wiring.delivery import build_deliverer
from nudge.wiring.evaluator import build_evaluator

from .crash import CrashPlan
from .esm import KinesisEventSourceMapping, MappingSettings
from .expected import Redeploy, expected_firings
from .inject import FaultInjector
from .lambda_runtime import (
    Deployment,
    Function,
    delivery_handler,
    deploy_delivery,
    deploy_evaluator,
    evaluator_handler,
)
from .ledger import MotoLedger
from .measure import Measurement, Parked, firing_ids_of, has_address, rejection_reason, sends_by_firing
from .moto_stack import MotoStack, moto_stack
from .producer import Producer, Put, event_put
from .scheduler import SchedulerService
from .sqs_consumer import SqsEventSource
from .virtual_time import VirtualTime
from .workload import MINUTE, Workload, generate

RULES_DIR = "rules"
MAX_VIRTUAL_MS = 30 * 86_400_000
"""A run that is not quiet 30 virtual days after it started is stuck (a retry loop that never ends)."""


@dataclass
class Run:
    """Everything of one run, for scenarios to arm faults on and for ``measure`` to read."""

    seed: int
    workload: Workload
    plan: Plan
    time: VirtualTime
    stack: MotoStack
    ledger: MotoLedger
    injector: FaultInjector
    crashes: CrashPlan
    evaluator: Deployment
    deliverer: Deployment
    evaluator_fn: Function
    delivery_fn: Function
    esm: KinesisEventSourceMapping
    deliveries: SqsEventSource
    scheduler: SchedulerService
    producer: Producer
    rng: random.Random
    exit: contextlib.ExitStack
    """Undoes what the scenario armed (patches on the wired instances) when the run ends."""
    hooks: list[Hook] = field(default_factory=list)
    redeploy: Redeploy | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def build_evaluator(self, rules_dir: str = RULES_DIR) -> Any:
        """A new evaluator as the handler's cold start would wire it (on moto, on the virtual clock)."""
        config = self.stack.resources.config.model_copy(update={"rules_dir": rules_dir})
        evaluator = build_evaluator(config, self.stack.product, self.time.clock)
        if hasattr(evaluator.store, "sleep"):
            evaluator.store.sleep = self.time.sleep  # its backoff for unprocessed keys: virtual too
        return evaluator

    def build_deliverer(self, rules_dir: str = RULES_DIR) -> Any:
        config = self.stack.resources.delivery.model_copy(update={"rules_dir": rules_dir})
        return build_deliverer(config, self.stack.product, self.time.clock)


@dataclass
class Hook:
    """Something the scenario does at a virtual instant (a redeploy); ``act`` returns True once done."""

    at_ms: int
    act: Callable[[Run], None]
    done: bool = False


@dataclass(frozen=True)
class Expectation:
    """What a run must show. The promise is the default; a documented, bounded exception loosens one clause."""

    parked_bound: Callable[[Run, Measurement], int] = lambda _run, _m: 0
    """How many firings may be parked (with a reason) instead of sent: 0 unless the fault makes the
    outcome of a send unknowable (then at most one per such fault)."""
    exception: str = ""
    """The documented exception, in words (shown in the report)."""
    checks: tuple[Callable[[Run, Measurement], list[str]], ...] = ()
    """Scenario-specific clauses (each poison record parked with a reason, ...)."""

    def judge(self, run: Run, m: Measurement) -> list[str]:
        """The clauses the run broke (empty: the promise held)."""
        problems = []
        if m.lost_events:
            problems.append(f"{m.lost_events} event(s) lost")
        if m.duplicate_sends:
            problems.append(f"{m.duplicate_sends} duplicate send(s)")
        if m.missing:
            problems.append(f"{len(m.missing)} firing(s) of replay never queued")
        if m.extra:
            problems.append(f"{len(m.extra)} firing(s) replay does not make")
        if m.without_reason:
            problems.append(f"{m.without_reason} parked message(s) without a reason")
        if m.unsent:
            problems.append(f"{len(m.unsent)} firing(s) neither sent nor parked")
        parked_with_reason = sum(1 for p in m.parked_firings if p.reason)
        bound = self.parked_bound(run, m)
        if parked_with_reason > bound:
            reasons = sorted({p.reason or "" for p in m.parked_firings})
            problems.append(f"{parked_with_reason} firing(s) parked, at most {bound} allowed: {'; '.join(reasons)}")
        for check in self.checks:
            problems += check(run, m)
        return problems


Arm = Callable[[Run], None]


@dataclass(frozen=True)
class Scenario:
    """One fault: how it is armed on a wired run, the records it adds, and what the run must show."""

    name: str
    how: str
    """How the fault is injected, in the report's words."""
    arm: Arm = lambda _run: None
    extra_puts: Callable[[Workload, random.Random], list[Put]] = lambda _w, _rng: []
    """Records beyond the workload's events: poison records, re-sent copies."""
    redeploy: Callable[[Workload, Path], Redeploy] | None = None
    """A redeploy during the run: given the workload and a scratch folder for the new rules, where and what."""
    expectation: Expectation = Expectation()
    scheduler_duplicates: float = 0.0
    crash_rate: float = 0.3
    spread_hours: float | None = None
    """Over how many hours the customers start (``workload.generate``'s default: 3)."""
    customers: int | None = None
    """A scenario defined by its traffic (a burst) runs this many customers whatever the run asks."""
    settings: dict[str, Any] = field(default_factory=dict)
    """``StackSettings`` fields this scenario deploys with (e.g. a provisioned stream of one shard)."""


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed what the run cannot be handed a ``Random`` for: botocore's retry jitter (the global
    ``random``) and moto's ids (its ``mock_random``); the global state is restored afterwards."""
    from moto.moto_api._internal import mock_random

    saved = random.getstate()
    random.seed(seed)
    mock_random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


class _Discard(io.TextIOBase):
    """Where the functions' stdout goes during a run: Powertools prints one EMF metrics line per invocation."""

    def write(self, text: str) -> int:
        return len(text)


@dataclass
class Result:
    scenario: str
    seed: int
    customers: int
    measurement: Measurement
    problems: list[str]

    @property
    def kept(self) -> bool:
        return not self.problems


def run_scenario(scenario: Scenario, seed: int, customers: int = 100, settings: StackSettings | None = None) -> Result:
    """Run ``scenario`` once on a fresh moto with the workload of ``seed``; see the module docstring."""
    customers = scenario.customers or customers
    spread = {} if scenario.spread_hours is None else {"spread_hours": scenario.spread_hours}
    workload = generate(seed, customers, **spread)
    base = settings or StackSettings()
    settings = base.model_copy(update=scenario.settings) if scenario.settings else base
    with contextlib.ExitStack() as stack:
        stack.enter_context(_seeded(seed))
        stack.enter_context(contextlib.redirect_stdout(_Discard()))  # the functions' EMF metrics lines
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nudge-faults-")))
        redeploy = scenario.redeploy(workload, scratch) if scenario.redeploy is not None else None
        run = _wire(stack, scenario, seed, workload, settings)
        run.redeploy = redeploy
        scenario.arm(run)
        _drive(run)
        measurement = measure(run)
        problems = scenario.expectation.judge(run, measurement)
    return Result(scenario.name, seed, customers, measurement, problems)


def _wire(
    stack: contextlib.ExitStack, scenario: Scenario, seed: int, workload: Workload, settings: StackSettings
) -> Run:
    time = VirtualTime(workload.events[0].ts - MINUTE)
    moto = stack.enter_context(moto_stack(settings, RULES_DIR))
    stack.enter_context(time.install())
    ledger = MotoLedger(time.now_ms)
    stack.enter_context(ledger.install())
    injector = FaultInjector(time, seed)
    stack.enter_context(injector.install())
    plan = load_plan(RULES_DIR)
    run_rng = random.Random(seed * 7919 + 17)
    puts = [event_put(event) for event in workload.events] + scenario.extra_puts(workload, run_rng)
    service = moto.service
    producer = Producer(service.client("kinesis"), moto.resources.stream_name, time, puts)
    evaluator_fn = Function("nudge-evaluator", evaluator_handler(), time, settings.evaluator_timeout_seconds * 1000)
    delivery_fn = Function("nudge-delivery", delivery_handler(), time, DELIVERY_TIMEOUT_SECONDS * 1000)
    kinesis = service.client("kinesis")
    esm = KinesisEventSourceMapping(
        kinesis=kinesis,
        sqs=service.client("sqs"),
        stream_name=moto.resources.stream_name,
        stream_arn=moto.resources.config.events_stream_arn,
        function=evaluator_fn,
        settings=MappingSettings.deployed(settings, plan),
        on_failure_url=moto.resources.evaluator_dlq_url,
        time=time,
        seed=seed,
    )
    deliveries = SqsEventSource(
        service.client("sqs"),
        moto.resources.firings_queue_url,
        moto.sqs_queue(moto.resources.firings_queue_url),
        delivery_fn,
        time,
        seed=seed,
    )
    scheduler = SchedulerService(
        kinesis,
        service.client("scheduler"),
        moto.resources.config.schedule_group,
        time,
        seed,
        duplicate_rate=scenario.scheduler_duplicates,
    )
    run = Run(
        seed=seed,
        workload=workload,
        plan=plan,
        time=time,
        stack=moto,
        ledger=ledger,
        injector=injector,
        crashes=CrashPlan(scenario.crash_rate, seed),
        evaluator=Deployment(None),
        deliverer=Deployment(None),
        evaluator_fn=evaluator_fn,
        delivery_fn=delivery_fn,
        esm=esm,
        deliveries=deliveries,
        scheduler=scheduler,
        producer=producer,
        rng=run_rng,
        exit=stack,
    )
    run.evaluator.replace(run.build_evaluator())
    run.deliverer.replace(run.build_deliverer())
    stack.enter_context(deploy_evaluator(run.evaluator, time))
    stack.enter_context(deploy_delivery(run.deliverer))
    return run


def _drive(run: Run) -> None:
    """The loop of the module docstring, until the run is quiet."""
    start = run.time.now_ms()
    while True:
        now = run.time.now_ms()
        if now - start > MAX_VIRTUAL_MS:
            raise RuntimeError(f"not quiet after {MAX_VIRTUAL_MS // 86_400_000} virtual days: {run.notes}")
        did = run.producer.put_due(now)
        did |= run.scheduler.fire_due(now)
        for hook in run.hooks:
            if not hook.done and hook.at_ms <= now:
                hook.act(run)
                hook.done = did = True
        did |= run.esm.step(now)
        did |= run.deliveries.step(now)
        if did:
            continue
        wakes = [
            run.producer.next_at(),
            run.scheduler.next_due(),
            run.esm.next_wake(),
            run.deliveries.next_wake(),
            *(hook.at_ms for hook in run.hooks if not hook.done),
        ]
        upcoming = [wake for wake in wakes if wake is not None]
        if not upcoming:
            return
        run.time.advance_to(max(min(upcoming), now + 1))


def _put_order_events(run: Run) -> list[Event]:
    """The events as they went onto the stream (workload events and copies, not poison records)."""
    return [
        landed.put.event
        for landed in run.producer.landed
        if landed.put.event is not None and landed.put.kind != "poison"
    ]


def measure(run: Run) -> Measurement:
    """Count at moto what the run did, against replay; see ``measure``'s module docstring."""
    stack = run.stack
    resources = stack.resources
    expected: list[Firing] = expected_firings(run.plan, _put_order_events(run), run.redeploy)
    expected_ids = {firing.firing_id for firing in expected}
    queued = firing_ids_of(m.body for m in run.ledger.sent_to(stack.queue_name(resources.firings_queue_url)))
    emails = run.ledger.emails()
    sends = sends_by_firing([e.firing_prefix for e in emails], [e.fingerprint for e in emails])
    parked = []
    for message in run.ledger.held_by(stack.queue_name(resources.firings_dlq_url)):
        try:
            subject = str(json.loads(message.body).get("firing_id"))
        except (ValueError, AttributeError):
            subject = message.body[:40]
        parked.append(Parked("firings-dlq", subject, message.attributes.get("reason") or None))
    rejected = [
        Parked("rejected-events", message.body[:80], rejection_reason(message.body, message.attributes))
        for message in run.ledger.held_by(stack.queue_name(stack.rejected_queue_url))
    ]
    parked_ids = {p.subject for p in parked}
    sent_prefixes = set(sends)
    delayed_customers = run.esm.delayed_customers(run.plan.allowed_lateness)
    customer_of = {firing.firing_id: firing.customer_id for firing in expected}
    for message in run.ledger.sent_to(stack.queue_name(resources.firings_queue_url)):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            body = json.loads(message.body)
            customer_of.setdefault(str(body["firing_id"]), str(body["customer_id"]))
    missing = sorted(expected_ids - set(queued))
    extra = sorted(set(queued) - expected_ids)
    delayed = [fid for fid in [*missing, *extra] if customer_of.get(fid) in delayed_customers]
    events = [landed for landed in run.producer.landed if landed.put.kind in ("event", "copy")]
    passed = [landed for landed in events if (landed.shard_id, landed.sequence_number) not in run.esm.filtered]
    lost = [landed for landed in passed if (landed.shard_id, landed.sequence_number) not in run.esm.delivered]
    return Measurement(
        expected=len(expected_ids),
        queued=sum(queued.values()),
        missing=missing,
        extra=extra,
        delayed=delayed,
        delayed_customers=len(delayed_customers),
        duplicate_firings=sum(count - 1 for count in queued.values()),
        emails=len(emails),
        duplicate_sends=sum(count - 1 for count in sends.values()),
        unsent=sorted(
            f.firing_id
            for f in expected
            if has_address(f)
            and f.firing_id[:16] not in sent_prefixes
            and f.firing_id not in parked_ids
            and f.firing_id not in missing
        ),
        lost_events=len(lost),
        evaluated_events=len(passed) - len(lost),
        discarded_batches=len(run.esm.discarded),
        parked_firings=parked,
        rejected_records=rejected,
        injected={**run.injector.injected, **{f"death {k}": v for k, v in run.crashes.deaths.items()}},
        notes={
            **run.notes,
            "invocations": {"evaluator": run.evaluator_fn.endings, "delivery": run.delivery_fn.endings},
            "virtual_hours": round((run.time.now_ms() - run.workload.events[0].ts) / 3_600_000, 1),
            "retry_sleep_s": round(run.time.slept_ms / 1000, 1),
            "timers_fired": run.scheduler.fired,
            "filtered_out": len(run.esm.filtered),
            "poison_records": sum(1 for landed in run.producer.landed if landed.put.kind == "poison"),
            "copies": sum(1 for landed in run.producer.landed if landed.put.kind == "copy"),
            "echoed_invocations": run.esm.echoes,
            "duplicate_receives": run.deliveries.duplicates,
            "duplicate_timers": run.scheduler.duplicates,
            "filter_recursion_errors": run.esm.filter_recursion_errors,
        },
    )
