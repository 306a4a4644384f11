"""Every fault scenario over N seeds, as the table in ``RELIABILITY.md``.

    .venv/bin/python -m tests.faults.report --runs 5                 # 100 customers a run
    .venv/bin/python -m tests.faults.report --runs 3 --customers 30 --only "SES" --jobs 2
    .venv/bin/python -m tests.faults.report --runs 5 --write RELIABILITY.md --json runs.json

Prints the markdown table (and, with ``--write``, replaces the table section of ``RELIABILITY.md``,
between its ``faults-table`` markers). Each run is ``scenario.run_scenario``: a fresh moto, the
seed's workload, one fault. Exit status 1 if any run broke the promise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .scenario import Result, run_scenario
from .scenarios import BY_NAME, SCENARIOS

START_MARK = "<!-- faults-table:start -->"
END_MARK = "<!-- faults-table:end -->"


@dataclass
class Row:
    """One scenario's runs, summed."""

    name: str
    how: str
    exception: str
    runs: int = 0
    kept: int = 0
    lost: int = 0
    duplicate_firings: int = 0
    duplicate_sends: int = 0
    expected: int = 0
    missing: int = 0
    extra: int = 0
    delayed: int = 0
    parked: int = 0
    parked_without_reason: int = 0
    rejected: int = 0
    injected: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, record: dict[str, Any]) -> None:
        """One run's record (``run_record``: a measurement's ``to_json`` with the verdict)."""
        self.runs += 1
        self.kept += bool(record["kept"])
        self.lost += record["lost_events"]
        self.duplicate_firings += record["duplicate_firings"]
        self.duplicate_sends += record["duplicate_sends"]
        self.expected += record["expected"]
        self.missing += record["missing"]
        self.extra += record["extra"]
        self.delayed += record.get("delayed", record.get("judged_late", 0))
        parked, rejected = record["parked_firings"], record["rejected_records"]
        self.parked += sum(n for reason, n in parked.items() if reason != NO_REASON)
        self.rejected += sum(n for reason, n in rejected.items() if reason != NO_REASON)
        self.parked_without_reason += parked.get(NO_REASON, 0) + rejected.get(NO_REASON, 0)
        notes = record["notes"]
        self.injected += sum(record["injected"].values()) + sum(int(notes.get(n, 0)) for n in NOT_BOTOCORE_FAULTS)
        self.problems += [f"seed {record['seed']}: {problem}" for problem in record["problems"]]
        self.seconds += record.get("seconds", 0.0)

    def firings(self) -> str:
        if not self.missing and not self.extra:
            return f"= replay ({self.expected})"
        text = ", ".join(p for p in (f"{self.missing} missing" if self.missing else "",
                                     f"{self.extra} extra" if self.extra else "") if p)  # fmt: skip
        late = f", {self.delayed} of them for delayed customers" if self.delayed else ""
        return f"{text} of {self.expected}{late}"

    def parked_text(self) -> str:
        parts = []
        if self.parked:
            parts.append(f"{self.parked} firing(s)")
        if self.rejected:
            parts.append(f"{self.rejected} record(s)")
        return ", ".join(parts) or "0"

    def verdict(self) -> str:
        if self.kept < self.runs:
            return f"**broken** in {self.runs - self.kept}/{self.runs}: {self.problems[0]}"
        bounded = []
        if self.parked and self.exception:
            bounded.append(self.exception)
        return "kept" + (f" (bounded: {'; '.join(bounded)})" if bounded else "")


NO_REASON = "(no reason)"
"""How ``Measurement.to_json`` counts a parked message without a reason."""
NOT_BOTOCORE_FAULTS = (
    "poison_records",
    "copies",
    "duplicate_timers",
    "echoed_invocations",
    "duplicate_receives",
    "twin_batches",
)
"""Faults that are records or invocations, not failed calls: counted in the run's notes."""


def run_record(result: Result, seconds: float) -> dict[str, Any]:
    """What one run leaves in ``--json``, and what a row is summed from."""
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "customers": result.customers,
        "kept": result.kept,
        "problems": result.problems,
        "seconds": round(seconds, 1),
        **result.measurement.to_json(),
    }


def table(rows: Sequence[Row]) -> str:
    header = (
        "| fault | how injected | runs | faults injected | lost events | duplicate firings on the queue "
        "| duplicate sends | firings vs replay | parked with a reason | parked without | verdict |\n"
        "|---|---|---:|---:|---:|---:|---:|---|---|---:|---|\n"
    )
    lines = [
        f"| {row.name} | {row.how} | {row.runs} | {row.injected or '-'} | {row.lost} | {row.duplicate_firings} "
        f"| {row.duplicate_sends} | {row.firings()} | {row.parked_text()} | {row.parked_without_reason} "
        f"| {row.verdict()} |"
        for row in rows
    ]
    return header + "\n".join(lines) + "\n"


def _one(name: str, seed: int, customers: int) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)  # the evaluator logs every injected failure it absorbs
    started = time.perf_counter()
    result = run_scenario(BY_NAME[name], seed=seed, customers=customers)
    return run_record(result, time.perf_counter() - started)


def write_section(path: Path, section: str) -> None:
    """Replace the text between the table markers of ``path`` (append the section if it has none)."""
    text = path.read_text() if path.exists() else ""
    block = f"{START_MARK}\n{section}{END_MARK}"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        text = head + block + rest.split(END_MARK, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="seeds per scenario (default 3)")
    parser.add_argument("--customers", type=int, default=100, help="customers per run (default 100)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=[], help="scenarios whose name contains any of these")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (separate processes)")
    parser.add_argument("--write", type=Path, help="replace the table section of this file (RELIABILITY.md)")
    parser.add_argument("--json", type=Path, help="write every run's measurement here")
    parser.add_argument("--date", default=datetime.now(UTC).date().isoformat())
    parser.add_argument("--from-json", type=Path, help="render the table of an earlier --json instead of running")
    args = parser.parse_args(argv)
    scenarios = [s for s in SCENARIOS if not args.only or any(part in s.name for part in args.only)]
    rows = {s.name: Row(s.name, s.how, s.expectation.exception) for s in scenarios}
    started = time.perf_counter()
    if args.from_json:
        records = [r for r in json.loads(args.from_json.read_text()) if r["scenario"] in rows]
    else:
        records = []
        jobs = [(s.name, args.first_seed + i, args.customers) for s in scenarios for i in range(args.runs)]
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for record in pool.map(_one, *zip(*jobs, strict=True)):
                records.append(record)
                verdict = "kept" if record["kept"] else "BROKEN"
                print(
                    f"{record['scenario']} seed {record['seed']}: {verdict} in {record['seconds']} s", file=sys.stderr
                )
    for record in records:
        rows[record["scenario"]].add(record)
    minutes = (sum(r.get("seconds", 0.0) for r in records) if args.from_json else time.perf_counter() - started) / 60
    command = (
        f".venv/bin/python -m tests.faults.report --runs {args.runs} --customers {args.customers}"
        + (f" --first-seed {args.first_seed}" if args.first_seed != 1 else "")
        + ("".join(f' --only "{part}"' for part in args.only))
    )
    section = (
        f"Measured {args.date}: {args.runs} run(s) per fault, {args.customers} customers a run unless the fault says "
        f"otherwise (seeds {args.first_seed}-{args.first_seed + args.runs - 1}), {minutes:.0f} min of runs on this "
        f"machine, with\n\n    {command}\n\n{table(list(rows.values()))}"
    )
    print(section)
    if args.write:
        write_section(args.write, section)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1, default=str))
    return 0 if all(row.kept == row.runs for row in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
