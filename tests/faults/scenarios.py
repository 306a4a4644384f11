"""The faults, one ``Scenario`` each: what is injected, how, and what the run must still show.

Every scenario keeps the whole promise (0 lost, 0 duplicate sends, replay's firings queued, every
parked message with a reason, nothing parked) unless its ``Expectation`` names a documented,
bounded exception: a send whose outcome cannot be known (the provider may have accepted it) is
parked for a person rather than risked twice, at most once per fault that made it unknowable.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nudge.adapters.kinesis import kinesis_records
from nudge.contracts import Event
from nudge.engine import load_plan
from nudge.timefmt import iso

from .crash import (
    DELIVERY_BOUNDARIES,
    EVALUATOR_BOUNDARIES,
    die_before_response,
    kinesis_batch_key,
    sqs_batch_key,
)
from .expected import Redeploy
from .inject import Fault, find_clients
from .measure import Measurement
from .producer import Put, event_put
from .scenario import RULES_DIR, Expectation, Hook, Run, Scenario
from .workload import MINUTE, Workload

STATE_OPERATIONS = ("PutItem", "DeleteItem", "UpdateItem", "GetItem")
SCHEDULE_OPERATIONS = ("CreateSchedule", "UpdateSchedule", "DeleteSchedule")
ACTIVATION_OPERATIONS = ("PutItem", "UpdateItem", "GetItem")
LATENESS_MS = 2 * MINUTE
"""``rules/policy.yaml``'s allowed lateness (the redeploy scenario keeps timers clear of the swap)."""


def _start(run: Run) -> int:
    return run.workload.events[0].ts


def faults_on(function: str, *faults: Callable[[Run], Fault]) -> Callable[[Run], None]:
    """Arm ``faults`` on the clients of the ``evaluator`` or ``delivery`` service (built per run: windows
    can depend on the workload's start)."""

    def arm(run: Run) -> None:
        root = run.evaluator.service if function == "evaluator" else run.deliverer.service
        for make in faults:
            fault = make(run)
            if not run.injector.attach(root, [fault]):
                raise RuntimeError(f"no {fault.service} client in the {function} to inject into")

    return arm


def fixed(fault: Fault) -> Callable[[Run], Fault]:
    return lambda _run: fault


# -- crashes ---------------------------------------------------------------------------------------


def evaluator_crash(boundary: str) -> Callable[[Run], None]:
    def arm(run: Run) -> None:
        if boundary == "before the response":
            run.evaluator_fn.handler = die_before_response(run.evaluator_fn.handler, run.crashes, kinesis_batch_key)
        else:
            run.exit.enter_context(EVALUATOR_BOUNDARIES[boundary].install(run.evaluator.service, run.crashes))

    return arm


def delivery_crash(boundary: str) -> Callable[[Run], None]:
    def arm(run: Run) -> None:
        if boundary == "after recording, before the ack":
            run.delivery_fn.handler = die_before_response(run.delivery_fn.handler, run.crashes, sqs_batch_key)
        else:
            run.exit.enter_context(DELIVERY_BOUNDARIES[boundary].install(run.deliverer.service, run.crashes))

    return arm


def parked_per_death(boundary: str) -> Callable[[Run, Measurement], int]:
    """At most one firing parked (outcome unknown) per death after the provider call may have started."""
    return lambda run, _m: run.crashes.deaths[boundary]


def parked_per_injected(fragment: str, per: Callable[[Run], int] = lambda _run: 1) -> Callable[[Run, Measurement], int]:
    """At most one firing parked per ``per(run)`` injected faults whose label contains ``fragment``."""

    def bound(run: Run, _m: Measurement) -> int:
        injected = sum(count for label, count in run.injector.injected.items() if fragment in label)
        return injected // max(1, per(run))

    return bound


def _client_attempts(run: Run, service: str) -> int:
    """How many attempts the delivery's ``service`` client makes per call (its botocore retry config)."""
    clients = find_clients(run.deliverer.service, service)
    retries = (clients[0].meta.config.retries if clients else None) or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    return int(retries.get("max_attempts", 9)) + 1  # botocore's legacy default for DynamoDB: 10 attempts


# -- poison records ----------------------------------------------------------------------------------


def _poison(label: str, make: Callable[[Event, random.Random], tuple[str, bytes]], count: int = 2) -> Any:
    """``count`` poison records put right after random workload events, on those events' customers
    (so each sits in a batch with good records, which must not go down with it)."""

    def extra(workload: Workload, rng: random.Random) -> list[Put]:
        hosts = rng.sample([e for e in workload.events if e.name != "identify"], count)
        out = []
        for host in hosts:
            partition_key, data = make(host, rng)
            out.append(Put(host.ts + 1, partition_key, data, "poison", label=label))
        return out

    return extra


def _envelope(host: Event, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"poison-{host.event_id}",
        "customer_id": host.customer_id,
        "event": "add_to_cart",
        "timestamp": iso(host.ts),
        **fields,
    }


def _oversized(host: Event, _rng: random.Random) -> tuple[str, bytes]:
    body = _envelope(host, properties={"sku": "SKU-X", "note": "x" * (800 * 1024)})
    return host.customer_id, json.dumps(body).encode()


def _deep(host: Event, _rng: random.Random) -> tuple[str, bytes]:
    head = json.dumps(_envelope(host, properties={"sku": "SKU-X"}))[:-1]
    return host.customer_id, (head + ', "deep": ' + "[" * 990 + "]" * 990 + "}").encode()


def _no_offset(host: Event, _rng: random.Random) -> tuple[str, bytes]:
    """An envelope whose timestamp has no UTC offset (the filters pass it: ``event`` is a rule's)."""
    return host.customer_id, json.dumps(_envelope(host, timestamp=iso(host.ts).removesuffix("Z"))).encode()


def _no_event(host: Event, _rng: random.Random) -> tuple[str, bytes]:
    """An envelope without ``event`` (the filters pass it on purpose, so it is parked with a reason)."""
    return host.customer_id, json.dumps({k: v for k, v in _envelope(host).items() if k != "event"}).encode()


def _not_json(host: Event, rng: random.Random) -> tuple[str, bytes]:
    """Not a JSON object: bytes that are not JSON, or a JSON array (no data filter matches either)."""
    if rng.random() < 0.5:
        return host.customer_id, json.dumps([_envelope(host)]).encode()
    return host.customer_id, b"\xff{event: add_to_cart, customer_id: " + host.customer_id.encode() + b"}"


def _other_key(host: Event, _rng: random.Random) -> tuple[str, bytes]:
    body = _envelope(host, event="purchase", properties={"sku": "SKU-MAT", "price": 29.9})
    return f"{host.customer_id}-other", json.dumps(body).encode()


def _forged_timers(workload: Workload, rng: random.Random) -> list[Put]:
    """Unsigned ``nudge.timer`` records for real waits, put early: ``arm`` is the checkout's time (what a
    forger would guess), ``due`` an hour later. Where replay calls the wait off (a purchase comes
    after the forged timer, inside the hour), an accepted forgery fires it: an extra firing."""
    by_customer: dict[str, list[Event]] = {}
    for event in workload.events:
        by_customer.setdefault(event.customer_id, []).append(event)
    puts = []
    for customer, events in by_customer.items():
        checkouts = [e for e in events if e.name == "checkout_viewed"]
        purchases = [e for e in events if e.name == "purchase"]
        if not checkouts:
            continue
        arm = checkouts[-1].ts
        cancelled = any(arm + 10 * MINUTE < p.ts <= arm + 55 * MINUTE for p in purchases)
        if not cancelled and rng.random() > 0.2:
            continue
        timer = {"type": "nudge.timer", "v": 1, "customer_id": customer, "rule": "cart_abandonment", "key": None,
                 "arm": arm, "due": arm + 60 * MINUTE}  # fmt: skip
        puts.append(Put(arm + 5 * MINUTE, customer, json.dumps(timer).encode(), "poison", label="forged timer"))
    return puts


def _copies(workload: Workload, rng: random.Random) -> list[Put]:
    """A quarter of the events sent again (an SDK retry after a lost answer), 1 s to 10 min later."""
    return [
        event_put(event, event.ts + rng.randint(1_000, 10 * MINUTE), "copy")
        for event in workload.events
        if rng.random() < 0.25
    ]


def parked_with_reason(label: str, filtered_ok: bool = False) -> Callable[[Run, Measurement], list[str]]:
    """Each poison record labelled ``label`` is in the rejected-events queue with a reason (or, with
    ``filtered_ok``, dropped by the mapping's filters, as the README documents for non-JSON records)."""

    def check(run: Run, _m: Measurement) -> list[str]:
        rejected = {}  # (sequence number, partition key) -> reason: sequence numbers are per shard
        for message in run.ledger.held_by(run.stack.queue_name(run.stack.rejected_queue_url)):
            try:
                body = json.loads(message.body)
            except ValueError:
                continue
            rejected[(str(body.get("sequence_number")), str(body.get("partition_key")))] = body.get("reason")
        problems = []
        poison = [landed for landed in run.producer.landed if landed.put.label == label]
        for landed in poison:
            where = (landed.shard_id, landed.sequence_number)
            if filtered_ok and where in run.esm.filtered:
                continue
            reason = rejected.get((landed.sequence_number, landed.put.partition_key))
            if not reason:
                state = "filtered out" if where in run.esm.filtered else "accepted or lost"
                problems.append(f"{label} {landed.sequence_number} not parked with a reason ({state})")
        if not poison:
            problems.append(f"the workload had no {label} to test")
        return problems

    return check


# -- conflicts -----------------------------------------------------------------------------------------


def twin_evaluator(rate: float) -> Callable[[Run], None]:
    """A second evaluator on the same customers: right after the first has read their states, a twin
    (another Lambda instance handling the same batch: Lambda may invoke a batch twice) evaluates and
    writes them, so the first one's conditional writes meet a newer version."""

    def arm(run: Run) -> None:
        twin = run.build_evaluator()
        store = run.evaluator.service.store
        original = store.load_many
        rng = random.Random(run.seed + 101)

        def load_many(customer_ids: Any) -> Any:
            loaded = original(customer_ids)
            event = run.evaluator_fn.current_event
            if event is not None and rng.random() < rate:
                run.notes["twin_batches"] = run.notes.get("twin_batches", 0) + 1
                twin.evaluate(kinesis_records(event), wall=run.time.now_ms())
            return loaded

        store.load_many = load_many

    return arm


def conflicts_seen(run: Run, _m: Measurement) -> list[str]:
    return [] if run.notes.get("twin_batches") else ["no batch met its twin: the scenario tested nothing"]


# -- redeploy ----------------------------------------------------------------------------------------


def _rules_v2(folder: Path) -> Path:
    """The repository's rules with a wait, a window and a key changed."""
    target = folder / "rules-v2"
    shutil.copytree(RULES_DIR, target)
    edits = {
        "cart_abandonment.yaml": ("wait: 1h", "wait: 45m"),
        "product_x_then_y.yaml": ("within: 7d", "within: 2h"),
        "trial_not_upgraded.yaml": ("id: trial_engaged_no_upgrade\n", "id: trial_engaged_no_upgrade\nkey: plan\n"),
    }
    for name, (old, new) in edits.items():
        path = target / name
        text = path.read_text()
        if old not in text:
            raise RuntimeError(f"{name} no longer says {old!r}: update the redeploy scenario")
        path.write_text(text.replace(old, new, 1))
    return target


def _quiet_instant(workload: Workload) -> int:
    """An instant in the middle of the workload with no event within 5 s and no timer coming within
    40 s (decision time plus Scheduler's delay), so both sides of the swap are unambiguous."""
    events = [e.ts for e in workload.events]
    decisions = [e.ts + 60 * MINUTE + LATENESS_MS for e in workload.events if e.name == "checkout_viewed"]
    decisions += [e.ts + 7 * 86_400_000 + LATENESS_MS for e in workload.events if e.name == "onboarding_viewed"]
    start, end = events[0], events[-1]
    candidate = start + (end - start) // 2
    while candidate < end:
        if all(abs(ts - candidate) > 5_000 for ts in events) and all(
            not (candidate - 40_000 <= d <= candidate + 5_000) for d in decisions
        ):
            return candidate
        candidate += 1_000
    raise RuntimeError("no quiet instant for the redeploy")


def redeploy_at(workload: Workload, folder: Path) -> Redeploy:
    rules = _rules_v2(folder)
    return Redeploy(_quiet_instant(workload), load_plan(str(rules)), str(rules))


def swap_functions(run: Run) -> None:
    """At the redeploy instant: new evaluator and deliverer (a cold start each), new filter criteria."""
    redeploy = run.redeploy
    assert redeploy is not None

    def act(run: Run) -> None:
        run.notes["idle_at_redeploy"] = run.esm.idle()
        run.notes["schedules_pending_at_redeploy"] = len(run.scheduler.pending())
        run.evaluator.replace(run.build_evaluator(redeploy.rules_dir))
        run.deliverer.replace(run.build_deliverer(redeploy.rules_dir))
        run.esm.settings = run.esm.settings.with_plan(redeploy.plan)

    run.hooks.append(Hook(redeploy.at_ms, act))


def waits_pending(run: Run, _m: Measurement) -> list[str]:
    problems = []
    if not run.notes.get("schedules_pending_at_redeploy"):
        problems.append("no wait was pending at the redeploy: the scenario tested nothing")
    if not run.notes.get("idle_at_redeploy", True):
        problems.append("the stream was not idle at the redeploy: the reference is ambiguous")
    return problems


# -- the catalogue -------------------------------------------------------------------------------------


def _window(start_after_min: int, minutes: int) -> Callable[[Run], tuple[int, int]]:
    return lambda run: (_start(run) + start_after_min * MINUTE, _start(run) + (start_after_min + minutes) * MINUTE)


def _state_faults(rate: float, code: str = "ProvisionedThroughputExceededException") -> tuple[Any, ...]:
    return (
        fixed(Fault("dynamodb", STATE_OPERATIONS, code, 400, rate)),
        fixed(Fault("dynamodb", ("BatchGetItem",), code, 400, rate, kind="unprocessed_keys")),
    )


def _outage(run: Run) -> Fault:
    return Fault(
        "dynamodb", (*STATE_OPERATIONS, "BatchGetItem"), "InternalServerError", 500, window=_window(60, 10)(run)
    )


def _quota(run: Run) -> Fault:
    return Fault("scheduler", ("CreateSchedule",), "ServiceQuotaExceededException", 402, window=_window(30, 120)(run))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("no fault", "none: the baseline"),
    Scenario(
        "duplicate events and timers",
        "25 % of events re-sent 1 s-10 min later (same id); Scheduler delivers 25 % of timers twice",
        extra_puts=_copies,
        scheduler_duplicates=0.25,
    ),
    Scenario(
        "duplicate invocations",
        "Lambda invokes 25 % of stream batches twice; SQS hands 25 % of firings to a second invocation",
        arm=lambda run: (setattr(run.esm, "echo_rate", 0.25), setattr(run.deliveries, "duplicate_rate", 0.25)),
    ),
    Scenario(
        "poison: 800 KiB record",
        "2 records of 800 KiB (`add_to_cart`, valid JSON) among a customer's events",
        extra_puts=_poison("800 KiB record", _oversized),
        expectation=Expectation(checks=(parked_with_reason("800 KiB record"),)),
    ),
    Scenario(
        "poison: nested 990 deep",
        "2 records whose properties nest 990 arrays deep",
        extra_puts=_poison("990 deep", _deep),
        expectation=Expectation(checks=(parked_with_reason("990 deep"),)),
    ),
    Scenario(
        "poison: forged timer",
        'unsigned `{"type":"nudge.timer",...}` records for real waits (arm guessed), put 5 min after checkout',
        extra_puts=_forged_timers,
        expectation=Expectation(checks=(parked_with_reason("forged timer"),)),
    ),
    Scenario(
        "poison: malformed",
        "2 envelopes without a UTC offset, 2 without `event`, 2 records that are not a JSON object",
        extra_puts=lambda w, rng: [
            *_poison("no offset", _no_offset)(w, rng),
            *_poison("no event", _no_event)(w, rng),
            *_poison("not a JSON object", _not_json)(w, rng),
        ],
        expectation=Expectation(
            checks=(
                parked_with_reason("no offset"),
                parked_with_reason("no event"),
                parked_with_reason("not a JSON object", filtered_ok=True),
            ),
            exception="a record that is not a JSON object never reaches the function (the mapping's filters drop it)",
        ),
    ),
    Scenario(
        "poison: partition key differs",
        "2 `purchase` records whose partition key is not their `customer_id`",
        extra_puts=_poison("partition key differs", _other_key),
        expectation=Expectation(checks=(parked_with_reason("partition key differs"),)),
    ),
    Scenario(
        "conflict: two evaluators",
        "30 % of batches also evaluated by a second instance between the first's read and its writes",
        arm=twin_evaluator(0.3),
        expectation=Expectation(checks=(conflicts_seen,)),
    ),
    Scenario(
        "DynamoDB throttling 30 %",
        "state table: ProvisionedThroughputExceededException on 30 % of attempts, 30 % of keys unprocessed",
        arm=faults_on("evaluator", *_state_faults(0.3)),
    ),
    Scenario(
        "DynamoDB throttling 80 %",
        "state table: ProvisionedThroughputExceededException on 80 % of attempts, 80 % of keys unprocessed",
        arm=faults_on("evaluator", *_state_faults(0.8)),
    ),
    Scenario(
        "DynamoDB throttling 80 %, a burst on one shard",
        "as above; 20 customers start within 72 s on a one-shard stream (a flash sale): batches of many customers",
        arm=faults_on("evaluator", *_state_faults(0.8)),
        spread_hours=0.02,
        customers=20,
        settings={"stream_mode": "provisioned", "shard_count": 1},
    ),
    Scenario(
        "DynamoDB outage 10 min",
        "state table: every call answers 500 InternalServerError for 10 minutes (from 60 min in)",
        arm=faults_on("evaluator", _outage),
    ),
    Scenario(
        "DynamoDB 5xx after the write",
        "state table: 30 % of PutItem/DeleteItem executed, then answered 500 (answer lost)",
        arm=faults_on(
            "evaluator", fixed(Fault("dynamodb", ("PutItem", "DeleteItem"), "InternalServerError", 500, 0.3, True))
        ),
    ),
    Scenario(
        "Scheduler throttling 30 %",
        "Create/Update/DeleteSchedule: ThrottlingException (429) on 30 % of attempts",
        arm=faults_on("evaluator", fixed(Fault("scheduler", SCHEDULE_OPERATIONS, "ThrottlingException", 429, 0.3))),
    ),
    Scenario(
        "Scheduler quota 2 h",
        "CreateSchedule: ServiceQuotaExceededException (402) for 2 hours (from 30 min in)",
        arm=faults_on("evaluator", _quota),
    ),
    Scenario(
        "SQS partial batch failures",
        "SendMessageBatch: 30 % of entries returned under `Failed` (not sent)",
        arm=faults_on(
            "evaluator", fixed(Fault("sqs", ("SendMessageBatch",), "InternalError", 500, 0.3, kind="failed_entries"))
        ),
    ),
    Scenario(
        "SQS 5xx after sending",
        "SendMessageBatch: 30 % executed, then answered 500 InternalFailure (answer lost)",
        arm=faults_on("evaluator", fixed(Fault("sqs", ("SendMessageBatch",), "InternalFailure", 500, 0.3, True))),
    ),
    *(
        Scenario(
            f"evaluator dies {boundary}",
            f"`ProcessDeath` {boundary} on the first pass of 30 % of calls",
            arm=evaluator_crash(boundary),
        )
        for boundary in ("after timers applied", "after firings queued", "after the state write", "before the response")
    ),
    Scenario(
        "delivery dies after the claim",
        "`ProcessDeath` after a won claim, before anything else, for 30 % of firings",
        arm=delivery_crash("after the claim"),
    ),
    Scenario(
        "delivery dies just before the provider call",
        "`ProcessDeath` in the email channel before `SendEmail`, for 30 % of firings",
        arm=delivery_crash("just before the provider call"),
        expectation=Expectation(
            parked_bound=parked_per_death("just before the provider call"),
            exception="parked as outcome unknown when it died after marking `sending`: a person decides",
        ),
    ),
    Scenario(
        "delivery dies after the provider call",
        "`ProcessDeath` after SES accepted the email, before the outcome is recorded, for 30 % of firings",
        arm=delivery_crash("after the provider call"),
        expectation=Expectation(
            parked_bound=parked_per_death("after the provider call"),
            exception="parked as outcome unknown (it was sent once): never sent again automatically",
        ),
    ),
    Scenario(
        "delivery dies before the ack",
        "`ProcessDeath` after the handler returned (outcome recorded), before SQS deletes, 30 % of batches",
        arm=delivery_crash("after recording, before the ack"),
    ),
    Scenario(
        "SES throttling 30 %",
        "SendEmail: TooManyRequestsException (429) on 30 % of attempts (not sent)",
        arm=faults_on("delivery", fixed(Fault("sesv2", ("SendEmail",), "TooManyRequestsException", 429, 0.3))),
        expectation=Expectation(
            parked_bound=parked_per_injected("TooManyRequests", lambda run: run.stack.settings.max_delivery_attempts),
            exception="a firing throttled on every one of its `max_delivery_attempts` is parked with the reason",
        ),
    ),
    Scenario(
        "SES 5xx after accepting",
        "SendEmail: 30 % executed (SES accepted the email), then answered 500 InternalFailure",
        arm=faults_on("delivery", fixed(Fault("sesv2", ("SendEmail",), "InternalFailure", 500, 0.3, True))),
        expectation=Expectation(
            parked_bound=parked_per_injected("InternalFailure"),
            exception="parked as outcome unknown (it was sent once), at most one per 5xx",
        ),
    ),
    Scenario(
        "activations table throttling 30 %",
        "activations table: ProvisionedThroughputExceededException on 30 % of attempts",
        arm=faults_on(
            "delivery",
            fixed(Fault("dynamodb", ACTIVATION_OPERATIONS, "ProvisionedThroughputExceededException", 400, 0.3)),
        ),
        expectation=Expectation(
            parked_bound=parked_per_injected("ProvisionedThroughput", lambda run: _client_attempts(run, "dynamodb")),
            exception="a send whose outcome could not be recorded after every retry is parked with the reason",
        ),
    ),
    Scenario(
        "redeploy with waits pending",
        "mid-run, rules redeployed: cart `wait` 1h -> 45m, yoga `within` 7d -> 2h, trial gains `key: plan`",
        arm=swap_functions,
        redeploy=redeploy_at,
        expectation=Expectation(checks=(waits_pending,)),
    ),
)
"""Every scenario, in the order of the report's table."""

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
