"""One benchmark, from workload to report: both designs, the same workload, the same invocation.

Order of work: generate the workload; run Nudge's batched loop in memory over all of it, keeping a
snapshot where the moto slice begins (the last ``evaluator_events`` events); run the per-event loop
in memory over all of it; measure state sizes and the cost of events no rule references; run both
designs on moto over the slice, seeded from the snapshot; time cold starts in fresh interpreters;
price the counted usage. ``--scaling`` repeats this for other sizes and rule counts.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..contracts import MESSAGE_CHANNELS, Event, Timer
from ..engine import Engine, Yaml12Loader, compile_rules, load_ruleset_or_raise
from ..evaluator.collector import tuned_collector
from ..settings import StackSettings
from . import report
from .aws import Seed, moto_stack, run_design
from .engine_run import EngineRun, run_batched, run_per_event, unreferenced_cost_us
from .feedback import CLICK_RATES, OPEN_RATES, feedback_for
from .measure import EVALUATOR_COLD_START, cold_start_ms, state_sizes
from .prices import cost_per_million, load_prices
from .stream import Batcher, TimerQueue
from .variants import generate_rules
from .workload import WorkloadSpec, generate, record_bytes

Progress = Callable[[str], None]


_BASELINE_COLD_START = """
import time
started = time.perf_counter()
import boto3
import nudge.bench.baseline
from nudge.engine import Engine, load_plan
Engine(load_plan({rules!r}))
print((time.perf_counter() - started) * 1000)
"""


@dataclass(frozen=True)
class BenchOptions:
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    rules_dir: str = "rules"
    rule_count: int | None = None
    """Generate this many variants of the rules in ``rules_dir`` instead of using them as they are."""
    rule_variants: str = "narrowed"
    evaluator_events: int = 20_000
    batch_size: int = 500
    cold_start_runs: int = 5
    stream_events_per_s: float | None = None
    memory_mb: int | None = None
    guardrails: bool = True
    """False: the policy's frequency caps and quiet hours are left out (``--without-guardrails``), so
    that two runs say what they cost. Consent stays: it is the law, not an option."""
    engine_runs: int = 3
    """How many times Nudge's in-memory loop runs over the whole workload: the engine's figure is the
    median, with every run's beside it (the host is shared, and one run's time says little)."""


def _event_time(event: Event) -> int:
    return event.ts


def _quiet(_: str) -> None:
    return None


def run_bench(options: BenchOptions, progress: Progress = _quiet) -> dict[str, Any]:
    """Every metric for both designs, as the document ``report.document`` builds."""
    with tempfile.TemporaryDirectory(prefix="nudge-bench-rules-") as scratch:
        rules_dir = str(Path(options.rules_dir).resolve())
        if options.rule_count is not None:
            rules_dir = str(generate_rules(rules_dir, options.rule_count, Path(scratch), options.rule_variants))
        if not options.guardrails:
            rules_dir = str(without_guardrails(Path(rules_dir), Path(scratch) / "without-guardrails"))
        return _run(options, rules_dir, progress)


def without_guardrails(rules_dir: Path, target: Path) -> Path:
    """A copy of ``rules_dir`` whose ``policy.yaml`` has no frequency caps and no quiet hours."""
    shutil.copytree(rules_dir, target)
    policy = target / "policy.yaml"
    if policy.exists():
        data = yaml.load(policy.read_text(encoding="utf-8"), Loader=Yaml12Loader) or {}
        settings = data.get("policy", data) if isinstance(data, dict) else {}
        kept = {name: value for name, value in settings.items() if name not in ("frequency_caps", "quiet_hours")}
        policy.write_text(yaml.safe_dump(kept, sort_keys=False), encoding="utf-8")
    return target


def _run(options: BenchOptions, rules_dir: str, progress: Progress) -> dict[str, Any]:
    started = time.perf_counter()
    prices = load_prices()
    settings = StackSettings()
    memory_mb = options.memory_mb or settings.evaluator_memory_mb
    throughput = options.stream_events_per_s or prices["assumptions"]["stream_events_per_second"]
    ruleset = load_ruleset_or_raise(rules_dir)
    rules = [rule for rule in ruleset.rules if rule.enabled]
    plan = compile_rules(rules, ruleset.policy)

    progress(f"generating {options.workload.events:,} events over {options.workload.customers:,} customers")
    workload = generate(options.workload)
    events = workload.events
    # The evaluator's collector settings (nudge.evaluator.collector); the workload, which is
    # input and not the evaluator's memory, is frozen with the rest of what exists now.
    with tuned_collector():
        cut = max(0, len(events) - options.evaluator_events)

        progress("Nudge's batched loop in memory")
        engine = Engine(plan)
        batcher: Batcher[Timer] = Batcher(TimerQueue(), options.batch_size)
        nudge_run = run_batched(engine, batcher, events[:cut], EngineRun())
        seed = Seed(clock=batcher.clock or 0, states=dict(nudge_run.states), timers=batcher.timers.pending())
        run_batched(engine, batcher, events[cut:], nudge_run)

        runs = [nudge_run.events_per_s]
        for attempt in range(2, options.engine_runs + 1):
            progress(f"Nudge's batched loop in memory, run {attempt} of {options.engine_runs}")
            again, again_batcher = Engine(plan), Batcher[Timer](TimerQueue(), options.batch_size)
            repeat = run_batched(again, again_batcher, events[:cut], EngineRun())
            runs.append(run_batched(again, again_batcher, events[cut:], repeat).events_per_s)
        nudge_run.seconds = nudge_run.events / statistics.median(runs) if nudge_run.events else 0.0

        progress("the per-event loop in memory")
        # The same batches as Nudge's loop (cut at the same record): a timer set in a batch is created
        # when the batch is processed, so where batches end decides which timers come before the input does.
        baseline_engine, baseline_batcher = Engine(plan), Batcher[Timer](TimerQueue(), options.batch_size)
        baseline_run = run_per_event(baseline_engine, baseline_batcher, events[:cut], EngineRun())
        run_per_event(baseline_engine, baseline_batcher, events[cut:], baseline_run)

        progress("state sizes and events no rule references")
        nudge_states = state_sizes(nudge_run.states.values())
        baseline_states = state_sizes(baseline_run.states.values())
        nudge_unreferenced = unreferenced_cost_us(engine, events, nudge_run.states, per_event=False)
        baseline_unreferenced = unreferenced_cost_us(engine, events, baseline_run.states, per_event=True)

        slice_events = events[cut:]
        # What the channels report about the run's sends (bench/feedback.py): stream traffic too.
        start, end = (slice_events[0].ts, slice_events[-1].ts) if slice_events else (0, -1)
        reports = feedback_for(nudge_run.sent, start, end)
        seed.sent = [firing.firing_id for firing in nudge_run.sent if firing.channel in MESSAGE_CHANNELS]
        streamed = sorted([*slice_events, *reports], key=_event_time)
        payloads = {id(event): record_bytes(event) for event in streamed}
        with moto_stack(rules_dir) as stack:
            progress(f"Nudge's evaluator on moto: the last {len(slice_events):,} events, {len(reports):,} reports")
            nudge_aws = run_design(
                stack, "nudge", streamed, payloads, seed, plan, prices, memory_mb, feedback=len(reports)
            )
            progress(f"the per-event design on moto over the same {len(streamed):,} records")
            baseline_aws = run_design(
                stack, "baseline", streamed, payloads, seed, plan, prices, memory_mb, feedback=len(reports)
            )

    progress(f"cold starts ({options.cold_start_runs} fresh interpreters each)")
    nudge_cold = cold_start_ms(EVALUATOR_COLD_START.format(rules=rules_dir), options.cold_start_runs)
    baseline_cold = cold_start_ms(_BASELINE_COLD_START.format(rules=rules_dir), options.cold_start_runs)

    nudge = report.design_metrics(
        nudge_run,
        nudge_aws,
        nudge_states,
        nudge_unreferenced,
        nudge_cold,
        cost_per_million(nudge_aws.usage, prices, memory_mb, throughput, settings.stream_retention_hours),
    )
    baseline = report.design_metrics(
        baseline_run,
        baseline_aws,
        baseline_states,
        baseline_unreferenced,
        baseline_cold,
        cost_per_million(baseline_aws.usage, prices, memory_mb, throughput, settings.stream_retention_hours),
    )
    setup = {
        "rules": len(plan.rules),
        "rules_dir": rules_dir if options.rule_count is None else f"{options.rule_count} {options.rule_variants}",
        "guardrails": plan.quiet is not None or any(rule.caps for rule in plan.rules),
        "batch_size": options.batch_size,
        "evaluator_events": len(slice_events),
        "feedback_events": len(reports),
        "feedback_rates": {"opened": OPEN_RATES, "clicked": CLICK_RATES},
        "referenced_share": round(sum(1 for e in events if engine.needs(e)) / max(1, len(events)), 4),
        "lambda_memory_mb": memory_mb,
        "stream_events_per_s": throughput,
        "stream_retention_hours": settings.stream_retention_hours,
        "prices_as_of": prices["as_of"],
        "region": prices["region"],
    }
    nudge["engine_events_per_s_runs"] = sorted(round(rate) for rate in runs)
    document = report.document({**workload.summary(), **setup}, nudge, baseline)
    document["seconds"] = round(time.perf_counter() - started, 1)
    return document


def run_scaling(
    options: BenchOptions, base: dict[str, Any] | None, progress: Progress = _quiet
) -> list[dict[str, Any]]:
    """The same figures at 10k, 100k and 1M events (example rules) and with 10, 50 and 200 rules."""
    rows: list[dict[str, Any]] = []
    for size in (10_000, 100_000, 1_000_000):
        spec = replace(options.workload, events=size, customers=max(1, size // 10))
        if base is not None and spec == options.workload and options.rule_count is None:
            document = base
        else:
            progress(f"scaling: {size:,} events, the example rules")
            document = run_bench(replace(options, workload=spec, rule_count=None), progress)
        rows.append(report.scaling_row(document, events=size, rules=document["workload"]["rules"]))
    for count in (10, 50, 200):
        progress(f"scaling: {options.workload.events:,} events, {count} rules ({options.rule_variants})")
        document = run_bench(replace(options, rule_count=count), progress)
        rows.append(report.scaling_row(document, events=options.workload.events, rules=count))
    return rows
