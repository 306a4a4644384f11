"""``nudge bench`` on a tiny workload: the JSON document's shape, and counts that are real.

No timing is asserted anywhere: only that every figure is there, and that the request counts
agree with what each design must do (the per-event design reads and writes once per record).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from nudge.bench.measure import RequestCounter, item_size, percentile
from nudge.bench.prices import Usage, cost_per_million, load_prices
from nudge.bench.report import RATIO_METRICS, print_document
from nudge.bench.runner import without_guardrails
from nudge.bench.stream import Batcher, TimerQueue
from nudge.bench.variants import generate_rules
from nudge.bench.workload import WorkloadSpec, generate
from nudge.cli import bench_command
from nudge.engine import load_plan, load_rules_or_raise

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
TINY = ["--events", "3000", "--customers", "300", "--evaluator-events", "400", "--cold-start-runs", "1"]
METRICS = (
    "engine_events_per_s",
    "evaluator_events_per_s",
    "batch_latency_ms",
    "aws_requests_per_event",
    "aws_requests_by_operation",
    "dynamodb_read_units_per_event",
    "dynamodb_write_units_per_event",
    "state_bytes",
    "cold_start_ms",
    "usd_per_million_events",
    "usd_itemized",
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """One run for the module's tests (``capsys`` is per test, so stdout is redirected here)."""
    parser = argparse.ArgumentParser(prog="nudge")
    bench_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "--rules", str(RULES), "--quiet", "--json", *TINY])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.run(args) == 0
    return json.loads(out.getvalue())


def test_document_has_both_designs_every_metric_and_the_ratios(document: dict[str, Any]) -> None:
    assert set(document) >= {"workload", "nudge", "baseline", "ratios", "targets"}
    assert document["workload"]["events"] == 3000
    assert document["workload"]["evaluator_events"] == 400
    assert document["workload"]["feedback_events"] > 0  # the channels' reports of the sends, on the stream too
    for design in ("nudge", "baseline"):
        metrics = document[design]
        assert set(metrics) >= set(METRICS)
        assert set(metrics["batch_latency_ms"]) == {"p50", "p99"}
        assert metrics["state_bytes"]["p50"] <= metrics["state_bytes"]["p99"] <= metrics["state_bytes"]["max"]
        assert metrics["engine"]["events"] == 3000
        assert metrics["evaluator"]["events"] == 400
        assert metrics["usd_per_million_events"] == pytest.approx(sum(metrics["usd_itemized"].values()), abs=1e-3)
    assert set(document["ratios"]) == set(RATIO_METRICS)
    assert all(target["met"] in (True, False) for target in document["targets"])


def test_the_week_of_stream_retention_is_priced_per_record_kept_past_its_first_day(document: dict[str, Any]) -> None:
    assert document["workload"]["stream_retention_hours"] == 168
    for design in ("nudge", "baseline"):
        usage, items = document[design]["usage"], document[design]["usd_itemized"]
        kept_gb_months = usage["ingest_kib"] / 1024**2 * (168 - 24) / 730
        assert items["kinesis_retention"] == pytest.approx(kept_gb_months * 0.10 * 1e6 / usage["events"], abs=1e-5)
    # By hand: a million records of 1 KiB are 0.9537 GB, kept 144 hours past the free day = 0.1881
    # GB-months at $0.10 on demand; past 7 days, long-term retention at $0.023 a GB-month.
    prices, million = load_prices(), Usage(events=1_000_000, ingest_kib=1_000_000)
    retention = {
        hours: cost_per_million(million, prices, 1024, 1000, retention_hours=hours)["items"]["kinesis_retention"]
        for hours in (24, 168, 720)
    }
    assert retention == {24: 0, 168: pytest.approx(0.01881, abs=1e-5), 720: pytest.approx(0.03540, abs=1e-5)}


def test_counts_are_what_each_design_must_do(document: dict[str, Any]) -> None:
    nudge, baseline = document["nudge"], document["baseline"]
    records = baseline["evaluator"]["records"]
    assert records >= 400  # every event, plus the timers that came back
    by_operation = baseline["aws_requests_by_operation"]
    assert by_operation["dynamodb.GetItem"]["requests"] == records  # one read per record...
    assert by_operation["dynamodb.PutItem"]["requests"] == records  # ...and one unconditional write
    assert "dynamodb.BatchGetItem" not in by_operation
    mine = nudge["aws_requests_by_operation"]
    assert mine["dynamodb.BatchGetItem"]["requests"] >= nudge["evaluator"]["batches"]
    writes = mine["dynamodb.PutItem"]["requests"] + mine.get("dynamodb.DeleteItem", {}).get("requests", 0)
    assert 0 < writes < nudge["evaluator"]["records"]
    assert "dynamodb.GetItem" not in mine and "sqs.SendMessage" not in mine
    assert nudge["aws_requests_per_event"] < baseline["aws_requests_per_event"]
    assert baseline["dynamodb_write_units_per_event"] >= by_operation["dynamodb.PutItem"]["per_event"]
    assert nudge["evaluator"]["failed_batches"] == baseline["evaluator"]["failed_batches"] == 0
    # both designs make the same decisions: the same engine over the same records
    assert nudge["engine"]["firings"] == baseline["engine"]["firings"]


def test_tables_print_every_metric_and_the_targets(document: dict[str, Any]) -> None:
    printed = io.StringIO()
    print_document(document, printed)
    out = printed.getvalue()
    for label in ("engine events/s", "AWS requests per event", "state bytes p99", "cold start", "USD per million"):
        assert label in out
    assert "dynamodb.PutItem" in out and "target" in out


def test_workload_is_reproducible_and_mostly_page_views() -> None:
    spec = WorkloadSpec(events=2000, customers=200, seed=7)
    first, second = generate(spec), generate(spec)
    assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
    assert len(first.events) == 2000
    assert max(first.mix, key=first.mix.__getitem__) == "page_viewed"
    assert [e.event_id for e in generate(WorkloadSpec(events=2000, customers=200, seed=8)).events] != [
        e.event_id for e in first.events
    ]


def test_generated_rule_sets_have_distinct_ids(tmp_path: Path) -> None:
    for count, mode in ((10, "narrowed"), (200, "narrowed"), (50, "copies")):
        rules = load_rules_or_raise(generate_rules(RULES, count, tmp_path / f"{mode}{count}", mode))
        assert len({rule.id for rule in rules}) == count


def test_dynamodb_units_follow_item_sizes() -> None:
    item = {"pk": {"S": "c-1"}, "state": {"B": b"x" * 2000}, "version": {"N": "12"}}
    assert item_size(item) == 2 + 3 + 5 + 2000 + 7 + 2
    counter = RequestCounter()
    counter.remember("t", item)
    assert counter._read_units("t", {"pk": {"S": "c-1"}}, consistent=True) == 1
    assert counter._read_units("t", {"pk": {"S": "c-1"}}, consistent=False) == 0.5
    assert counter._dynamodb_units("PutItem", {"TableName": "t", "Item": item}, {}, failed=False) == (0.0, 2.0)
    update = {"TableName": "t", "Key": {"pk": {"S": "c-1"}}}
    assert counter._dynamodb_units("UpdateItem", update, {}, failed=True) == (0.0, 2.0)  # a failed condition bills too
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3 and percentile([], 0.99) == 0


def test_timers_come_back_in_due_order_once() -> None:
    queue: TimerQueue[str] = TimerQueue()
    queue.put("a", 3000, "a1")
    queue.put("b", 1000, "b1")
    queue.put("a", 2000, "a2")  # moved: the first a is stale
    queue.put("c", 1500, "c1")
    queue.cancel("c")
    assert queue.due(2500) == ["b1", "a2"] and queue.due(10_000) == [] and queue.fired == 2
    events = generate(WorkloadSpec(events=1200, customers=100)).events
    batches = list(Batcher(TimerQueue(), size=500).batches(events))
    assert [len(b.events) for b in batches] == [500, 500, 200]


def test_without_guardrails_runs_the_same_rules_and_consent_with_no_caps_and_no_quiet_hours(tmp_path: Path) -> None:
    shipped, stripped = load_plan(RULES), load_plan(without_guardrails(RULES, tmp_path / "rules"))
    assert shipped.quiet is not None and any(rule.caps for rule in shipped.rules)
    assert stripped.quiet is None and not any(rule.caps for rule in stripped.rules)
    assert [r.id for r in stripped.rules] == [r.id for r in shipped.rules]
    assert (stripped.allowed_lateness, stripped.consent) == (shipped.allowed_lateness, shipped.consent)


def test_the_channels_reports_are_one_delivery_per_send_and_opens_at_the_stated_rates() -> None:
    from nudge.bench.feedback import OPEN_RATES, feedback_for
    from nudge.contracts import Firing

    def sent(index: int, channel: str) -> Firing:
        return Firing(f"{index:032x}", "r", f"c-{index}", None, 0, 1_000, channel, "t", (), send_at=1_000)

    firings = [sent(i, channel) for i, channel in enumerate(["email", "push", "sms", "webhook"] * 2_000)]
    reports = feedback_for(firings, 0, 10**9)
    names = collections.Counter((e.properties["channel"], e.name) for e in reports)
    assert (
        names["email", "message_delivered"]
        == names["push", "message_delivered"]
        == names["sms", "message_delivered"]
        == 2_000
    )
    assert not any(e.properties["channel"] == "webhook" for e in reports)
    assert names["sms", "message_opened"] == 0  # SMS reports no opens
    assert abs(names["email", "message_opened"] / 2_000 - OPEN_RATES["email"]) < 0.03
    assert [e.event_id for e in reports] == [e.event_id for e in feedback_for(firings, 0, 10**9)]  # repeatable
    early = feedback_for(firings, 0, 10_000)
    assert {e.name for e in early} == {"message_delivered"}  # opens come 20 minutes after the send


def test_the_engine_figure_is_the_median_of_its_runs(document: dict[str, Any]) -> None:
    runs = document["nudge"]["engine_events_per_s_runs"]
    assert len(runs) == 3 and runs == sorted(runs)
    assert abs(document["nudge"]["engine_events_per_s"] - runs[1]) <= 1
