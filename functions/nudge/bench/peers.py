"""``nudge bench --peers``: Nudge against what a team would pick instead, on one event file and two rules.

The systems, each reading the same JSON-lines file and deciding the same two rules
(``peer_rules/``: the cart reminder, 1 h wait unless a purchase; the yoga mat then the blocks within
7 days), their firings checked equal:

- **Nudge, end to end**: ``nudge replay``'s path, each line parsed into an envelope (pydantic) and
  fed to the ``Replayer``.
- **Nudge's engine alone**: the events decoded beforehand, the bench's batched loop (states decoded
  and encoded per batch, as the evaluator reads and writes DynamoDB): what ``nudge bench`` reports.
- **A hand-written loop**: ``TwoRules``, the fifty lines a team would write for exactly these two
  rules, fed by ``json.loads``.
- **Bytewax** (``nudge[bench]``), one worker: the same file through ``FileSource``, keyed by customer,
  ``TwoRules`` inside ``op.stateful``. Bytewax's own timers run on the system clock, so a wait is
  decided by event time as the hand-written loop decides it: when the customer's next event is past
  its decision time, or at the end of the input.

The file is the bench's workload without its late events: what a system does with an event later
than its allowed lateness is where their semantics part (Nudge judges it at its own time; the
hand-written loop and the Bytewax flow would not), so only in-order input is comparable.
Duplicates stay in (each system drops a repeated id). Each system runs ``runs`` times; the table
has the median events per second and the spread.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..engine import Engine, Replayer, load_plan
from ..evaluator.collector import tuned_collector
from .engine_run import EngineRun, drain, run_batched
from .measure import state_sizes
from .stream import Batcher, TimerQueue
from .workload import YOGA_BLOCKS, YOGA_MAT, WorkloadSpec, generate, record_bytes

PEER_RULES = Path(__file__).parent / "peer_rules"
HOUR, DAY = 3_600_000, 86_400_000
LATENESS = 2 * 60_000
CART, X_THEN_Y = "cart_abandonment", "product_x_then_y"

Fired = tuple[str, str, int, int]
"""(rule, customer, armed at, fired at): what each system must agree on."""


class TwoRules:
    """The two rules for one customer, by hand: what a team writes when these are all it needs.

    The cart: a checkout with an add to cart in the hour before it arms a 1 h wait; a later arming
    inside the wait restarts it; a purchase inside it cancels it; it is decided once its due time
    plus the allowed lateness has passed. The yoga pair: a view of the blocks with a view of the mat
    in the 7 days before it fires at once. Events are ordered by (time, id), as Nudge orders them.
    """

    __slots__ = ("adds", "last_cart", "last_pair", "mats", "seen", "waits")

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.adds: deque[tuple[int, str]] = deque()
        self.mats: deque[tuple[int, str]] = deque()
        self.waits: list[list[int]] = []  # [armed, due], oldest first
        self.last_cart = self.last_pair = -1

    def on_event(self, customer: str, name: str, ts: int, event_id: str, sku: Any, out: list[Fired]) -> None:
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        self.settle(customer, ts, out)
        if name == "purchase":
            self.waits = [w for w in self.waits if not w[0] <= ts <= w[1]]
        elif name == "add_to_cart":
            self.adds.append((ts, event_id))
        elif name == "checkout_viewed":
            while self.adds and self.adds[0][0] < ts - HOUR:
                self.adds.popleft()
            if ts > self.last_cart and any(add < (ts, event_id) for add in self.adds):
                self.last_cart = ts
                self.waits = [w for w in self.waits if not w[0] < ts <= w[1]]  # restarted
                self.waits.append([ts, ts + HOUR])
        elif name == "product_viewed":
            if sku == YOGA_MAT:
                self.mats.append((ts, event_id))
            elif sku == YOGA_BLOCKS:
                while self.mats and self.mats[0][0] < ts - 7 * DAY:
                    self.mats.popleft()
                if ts > self.last_pair and any(mat < (ts, event_id) for mat in self.mats):
                    self.last_pair = ts
                    out.append((X_THEN_Y, customer, ts, ts))

    def settle(self, customer: str, now: int | None, out: list[Fired]) -> None:
        """Fire the waits decided before ``now`` (all of them at the end of the input: ``None``)."""
        while self.waits and (now is None or self.waits[0][1] + LATENESS < now):
            armed, due = self.waits.pop(0)
            out.append((CART, customer, armed, due))


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def hand_written(path: Path) -> list[Fired]:
    """The hand-written loop over the file: ``json.loads`` per line, a dict of ``TwoRules``."""
    customers: dict[str, TwoRules] = {}
    out: list[Fired] = []
    with path.open("rb") as lines:
        for line in lines:
            e = json.loads(line)
            customer = e["customer_id"]
            rules = customers.get(customer)
            if rules is None:
                rules = customers[customer] = TwoRules()
            rules.on_event(customer, e["event"], _ms(e["timestamp"]), e["event_id"], e["properties"].get("sku"), out)
    for customer, rules in customers.items():
        rules.settle(customer, None, out)
    return out


def bytewax_flow(path: Path) -> list[Fired]:
    """The same rules as a Bytewax dataflow (one worker): file source, keyed by customer, stateful."""
    from bytewax import operators as op  # noqa: PLC0415 - an optional extra
    from bytewax.connectors.files import FileSource  # noqa: PLC0415
    from bytewax.dataflow import Dataflow  # noqa: PLC0415
    from bytewax.testing import TestingSink, run_main  # noqa: PLC0415

    class Logic(op.StatefulLogic[dict[str, Any], Fired, None]):
        def __init__(self) -> None:
            self.rules = TwoRules()
            self.customer = ""

        def on_item(self, value: dict[str, Any]) -> tuple[list[Fired], bool]:
            out: list[Fired] = []
            self.customer = value["customer_id"]
            ts = _ms(value["timestamp"])
            self.rules.on_event(
                self.customer, value["event"], ts, value["event_id"], value["properties"].get("sku"), out
            )
            return out, op.StatefulLogic.RETAIN

        def on_eof(self) -> tuple[list[Fired], bool]:
            out: list[Fired] = []
            self.rules.settle(self.customer, None, out)
            return out, op.StatefulLogic.DISCARD

        def snapshot(self) -> None:
            return None  # no recovery configured: nothing is ever restored

    fired: list[tuple[str, Fired]] = []
    flow = Dataflow("nudge_peers")
    lines = op.input("lines", flow, FileSource(path))
    events = op.map("parse", lines, json.loads)
    keyed = op.key_on("customer", events, lambda e: e["customer_id"])
    decided = op.stateful("rules", keyed, lambda _resumed: Logic())
    op.output("fired", decided, TestingSink(fired))
    run_main(flow)
    return [item for _, item in fired]


def nudge_end_to_end(path: Path, rules: Path = PEER_RULES) -> list[Fired]:
    """``nudge replay``'s path: each line parsed into an envelope, the Replayer over them."""
    from ..cli.replay_command import read_lines  # noqa: PLC0415
    from ..contracts import Event, Firing  # noqa: PLC0415
    from ..evaluator.source_filters import passing_names  # noqa: PLC0415

    plan = load_plan(rules)
    replayer = Replayer(plan)
    firings: list[Firing] = []
    bad = [0]
    with path.open("rb") as lines:
        for _, event in read_lines(lines, str(path), _Silent(), bad, None, passing_names(plan)):
            firings += replayer.feed(event) if isinstance(event, Event) else replayer.tick(event)
    firings += replayer.finish()
    return [(f.rule, f.customer_id, f.armed_at, f.fired_at) for f in firings]


class _Silent:
    def write(self, _: str) -> int:
        return 0


@dataclass
class SystemRun:
    name: str
    seconds: list[float] = field(default_factory=list)
    fired: int = 0
    agrees: bool = True
    note: str = ""

    def median_rate(self, events: int) -> float:
        return events / statistics.median(self.seconds) if self.seconds else 0.0

    def spread(self, events: int) -> tuple[float, float]:
        return (events / max(self.seconds), events / min(self.seconds)) if self.seconds else (0.0, 0.0)


def _timed(run: Callable[[], list[Fired]]) -> tuple[float, list[Fired]]:
    """One run, under the collector settings the evaluator runs with, for every system alike: what
    exists before (the workload the engine-only run reads) is frozen, and the young generation is
    20,000 objects. Without it, each system's collections would walk the million input events."""
    with tuned_collector():
        started = time.perf_counter()
        fired = run()
        return time.perf_counter() - started, fired


def peer_workload(spec: WorkloadSpec) -> list[Any]:
    """The bench's workload, in order: its late events left out (see the module's docstring)."""
    return generate(replace(spec, late_share=0.0)).events


def write_file(events: Iterable[Any], path: Path) -> int:
    count = 0
    with path.open("wb") as out:
        for event in events:
            out.write(record_bytes(event) + b"\n")
            count += 1
    return count


def run_engine(events: list[Any], rules: Path = PEER_RULES) -> EngineRun:
    """The bench loop over the events under ``rules``, drained to the end: "the engine alone"."""
    engine = Engine(load_plan(rules))
    batcher: Batcher[Any] = Batcher(TimerQueue(), 500)
    return drain(run_batched, engine, batcher, run_batched(engine, batcher, events, EngineRun()))


def engine_alone(
    events: list[Any], rules: Path = PEER_RULES, done: list[EngineRun] | None = None
) -> Callable[[], list[Fired]]:
    """``run_engine`` as a system of the comparison; each run is added to ``done`` when given."""

    def run() -> list[Fired]:
        finished = run_engine(events, rules)
        if done is not None:
            done.append(finished)
        return [(f.rule, f.customer_id, f.armed_at, f.fired_at) for f in finished.sent]

    return run


def _replay_against_engine(
    path: Path, events: list[Any], rules: Path, runs: int, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    """``nudge replay`` over the file against the engine alone, with ``rules`` (the shipped ones): #17's
    "replay at 70 % of the engine" on the same file, their firings checked equal."""
    rates: dict[str, list[float]] = {"replay": [], "engine": []}
    found: dict[str, set[Fired]] = {}
    done: list[EngineRun] = []
    systems: list[tuple[str, Callable[[], list[Fired]]]] = [
        ("replay", lambda: nudge_end_to_end(path, rules)),
        ("engine", engine_alone(events, rules, done)),
    ]
    for name, run in systems:
        for attempt in range(runs):
            if progress is not None:
                progress(f"{name} with {rules}: run {attempt + 1} of {runs}")
            seconds, fired = _timed(run)
            rates[name].append(len(events) / seconds)
            found[name] = set(fired)
    replay, engine = statistics.median(rates["replay"]), statistics.median(rates["engine"])
    return {
        "rules": str(rules),
        "replay_events_per_s": round(replay),
        "engine_events_per_s": round(engine),
        "ratio": round(replay / engine, 2),
        "firings": len(found["replay"]),
        "same_firings": found["replay"] == found["engine"],
        "state_p99": state_sizes(done[-1].states.values())["p99"],  # the states the engine's last run wrote
    }


def compare(
    path: Path,
    events: list[Any],
    runs: int = 3,
    progress: Callable[[str], None] | None = None,
    rules: Path | None = None,
    targets: bool = True,
) -> dict[str, Any]:
    """Every system ``runs`` times over the file; the firings of each checked against Nudge's.

    With ``rules``, also ``nudge replay`` against the engine alone under those rules (the shipped
    ones), and with ``targets`` every other figure #17 sets a target for (``targets.py``).
    """
    systems: list[tuple[str, Callable[[], list[Fired]]]] = [
        ("Nudge, end to end (parse + engine, replay's path)", lambda: nudge_end_to_end(path)),
        ("Nudge's engine alone, events decoded before (the bench loop)", engine_alone(events)),
        ("a hand-written Python loop for the two rules", lambda: hand_written(path)),
    ]
    try:
        import bytewax  # noqa: F401, PLC0415
    except ImportError:
        missing = "Bytewax is not installed (pip install 'nudge[bench]'; wheels up to CPython 3.12)"
    else:
        missing = ""
        systems.append(("Bytewax 0.21, op.stateful, one worker", lambda: bytewax_flow(path)))
    results: list[SystemRun] = []
    reference: set[Fired] | None = None
    for name, run in systems:
        result = SystemRun(name)
        for attempt in range(runs):
            if progress is not None:
                progress(f"{name}: run {attempt + 1} of {runs}")
            seconds, fired = _timed(run)
            result.seconds.append(seconds)
            found = set(fired)
            if reference is None:
                reference = found
            result.fired = len(fired)
            result.agrees = result.agrees and found == reference and len(fired) == len(found)
        results.append(result)
    count = len(events)
    nudge = results[0].median_rate(count)
    shipped = _replay_against_engine(path, events, rules, runs, progress) if rules is not None else None
    document = {
        "replay_vs_engine": shipped,
        "events": count,
        "runs": runs,
        "firings": len(reference or ()),
        "all_agree": all(r.agrees for r in results) and (shipped is None or shipped["same_firings"]),
        "bytewax": missing or "included",
        "systems": [
            {
                "system": r.name,
                "events_per_s": round(r.median_rate(count)),
                "spread": [round(x) for x in r.spread(count)],
                "vs_nudge": round(r.median_rate(count) / nudge, 2) if nudge else 0.0,
                "firings": r.fired,
                "same_firings": r.agrees,
            }
            for r in results
        ],
    }
    if rules is not None and targets:
        from .measure import EVALUATOR_COLD_START  # noqa: PLC0415
        from .targets import measure_targets  # noqa: PLC0415

        document["targets"] = measure_targets(document, events, rules, runs, _timed, progress, EVALUATOR_COLD_START)
    return document


def print_table(document: dict[str, Any], out: Any) -> None:
    out.write(
        f"{document['events']:,} events, {document['firings']:,} firings, median of {document['runs']} runs "
        f"(spread: slowest to fastest run)\n\n"
    )
    out.write(f"{'system, reading the same event file':<64} {'events/s':>10} {'spread':>17} {'vs Nudge':>9}  firings\n")
    for row in document["systems"]:
        low, high = row["spread"]
        same = "same" if row["same_firings"] else "DIFFERENT"
        spread = f"{low:,}-{high:,}"
        out.write(f"{row['system']:<64} {row['events_per_s']:>10,} {spread:>17} {row['vs_nudge']:>9.2f}  {same}\n")
    if document["bytewax"] != "included":
        out.write(f"\n{document['bytewax']}\n")
    shipped = document.get("replay_vs_engine")
    if shipped:
        same = "same firings" if shipped["same_firings"] else "DIFFERENT firings"
        out.write(
            f"\nwith {shipped['rules']}: nudge replay from the file {shipped['replay_events_per_s']:,} events/s, "
            f"the engine alone {shipped['engine_events_per_s']:,}: {shipped['ratio']:.0%} "
            f"({shipped['firings']:,} firings, {same})\n"
        )
    if document.get("targets"):
        from .targets import print_targets  # noqa: PLC0415

        print_targets(document["targets"], out)
