"""``nudge replay``: run a JSON-lines file of events through the rules on a virtual clock."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ..contracts import Event, EventError, Firing, parse_event, peek_event
from ..engine import (
    CustomerState,
    Decision,
    Replayer,
    ReplayStats,
    RuleLoadError,
    format_duration,
    future_problem,
    load_plan,
)
from ..engine.explain import explain_customer
from ..evaluator.collector import tuned_collector
from ..evaluator.source_filters import passing_names
from ..timefmt import iso, parse_iso
from .progress import Progress


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay a file of events through the rules on a virtual clock",
        description=(
            "Read events (one JSON object per line) in file order and print every firing. The clock is "
            "the largest event timestamp seen so far; at the end it moves to --until, or far enough for "
            "every pending wait to come due. An event stamped more than the policy's max_future_skew "
            "after --now is reported as a bad line and not replayed."
        ),
    )
    parser.add_argument("--rules", default="rules", type=Path, help="rule folder or file (default: rules)")
    parser.add_argument("--events", required=True, type=Path, help="JSON-lines event file ('-' for stdin)")
    parser.add_argument("--until", help="end the replay at this ISO 8601 time instead of draining every wait")
    parser.add_argument(
        "--now",
        help="the present, ISO 8601 (default: the wall clock): events stamped after it by more than "
        "max_future_skew are refused",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per firing")
    parser.add_argument(
        "--decisions",
        action="store_true",
        help="also print every decision (armed, fired, cancelled, debounced, suppressed...) as a JSON line, "
        '{"type": "decision", ...}: why a customer got something, or nothing',
    )
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.add_argument(
        "--explain",
        metavar="CUSTOMER",
        help="at the end, print this customer's decisions and what each rule's conditions say (as nudge explain)",
    )
    parser.set_defaults(run=run)


FutureCheck = Callable[[int], str | None]
"""Why an event stamped at that time is refused as from the future, or ``None`` (``future_check``)."""


def future_check(max_future_skew: int, now: int | None = None) -> FutureCheck:
    """The check replay, scripted ``nudge local`` and preview apply to a file's events.

    A file has no arrival times, so every event is taken to arrive at the present (``now``, by
    default the wall clock when the check is made): an event stamped more than ``max_future_skew``
    after it could never have been accepted live, where the clock is the record's arrival.
    """
    present = int(time.time() * 1000) if now is None else now
    return lambda ts: future_problem(ts, present, max_future_skew)


def read_events(
    stream: Iterable[bytes], label: str, errors: TextIO, counter: list[int], future: FutureCheck | None = None
) -> Iterator[tuple[int, Event]]:
    """Yield (line number, event) for good lines; report bad ones on ``errors`` and count them.

    Lines are read as bytes and decoded one at a time, so a line that is not valid UTF-8 is
    reported and skipped like any other bad line instead of aborting the whole replay. With
    ``future``, an event it refuses is a bad line too, with its reason: it never reaches the
    engine, so it moves no clock.
    """
    for number, read in read_lines(stream, label, errors, counter, future):
        assert isinstance(read, Event)  # (no names given: every good line is read in full)
        yield number, read


def read_lines(
    stream: Iterable[bytes],
    label: str,
    errors: TextIO,
    counter: list[int],
    future: FutureCheck | None = None,
    passing: Collection[str] | None = None,
) -> Iterator[tuple[int, Event | int]]:
    """``read_events``, but a line whose event is not ``passing`` gives only its time (an ``int``).

    Replay passes the names the deployed stream mapping lets through (``passing_names``): the
    evaluator never reads the others, so replay reads no more of them than what moves its clock
    (``peek_event``): two thirds of the lines of a shop's file, and of its parsing time.
    """
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        peeked = peek_event(raw, passing) if passing is not None else None
        if type(peeked) is int:
            refused = future(peeked) if future is not None else None
            if refused is None:
                yield number, peeked
                continue
            peeked = None  # refused: read in full below, which gives the reason
        read = _read_line(raw) if peeked is None else _read_object(peeked)
        if isinstance(read, Event):
            refused = future(read.ts) if future is not None else None
            if refused is None:
                yield number, read
                continue
            read = refused
        reason = read
        counter[0] += 1
        print(f"{label}:{number}: bad event: {reason}", file=errors)


def _read_object(decoded: dict[str, Any]) -> Event | str:
    """The event of a line already decoded (``peek_event``), or why it is not one."""
    try:
        return parse_event(decoded)
    except EventError as exc:
        return exc.reason


def _read_line(raw: bytes) -> Event | str:
    """One line's event, or why it is not one.

    The bytes go to the decoder as they are, as the evaluator hands it a record; only a line it
    refuses is read again as text, which says what is wrong with it (not UTF-8), or reads it after
    all (utf-8-sig: a byte order mark some editors put at the start of a file is not an error).
    """
    try:
        return parse_event(raw)
    except EventError:
        pass
    try:
        return parse_event(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: {exc.reason} at byte {exc.start + 1}"
    except EventError as exc:
        return exc.reason


def report_template_errors(rules: Path, errors: TextIO) -> bool:
    """Print the errors of the templates beside ``rules`` (file:line, as ``nudge validate``); True if any.

    The rules loaded, but a firing whose template cannot render would be parked at send time:
    replay and ``nudge local`` refuse the folder, as they refuse invalid rules, rather than show
    firings that could never be delivered.
    """
    from ..delivery.validation import validate_paths  # noqa: PLC0415  (Jinja: only once the rules loaded)

    problems = validate_paths(rules).errors
    for problem in problems:
        print(problem, file=errors)
    if problems:
        print(f"{len(problems)} template error(s): fix them, or see `nudge validate {rules}`", file=errors)
    return bool(problems)


def run(args: argparse.Namespace) -> int:
    if not args.rules.exists():
        print(f"{args.rules}: no such rules folder or file", file=sys.stderr)
        return 2
    try:
        plan = load_plan(args.rules)
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{exc.filename or args.rules}: cannot read rules: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if report_template_errors(args.rules, sys.stderr):
        return 2
    instants: dict[str, int | None] = {}
    for option in ("until", "now"):
        text = getattr(args, option)
        try:
            instants[option] = parse_iso(text) if text else None
        except ValueError as exc:
            print(f"--{option}: {exc}", file=sys.stderr)
            return 2
    until, now = instants["until"], instants["now"]
    explained: list[Decision] = []
    replayer = Replayer(plan, on_decision=_listener(args.decisions, args.explain, explained))
    bad = [0]
    firings: list[Firing] = []
    out = sys.stdout
    if str(args.events) == "-":
        stream: BinaryIO = sys.stdin.buffer
        total = 0
        label = "<stdin>"
    else:
        try:
            stream = args.events.open("rb")
        except OSError as exc:
            print(f"cannot read events: {exc}", file=sys.stderr)
            return 2
        total = os.fstat(stream.fileno()).st_size
        label = str(args.events)
    show = sys.stderr.isatty() and not args.no_progress and total > 0
    progress = Progress(total, sys.stderr, show)
    count = 0
    after_until = 0
    # The evaluator's collector settings: a replay keeps every customer's state in memory, and the
    # collector's older passes would walk all of it every few thousand events.
    with stream, tuned_collector():
        future = future_check(plan.max_future_skew, now)
        for _, event in read_lines(stream, label, sys.stderr, bad, future, passing_names(plan)):
            if until is not None and (event if isinstance(event, int) else event.ts) > until:
                # The replay ends at --until: a later event would move the clock past it and let
                # waits due after --until fire.
                after_until += 1
                continue
            emitted = replayer.feed(event) if isinstance(event, Event) else replayer.tick(event)
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
    if args.explain:
        _print_explanation(replayer, args.explain, explained, args.json, out)
    if after_until:
        print(f"{after_until:,} event(s) after --until {iso(until or 0)} not replayed", file=sys.stderr)
    if bad[0]:
        print(f"{bad[0]} bad event line(s) skipped", file=sys.stderr)
        return 1
    return 0


def decision_json(customer_id: str, decision: Decision) -> dict[str, Any]:
    """One decision as ``--decisions`` prints it: the rule, the customer and key, what, when and why."""
    return {
        "type": "decision",
        "rule": decision.rule,
        "customer_id": customer_id,
        "key": decision.key,
        "kind": decision.kind,
        "at": iso(decision.at),
        "reason": decision.reason or None,
    }


def _listener(print_all: bool, customer: str | None, kept: list[Decision]) -> Callable[[str, Decision], None] | None:
    """What hears each decision: the ``--decisions`` printer, and ``--explain``'s keeper of one customer's."""
    printer = _decision_printer(sys.stdout) if print_all else None
    if customer is None:
        return printer

    def hear(customer_id: str, decision: Decision) -> None:
        if printer is not None:
            printer(customer_id, decision)
        if customer_id == customer:
            kept.append(decision)

    return hear


def _print_explanation(
    replayer: Replayer, customer: str, decisions: list[Decision], as_json: bool, out: TextIO
) -> None:
    """``--explain``: every decision the replay took for the customer, then the explanation of the end state."""
    state = replayer.states.get(customer) or CustomerState(customer)
    explanation = explain_customer(replayer.engine, state)
    if as_json:
        body = {"type": "explanation", "decisions": [decision_json(customer, d) for d in decisions]}
        out.write(json.dumps(body | explanation.as_dict(), ensure_ascii=False) + "\n")
        return
    out.write(f"\n{customer}: {len(decisions)} decision(s) in this replay\n")
    for d in decisions:
        key = f" [key {d.key}]" if d.key is not None else ""
        reason = f": {d.reason}" if d.reason else ""
        out.write(f"  {iso(d.at)}  {d.rule}{key}  {d.kind}{reason}\n")
    out.write("\n".join(explanation.lines()) + "\n")


def _decision_printer(out: TextIO) -> Callable[[str, Decision], None]:
    def emit(customer_id: str, decision: Decision) -> None:
        out.write(json.dumps(decision_json(customer_id, decision), ensure_ascii=False) + "\n")

    return emit


def _emit(emitted: list[Firing], as_json: bool, out: TextIO, keep: list[Firing]) -> None:
    if as_json:
        for firing in emitted:
            out.write(json.dumps(firing.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n")
    else:
        keep.extend(emitted)


SUMMARY_COLUMNS = (
    ("ARMED", "armed"),
    ("CANCELLED", "cancelled"),
    ("DEBOUNCED", "superseded"),
    ("AUDIENCE", "suppressed_audience"),
    ("COOLDOWN", "suppressed_cooldown"),
    ("CONSENT", "suppressed_consent"),
    ("BOUNCED", "suppressed_bounced"),
    ("COMPLAINT", "suppressed_complaint"),
    ("RESTING", "suppressed_disengaged"),
    ("CAP", "suppressed_cap"),
    ("HELD", "held"),
    ("SKIPPED", "skipped_unreachable"),
    ("SENT", "fired"),
    ("STEPS", "steps"),
)
"""The per-rule summary: header and ``RuleTally`` field. AUDIENCE to CAP are firings not sent, one
column per reason (BOUNCED and COMPLAINT: the channel is suppressed after a permanent bounce or a
complaint; RESTING: the policy rests a channel the customer never answers); HELD counts firings quiet
hours held (each then counted as sent or not); SKIPPED, escalation steps passed over for want of an
address or consent on their channel (the next step went instead); STEPS, escalation steps sent (in
SENT too)."""


def _print_table(firings: list[Firing], stats: ReplayStats, out: TextIO) -> None:
    if firings:
        rows = [("FIRED AT", "SEND AT", "RULE", "STEP", "CUSTOMER", "KEY", "CHANNEL", "EVENTS")]
        for firing in firings:
            rows.append(
                (
                    iso(firing.fired_at),
                    iso(firing.fired_at if firing.send_at is None else firing.send_at),
                    firing.rule,
                    str(firing.step),
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
    header = ("RULE", *(title for title, _ in SUMMARY_COLUMNS))
    rows = [header]
    for rule, tally in stats.rules.items():
        rows.append((rule, *(str(getattr(tally, name)) for _, name in SUMMARY_COLUMNS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(
        "(AUDIENCE to CAP: firings not sent, by reason; HELD: held by quiet hours; "
        "SKIPPED: escalation steps passed over; STEPS: escalation steps sent)\n"
        f"\n{stats.events:,} events read, {stats.accepted:,} used by rules, "
        f"{len(firings):,} firings sent, {stats.timers_fired:,} waits came due"
        + (f", {stats.holds_ended:,} holds ended" if stats.holds_ended else "")
        + "\n"
    )
    invalid = sum(tally.invalid_timezone for tally in stats.rules.values())
    if invalid:
        out.write(f"{invalid:,} firing(s) for customers whose timezone is not one: quiet hours used the default\n")
    if stats.late:
        out.write(
            f"{stats.late:,} late: more than {format_duration(stats.allowed_lateness)} behind the latest event "
            "when read, used only where their windows still held them\n"
        )
