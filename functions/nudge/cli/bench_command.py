"""``nudge bench``: Nudge's speed and cost, measured against the per-event design in the same run.

The work lives in ``nudge.bench``; it is imported when the command runs, so that other commands
do not pay for moto and boto3 at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..bench.workload import WorkloadSpec
from ..engine import RuleLoadError

DEFAULT_EVENTS = 1_000_000
DEFAULT_CUSTOMERS = 100_000


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="measure throughput, AWS requests, state size, cold start and cost against the per-event design",
        description=(
            "Generate a seeded synthetic workload (Zipf customers, shopping sessions), run Nudge's evaluator "
            "and the per-event design (read, evaluate, write, schedule, send for every event) over it, in "
            "memory and against moto, and print both designs' figures and their ratios."
        ),
    )
    parser.add_argument("--rules", default="rules", type=Path, help="rule folder (default: rules)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="workload size (default: 1,000,000)")
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, help="customers (default: 100,000)")
    parser.add_argument("--seed", type=int, default=None, help="workload seed (default: fixed)")
    parser.add_argument("--zipf", type=float, default=None, help="Zipf exponent of sessions per customer (0.8)")
    parser.add_argument("--days", type=float, default=None, help="time span of the workload in days (7)")
    parser.add_argument(
        "--heavy",
        type=int,
        default=0,
        metavar="N",
        help="the N busiest customers send ten times their share of the sessions (for --history)",
    )
    parser.add_argument(
        "--evaluator-events",
        type=int,
        default=20_000,
        help="events run against moto, the end of the workload (default: 20,000; moto is slow)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="records per Lambda batch (default: 500)")
    parser.add_argument("--cold-start-runs", type=int, default=5, help="fresh interpreters per cold start (5)")
    parser.add_argument(
        "--engine-runs", type=int, default=3, help="runs of Nudge's in-memory loop; its figure is their median (3)"
    )
    parser.add_argument(
        "--throughput", type=float, default=None, help="events/s the stream-hour charge is spread over (1000)"
    )
    parser.add_argument("--scaling", action="store_true", help="also 10k/100k/1M events and 10/50/200 rules")
    parser.add_argument(
        "--rule-variants",
        choices=("narrowed", "copies"),
        default="narrowed",
        help="how --scaling generates rules: each aimed at its own segment (default) or identical copies",
    )
    parser.add_argument(
        "--without-guardrails",
        action="store_true",
        help="run the rules without the policy's frequency caps and quiet hours: what the guardrails cost",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help=(
            "instead: Nudge end to end and engine-only against a hand-written loop and Bytewax (nudge[bench]) on "
            "two rules, one event file, firings checked equal; medians of --runs runs"
        ),
    )
    parser.add_argument("--runs", type=int, default=3, help="--peers: runs of each system (default: 3)")
    parser.add_argument(
        "--history",
        action="store_true",
        help="instead: the engine's time for one event against how many events its customer has stored",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(run=run)


def run_history(args: argparse.Namespace, progress: Any) -> int:
    """``--history``: per-event engine time by the customer's stored events, over the workload."""
    from ..bench.history import history_cost, print_history  # noqa: PLC0415
    from ..bench.workload import generate  # noqa: PLC0415
    from ..engine import load_plan  # noqa: PLC0415

    spec = _options(args).workload
    progress(f"generating {spec.events:,} events over {spec.customers:,} customers")
    events = generate(spec).events
    progress("timing each event the rules read, three times, against its customer's history")
    try:
        rows = history_cost(load_plan(args.rules), events)
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        json.dump({"events": len(events), "buckets": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_history(rows, sys.stdout)
    return 0


def run_peers(args: argparse.Namespace, progress: Any) -> int:
    """``--peers``: the workload (its late events out) to a file, then every system over it."""
    import tempfile  # noqa: PLC0415

    from ..bench import peers  # noqa: PLC0415

    spec = _options(args).workload
    progress(f"generating {spec.events:,} events over {spec.customers:,} customers (in order)")
    events = peers.peer_workload(spec)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        peers.write_file(events, path)
        document = peers.compare(path, events, max(1, args.runs), progress, rules=args.rules)
    if args.json:
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        peers.print_table(document, sys.stdout)
    if not document["all_agree"]:
        print("the systems' firings differ: the comparison does not hold", file=sys.stderr)
        return 1
    return 0


def _options(args: argparse.Namespace) -> Any:
    from ..bench.runner import BenchOptions  # noqa: PLC0415 - imports moto: only when benchmarking

    spec = replace(WorkloadSpec(), events=args.events, customers=args.customers)
    if args.seed is not None:
        spec = replace(spec, seed=args.seed)
    if args.zipf is not None:
        spec = replace(spec, zipf_s=args.zipf)
    if args.days is not None:
        spec = replace(spec, days=args.days)
    if args.heavy:
        spec = replace(spec, heavy_customers=args.heavy)
    return BenchOptions(
        workload=spec,
        rules_dir=str(args.rules),
        rule_variants=args.rule_variants,
        evaluator_events=args.evaluator_events,
        batch_size=args.batch_size,
        cold_start_runs=args.cold_start_runs,
        stream_events_per_s=args.throughput,
        guardrails=not args.without_guardrails,
        engine_runs=max(1, args.engine_runs),
    )


def run(args: argparse.Namespace) -> int:
    from ..bench import report  # noqa: PLC0415 - imports moto: only when benchmarking
    from ..bench.runner import run_bench, run_scaling  # noqa: PLC0415

    if args.events < 1 or args.customers < 1 or args.evaluator_events < 1 or args.batch_size < 1:
        print("--events, --customers, --evaluator-events and --batch-size must be positive", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.peers:
        return run_peers(args, progress)
    if args.history:
        return run_history(args, progress)
    options = _options(args)
    try:
        document = run_bench(options, progress)
        if args.scaling:
            rows = run_scaling(options, document, progress)
            checks = report.scaling_targets(rows)
            document["scaling"] = rows
            document["targets"] = [*document["targets"], *checks]
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    report.print_document(document, sys.stdout)
    if args.scaling:
        report.print_scaling(document["scaling"], report.scaling_targets(document["scaling"]), sys.stdout)
    sys.stdout.write(f"{document['seconds']:,.0f} s\n")
    return 0
