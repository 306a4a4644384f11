"""The benchmark's output: one JSON document (``--json``) or tables, with ratios and targets.

The document is ``{"workload": {...}, "nudge": {metrics}, "baseline": {the same metrics},
"ratios": {metric: nudge/baseline}, "targets": [...]}``; nested metrics (``state_bytes``,
``batch_latency_ms``) have their ratios under dotted names (``state_bytes.p99``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .aws import DesignRun
from .engine_run import EngineRun
from .measure import percentile

RATIO_METRICS = (
    "engine_events_per_s",
    "evaluator_events_per_s",
    "batch_latency_ms.p50",
    "batch_latency_ms.p99",
    "aws_requests_per_event",
    "dynamodb_read_units_per_event",
    "dynamodb_write_units_per_event",
    "state_bytes.p50",
    "state_bytes.p99",
    "state_bytes.max",
    "unreferenced_event_us",
    "cold_start_ms",
    "usd_per_million_events",
)

# (metric, whose value: "nudge" or "ratio", comparison, bound, description)
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("engine_events_per_s", "nudge", ">=", 100_000, "engine >= 100,000 events/s on one core"),
    ("aws_requests_per_event", "ratio", "<=", 0.25, "AWS requests per event <= 0.25 x per-event design"),
    ("dynamodb_write_units_per_event", "ratio", "<=", 0.30, "DynamoDB write units per event <= 0.3 x per-event"),
    ("state_bytes.p99", "nudge", "<=", 4096, "state p99 <= 4 KiB per customer"),
    ("cold_start_ms", "nudge", "<=", 500, "cold start <= 500 ms"),
    ("usd_per_million_events", "nudge", "<=", 0.50, "<= $0.50 per million events (before sending)"),
)


def design_metrics(
    engine: EngineRun,
    aws: DesignRun,
    states: Mapping[str, float],
    unreferenced_us: float,
    cold: Mapping[str, Any],
    cost: Mapping[str, Any],
) -> dict[str, Any]:
    """One design's metrics, under the names the issue uses."""
    events = max(1, aws.usage.events)
    operations = {
        name: {
            "requests": count.requests,
            "per_event": round(count.requests / events, 5),
            "read_units": round(count.read_units, 1),
            "write_units": round(count.write_units, 1),
            "errors": count.errors,
        }
        for name, count in sorted(aws.operations.items())
    }
    requests = sum(count.requests for count in aws.operations.values())
    return {
        "engine_events_per_s": round(engine.events_per_s),
        "engine": {
            "events": engine.events,
            "records": engine.records,
            "batches": engine.batches,
            "evaluated": engine.evaluated,
            "state_decodes": engine.decodes,
            "state_encodes": engine.encodes,
            "firings": engine.firings,
            "seconds": round(engine.seconds, 2),
        },
        "evaluator_events_per_s": round(aws.events / aws.seconds) if aws.seconds else 0,
        "evaluator": {
            "events": aws.events,
            "records": aws.records,
            "batches": aws.batches,
            "failed_batches": aws.failed_batches,
            "firings": aws.firings,
            "timers_fired": aws.usage.scheduler_invocations,
            "seconds": round(aws.seconds, 2),
            "against": "moto in-process",
        },
        "batch_latency_ms": {
            "p50": round(percentile(aws.batch_ms, 0.50), 1),
            "p99": round(percentile(aws.batch_ms, 0.99), 1),
        },
        "aws_requests_per_event": round(requests / events, 4),
        "aws_requests_by_operation": operations,
        "dynamodb_read_units_per_event": round(aws.usage.read_units / events, 4),
        "dynamodb_write_units_per_event": round(aws.usage.write_units / events, 4),
        "state_bytes": dict(states),
        "unreferenced_event_us": round(unreferenced_us, 3),
        "cold_start_ms": cold["median"],
        "cold_start_runs_ms": cold["runs"],
        "usd_per_million_events": cost["total"],
        "usd_itemized": cost["items"],
        "usage": aws.usage.to_json(),
    }


def _lookup(metrics: Mapping[str, Any], dotted: str) -> float | None:
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def ratios(nudge: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in RATIO_METRICS:
        mine, theirs = _lookup(nudge, name), _lookup(baseline, name)
        out[name] = round(mine / theirs, 4) if mine is not None and theirs else None
    return out


def targets(nudge: Mapping[str, Any], ratio: Mapping[str, float | None]) -> list[dict[str, Any]]:
    out = []
    for metric, whose, comparison, bound, description in TARGETS:
        value = ratio.get(metric) if whose == "ratio" else _lookup(nudge, metric)
        met = value is not None and (value >= bound if comparison == ">=" else value <= bound)
        out.append({"target": description, "metric": metric, "of": whose, "value": value, "bound": bound, "met": met})
    return out


def document(workload: Mapping[str, Any], nudge: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    ratio = ratios(nudge, baseline)
    return {
        "workload": dict(workload),
        "nudge": nudge,
        "baseline": baseline,
        "ratios": ratio,
        "targets": targets(nudge, ratio),
    }


def scaling_row(doc: Mapping[str, Any], events: int, rules: int) -> dict[str, Any]:
    """The headline figures of one scaling point, for both designs."""
    keys = (
        "engine_events_per_s",
        "aws_requests_per_event",
        "dynamodb_write_units_per_event",
        "state_bytes",
        "unreferenced_event_us",
        "cold_start_ms",
        "usd_per_million_events",
    )
    return {
        "events": events,
        "rules": rules,
        "nudge": {key: doc["nudge"][key] for key in keys},
        "baseline": {key: doc["baseline"][key] for key in keys},
        "ratios": {key: value for key, value in doc["ratios"].items() if key.split(".")[0] in keys},
    }


def scaling_targets(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Engine speed with 200 rules within 20 % of the example rules' (same number of events)."""
    out = []
    for row in rows:
        if row["rules"] != 200:
            continue
        reference = next(
            (r for r in rows if r["events"] == row["events"] and r["rules"] < 10), None
        )  # the example rules
        if reference is None:
            continue
        value = row["nudge"]["engine_events_per_s"] / reference["nudge"]["engine_events_per_s"]
        out.append(
            {
                "target": "engine with 200 rules within 20 % of the example rules",
                "metric": "engine_events_per_s",
                "of": "200 rules / example rules",
                "value": round(value, 3),
                "bound": 0.8,
                "met": value >= 0.8,
            }
        )
    return out


# -- tables -------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.4f}"
    return f"{int(value):,}"


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")
        if index == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    out.write("\n")


def print_document(doc: Mapping[str, Any], out: TextIO) -> None:
    work, nudge, base, ratio = doc["workload"], doc["nudge"], doc["baseline"], doc["ratios"]
    sample = nudge["evaluator"]["events"]
    out.write(
        f"nudge bench: {work['events']:,} events, {work['customers_seen']:,} customers seen "
        f"(Zipf s={work['zipf_s']} over {work['customers']:,}), {work['days']:g} days, {work['rules']} rules, "
        f"seed {work['seed']}; {work['referenced_share']:.1%} of events used by some rule\n"
    )
    if work.get("feedback_events"):
        rates = work.get("feedback_rates", {}).get("opened", {})
        shown = ", ".join(f"{channel} {rate:.0%}" for channel, rate in rates.items())
        out.write(
            f"the evaluator's slice also carries {work['feedback_events']:,} channel reports of its sends "
            f"(delivered, opened, clicked; assumed open rates {shown}), priced with the events\n"
        )
    out.write("\n")
    rows: list[tuple[str, ...]] = [("metric", "nudge", "per-event", "nudge/per-event")]
    lines = (
        ("engine events/s (1 core, in memory)", "engine_events_per_s"),
        (f"evaluator events/s (moto, {sample:,} events)", "evaluator_events_per_s"),
        ("batch latency p50 (ms, moto)", "batch_latency_ms.p50"),
        ("batch latency p99 (ms, moto)", "batch_latency_ms.p99"),
        ("AWS requests per event", "aws_requests_per_event"),
        ("DynamoDB read units per event", "dynamodb_read_units_per_event"),
        ("DynamoDB write units per event", "dynamodb_write_units_per_event"),
        ("state bytes p50", "state_bytes.p50"),
        ("state bytes p99", "state_bytes.p99"),
        ("state bytes max", "state_bytes.max"),
        ("unreferenced event (us, engine side)", "unreferenced_event_us"),
        ("cold start (ms, median)", "cold_start_ms"),
        ("USD per million events", "usd_per_million_events"),
    )
    for label, key in lines:
        rows.append((label, _number(_lookup(nudge, key)), _number(_lookup(base, key)), _number(ratio.get(key))))
    _table(rows, out)
    runs = nudge.get("engine_events_per_s_runs") or []
    if len(runs) > 1:
        out.write(
            f"engine events/s is the median of {len(runs)} runs: {', '.join(f'{rate:,}' for rate in runs)} "
            f"(spread {(runs[-1] - runs[0]) / max(1, runs[len(runs) // 2]):.0%}); the per-event loop ran once\n\n"
        )

    rows = [(f"USD per million events ({work['region']}, prices of {work['prices_as_of']})", "nudge", "per-event")]
    for item in nudge["usd_itemized"]:
        rows.append((item, f"{nudge['usd_itemized'][item]:.4f}", f"{base['usd_itemized'][item]:.4f}"))
    rows.append(("total", f"{nudge['usd_per_million_events']:.4f}", f"{base['usd_per_million_events']:.4f}"))
    _table(rows, out)

    rows = [("requests per event, by operation", "nudge", "per-event")]
    names = sorted({*nudge["aws_requests_by_operation"], *base["aws_requests_by_operation"]})
    for name in names:
        mine = nudge["aws_requests_by_operation"].get(name, {}).get("per_event")
        theirs = base["aws_requests_by_operation"].get(name, {}).get("per_event")
        rows.append((name, _number(mine), _number(theirs)))
    _table(rows, out)

    rows = [("target", "value", "met")]
    for target in doc["targets"]:
        rows.append((target["target"], _number(target["value"]), "yes" if target["met"] else "NO"))
    _table(rows, out)


def print_scaling(rows: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    table = [
        (
            "events",
            "rules",
            "engine ev/s",
            "per-event ev/s",
            "req/event",
            "per-event req/ev",
            "WRU/event",
            "state p99",
            "unref us",
            "cold ms",
            "USD/M",
            "per-event USD/M",
        )
    ]
    for row in rows:
        mine, theirs = row["nudge"], row["baseline"]
        table.append(
            (
                f"{row['events']:,}",
                str(row["rules"]),
                _number(mine["engine_events_per_s"]),
                _number(theirs["engine_events_per_s"]),
                _number(mine["aws_requests_per_event"]),
                _number(theirs["aws_requests_per_event"]),
                _number(mine["dynamodb_write_units_per_event"]),
                _number(mine["state_bytes"]["p99"]),
                _number(mine["unreferenced_event_us"]),
                _number(mine["cold_start_ms"]),
                f"{mine['usd_per_million_events']:.4f}",
                f"{theirs['usd_per_million_events']:.4f}",
            )
        )
    _table(table, out)
    for check in checks:
        out.write(f"{check['target']}: {check['value']} ({'met' if check['met'] else 'NOT met'})\n")
