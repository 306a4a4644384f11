"""``nudge replay``: run a JSON-lines file of events through the rules on a virtual clock."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ..engine import (
    EventError,
    Firing,
    Replayer,
    ReplayStats,
    RuleLoadError,
    compile_rules,
    iso,
    load_rules_or_raise,
    parse_event,
    parse_iso,
)
from ..engine.envelope import Event
from .progress import Progress


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay a file of events through the rules on a virtual clock",
        description=(
            "Read events (one JSON object per line) in file order and print every firing. The clock is "
            "the largest event timestamp seen so far; at the end it moves to --until, or far enough for "
            "every pending wait to come due."
        ),
    )
    parser.add_argument("--rules", default="rules", type=Path, help="rule folder or file (default: rules)")
    parser.add_argument("--events", required=True, type=Path, help="JSON-lines event file ('-' for stdin)")
    parser.add_argument("--until", help="end the replay at this ISO 8601 time instead of draining every wait")
    parser.add_argument("--json", action="store_true", help="print one JSON object per firing")
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.set_defaults(run=run)


class BadLine(Exception):
    pass


def read_events(stream: TextIO, label: str, errors: TextIO, counter: list[int]) -> Iterator[tuple[int, Event]]:
    """Yield (line number, event) for good lines; report bad ones on ``errors`` and count them."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line)
        except EventError as exc:
            counter[0] += 1
            print(f"{label}:{number}: bad event: {exc.reason}", file=errors)


def run(args: argparse.Namespace) -> int:
    try:
        plan = compile_rules(load_rules_or_raise(args.rules))
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    until = None
    if args.until:
        try:
            until = parse_iso(args.until)
        except ValueError as exc:
            print(f"--until: {exc}", file=sys.stderr)
            return 2
    replayer = Replayer(plan)
    bad = [0]
    firings: list[Firing] = []
    out = sys.stdout
    if str(args.events) == "-":
        stream: TextIO = sys.stdin
        total = 0
        label = "<stdin>"
    else:
        try:
            stream = args.events.open(encoding="utf-8")
        except OSError as exc:
            print(f"cannot read events: {exc}", file=sys.stderr)
            return 2
        total = os.fstat(stream.fileno()).st_size
        label = str(args.events)
    show = sys.stderr.isatty() and not args.no_progress and total > 0
    progress = Progress(total, sys.stderr, show)
    count = 0
    with stream:
        for _, event in read_events(stream, label, sys.stderr, bad):
            emitted = replayer.feed(event)
            _emit(emitted, args.json, out, firings)
            count += len(emitted)
            if show:
                progress.update(stream.tell() if stream.seekable() else 0, replayer.stats.events, count)
        emitted = replayer.finish(until)
        _emit(emitted, args.json, out, firings)
        count += len(emitted)
        progress.close(total, replayer.stats.events, count)
    if not args.json:
        _print_table(firings, replayer.stats, out)
    if bad[0]:
        print(f"{bad[0]} bad event line(s) skipped", file=sys.stderr)
        return 1
    return 0


def _emit(emitted: list[Firing], as_json: bool, out: TextIO, keep: list[Firing]) -> None:
    if as_json:
        for firing in emitted:
            out.write(json.dumps(firing.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n")
    else:
        keep.extend(emitted)


def _print_table(firings: list[Firing], stats: ReplayStats, out: TextIO) -> None:
    if firings:
        rows = [("FIRED AT", "RULE", "CUSTOMER", "KEY", "CHANNEL", "EVENTS")]
        for firing in firings:
            rows.append(
                (
                    iso(firing.fired_at),
                    firing.rule,
                    firing.customer_id,
                    firing.key or "-",
                    firing.channel,
                    str(len(firing.events)),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    else:
        out.write("no firings\n")
    out.write("\n")
    header = ("RULE", "ARMED", "FIRED", "CANCELLED", "DEBOUNCED", "NOT IN AUDIENCE", "COOLDOWN")
    rows = [header]
    for rule, tally in stats.rules.items():
        rows.append(
            (
                rule,
                str(tally.armed),
                str(tally.fired),
                str(tally.cancelled),
                str(tally.superseded),
                str(tally.suppressed_audience),
                str(tally.suppressed_cooldown),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(
        f"\n{stats.events:,} events read, {stats.accepted:,} used by rules, "
        f"{len(firings):,} firings, {stats.timers_fired:,} waits came due\n"
    )
