"""The cost model: counted usage times the list prices of ``prices.json``, itemized per million events.

Prices live in one data file with their region, date and source pages, so updating them is a
data change, and every figure the bench prints can be traced to a line of that file. Usage comes
from what the run measured: requests and units from the botocore hooks, record sizes from the
records themselves, Lambda duration from the measured compute time plus the stated round-trip
time of each counted AWS call (moto answers in-process, so its own time is not a latency).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
GB = 1024**3
MILLION = 1_000_000


def load_prices(path: Path | None = None) -> dict[str, Any]:
    with (path or PRICES_FILE).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@dataclass
class Usage:
    """What one design consumed while processing ``events`` workload events."""

    events: int = 0
    """Workload events: what the costs are per million of."""
    feedback_events: int = 0
    """The channels' reports about sends (delivered, opened, clicked), on the stream besides them."""
    records_ingested: int = 0
    """Records put on the stream: the events, plus the timer records Scheduler puts back."""
    ingest_kib: int = 0
    """Sum over ingested records of their size rounded up to 1 KiB (Kinesis on-demand billing)."""
    retrieved_bytes: int = 0
    """Bytes the event source mapping reads: every record, filtered out or not."""
    invocations: int = 0
    billed_ms: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    scheduler_invocations: int = 0
    sqs_requests: int = 0
    per_invocation_ms: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("per_invocation_ms")
        return body


def lambda_billed_ms(compute_s: float, calls: dict[str, int], memory_mb: int, prices: dict[str, Any]) -> float:
    """One invocation's billed milliseconds: compute scaled to Lambda's CPU share, plus AWS round trips."""
    assumptions = prices["assumptions"]
    share = min(1.0, memory_mb / assumptions["lambda_full_vcpu_mb"])
    latency = assumptions["aws_latency_ms"]
    waiting = sum(count * latency.get(operation, 10) for operation, count in calls.items())
    return float(math.ceil(compute_s * 1000 / share + waiting))


INCLUDED_RETENTION_HOURS = 24
EXTENDED_RETENTION_HOURS = 7 * 24
"""Kinesis keeps records 24 hours at no charge, prices retention up to 7 days as "extended" and
beyond that as "long-term"."""


def retention_gb_months(gb: float, retention_hours: int, hours_per_month: float) -> tuple[float, float]:
    """The GB-months ``gb`` of records cost when kept ``retention_hours``: (extended, long-term)."""
    extended = max(0, min(retention_hours, EXTENDED_RETENTION_HOURS) - INCLUDED_RETENTION_HOURS)
    long_term = max(0, retention_hours - EXTENDED_RETENTION_HOURS)
    return gb * extended / hours_per_month, gb * long_term / hours_per_month


def cost_per_million(
    usage: Usage,
    prices: dict[str, Any],
    memory_mb: int,
    stream_events_per_s: float,
    retention_hours: int = INCLUDED_RETENTION_HOURS,
) -> dict[str, Any]:
    """USD per million workload events, itemized, with the total (before message-sending charges).

    ``retention_hours`` is the stream's (``stream_retention_hours``): on-demand streams pay for
    every record kept past 24 hours, by the GB-month (``kinesis_retention``).
    """
    if not usage.events:
        return {"items": {}, "total": 0.0}
    scale = MILLION / usage.events
    table = prices["prices"]
    kinesis, lam, ddb = table["kinesis_on_demand"], table["lambda_arm64"], table["dynamodb_on_demand"]
    extended, long_term = retention_gb_months(
        usage.ingest_kib * 1024 / GB, retention_hours, prices["assumptions"]["hours_per_month"]
    )
    items = {
        "kinesis_ingest": usage.ingest_kib * 1024 / GB * kinesis["per_gb_ingested"] * scale,
        "kinesis_retrieval": usage.retrieved_bytes / GB * kinesis["per_gb_retrieved"] * scale,
        "kinesis_stream_hours": kinesis["per_stream_hour"] / (stream_events_per_s * 3600) * MILLION,
        "kinesis_retention": (
            extended * kinesis["per_gb_month_extended_retention"]
            + long_term * kinesis["per_gb_month_long_term_retention"]
        )
        * scale,
        "lambda_requests": usage.invocations * scale * lam["per_million_requests"] / MILLION,
        "lambda_duration": usage.billed_ms / 1000 * memory_mb / 1024 * lam["per_gb_second"] * scale,
        "dynamodb_reads": usage.read_units * scale * ddb["per_million_read_request_units"] / MILLION,
        "dynamodb_writes": usage.write_units * scale * ddb["per_million_write_request_units"] / MILLION,
        "scheduler_invocations": usage.scheduler_invocations
        * scale
        * table["scheduler"]["per_million_invocations"]
        / MILLION,
        "sqs_requests": usage.sqs_requests * scale * table["sqs_standard"]["per_million_requests"] / MILLION,
    }
    rounded = {name: round(value, 5) for name, value in items.items()}
    return {"items": rounded, "total": round(sum(items.values()), 4)}
