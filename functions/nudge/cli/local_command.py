"""``nudge local``: the whole stack on this machine, on an embedded AWS endpoint (moto server).

Scripted: ``nudge local --events FILE.jsonl [--json]`` sends the file through the SDK and runs
stream → evaluator → DynamoDB → Scheduler timers → firings queue → delivery on replay's virtual
clock, prints each firing and delivery, and exits when every wait has come due.
Live: ``nudge local`` prints the endpoint and stream to send to, and runs until Ctrl-C, on the
wall clock or ``--speed`` times faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from ..clock import VirtualClock
from ..contracts import Event
from ..engine import RuleLoadError, load_plan
from ..local.environment import LOCAL_ENVIRONMENT
from ..settings import StackSettings
from .replay_command import future_check, read_events, report_template_errors


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "local",
        help="run the whole stack on an embedded AWS endpoint (moto server)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rules", default="rules", type=Path, help="rule folder (default: rules)")
    parser.add_argument("--events", type=Path, help="JSON-lines events to send, then exit when all is done")
    parser.add_argument("--json", action="store_true", help="one JSON object per firing and per delivery")
    parser.add_argument("--speed", type=float, default=1.0, help="live mode: run the clock this many times faster")
    parser.add_argument("--port", type=int, default=0, help="live mode: the endpoint's port (default: any free one)")
    parser.set_defaults(run=run)


CONSENT_KINDS = ("suppressed_consent", "suppressed_bounced", "suppressed_complaint")
"""What the local summary's CONSENT column counts: the customer cannot, or may not, be reached."""


class Printer:
    """Human-readable lines as things happen, and a per-rule summary at the end."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.firings: Counter[str] = Counter()
        self.deliveries: Counter[tuple[str, str]] = Counter()

    def firing(self, line: dict[str, Any]) -> None:
        self.firings[line["rule"]] += 1
        key = f" [{line['key']}]" if line.get("key") else ""
        send_at = line.get("send_at")
        later = f"  send_at {send_at}" if send_at and send_at != line["fired_at"] else ""
        self.out.write(
            f"\n{line['fired_at']}  FIRED  {line['rule']}{key}  customer {line['customer_id']}"
            f"  ({line['channel']}){later}\n"
        )

    def delivery(self, line: dict[str, Any]) -> None:
        self.deliveries[(line["rule"], line["status"])] += 1
        recipient = line.get("recipient")
        if line["channel"] == "push" and isinstance(recipient, list):  # device tokens: say how many
            shown = f"{len(recipient)} device token{'s' if len(recipient) != 1 else ''}"
        else:
            shown = ", ".join(recipient) if isinstance(recipient, list) else (recipient or "-")
        self.out.write(f"    {line['status'].upper():<10} {line['channel']} to {shown}\n")
        if line.get("subject"):
            self.out.write(f"    Subject: {line['subject']}\n")
        if line.get("reason"):
            self.out.write(f"    Reason: {line['reason']}\n")
        text = (line.get("text") or "").strip()
        if text:
            body = [row for row in text.splitlines() if row.strip()][:12]
            self.out.write(textwrap.indent("\n".join(body), "    | ") + "\n")
        self.out.flush()

    def summary(self, rules: list[str], guarded: Mapping[tuple[str, str], int]) -> None:
        # NO ADDRESS: the customer has no address for the channel (no device token, no phone), not a failure.
        # CONSENT, CAP: firings the engine did not send (no consent, or the channel suppressed after a
        # bounce or a complaint; over a frequency cap): never queued.
        # HELD: firings quiet hours held until they ended (then queued, or not, and counted as such).
        self.out.write("\nRULE                          FIRINGS  SENT  NO ADDRESS  NOT SENT  CONSENT   CAP  HELD\n")
        for rule in rules:
            sent = self.deliveries[(rule, "sent")]
            unaddressed = self.deliveries[(rule, "no_recipient")]
            deferred = self.deliveries[(rule, "deferred")]
            other = sum(n for (r, _), n in self.deliveries.items() if r == rule) - sent - unaddressed - deferred
            consent = sum(guarded.get((rule, kind), 0) for kind in CONSENT_KINDS)
            capped = guarded.get((rule, "suppressed_cap"), 0)
            held = guarded.get((rule, "held"), 0)
            self.out.write(
                f"{rule:<30}{self.firings[rule]:>7}  {sent:>4}  {unaddressed:>10}  {other:>8}"
                f"  {consent:>7}  {capped:>4}  {held:>4}\n"
            )


def run(args: argparse.Namespace) -> int:
    from ..local.embedded import EmbeddedAws  # noqa: PLC0415 - boto3 and moto only load for this command
    from ..local.stack import LocalStack, sender  # noqa: PLC0415
    from ..sdk import Tracker  # noqa: PLC0415

    out = sys.stdout
    printer = Printer(out)

    def emit(line: dict[str, Any]) -> None:
        if args.json:
            out.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
            out.flush()
        elif line["type"] == "firing":
            printer.firing(line)
        else:
            printer.delivery(line)

    try:
        plan = load_plan(args.rules)  # rules first, with their own message, then their templates
        if report_template_errors(args.rules, sys.stderr):
            return 2
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    events: list[Event] = []
    bad = [0]
    if args.events is not None:
        # The same bad-line report as replay's, future events included: the stack's records arrive
        # now, so the evaluator would refuse them against the same present.
        future = future_check(plan.max_future_skew)
        try:
            with args.events.open("rb") as stream:
                events = [event for _, event in read_events(stream, str(args.events), sys.stderr, bad, future)]
        except OSError as exc:
            print(f"cannot read events: {exc}", file=sys.stderr)
            return 2
    clock = VirtualClock() if args.events is not None else VirtualClock(speed=args.speed)
    try:
        aws = EmbeddedAws(port=args.port) if args.events is None else None  # --port is live mode's
        stack = LocalStack(args.rules, StackSettings(), clock, aws=aws, on_firing=emit, on_delivery=emit)
    except RuleLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    tracker = Tracker(stack.resources.stream_name, client=stack.session.client("kinesis"), flush_at_exit=False)
    try:
        if args.events is not None:
            stack.run_events(events, sender(tracker))
            if not args.json:
                printer.summary([rule.id for rule in stack.plan.rules], stack.output.guarded)
        else:
            _serve(stack, args, out)
    finally:
        stack.close()
    if bad[0]:
        print(f"{bad[0]} bad event line(s) skipped", file=sys.stderr)
        return 1
    return 0


def live_banner(endpoint: str, stream: str, clock: str) -> str:
    """What ``nudge local`` prints in live mode: where it listens, and exactly how to send to it."""
    exports = " ".join(f"{name}={value}" for name, value in LOCAL_ENVIRONMENT.items())
    return (
        f"Nudge is running locally.\n"
        f"  endpoint:  {endpoint}\n"
        f"  stream:    {stream}  (partition key = customer id)\n"
        f"  clock:     {clock}\n\n"
        f"In the shell that sends events (any credentials do; moto checks none):\n"
        f"  export {exports}\n"
        f"Then, with the SDK:\n"
        f"  Tracker('{stream}', endpoint_url='{endpoint}')\n"
        f"Press Ctrl-C to stop.\n"
    )


def _serve(stack: Any, args: argparse.Namespace, out: TextIO) -> None:
    endpoint = stack.aws.endpoint_url
    clock = "wall clock" if args.speed == 1 else f"{args.speed:g}x"
    out.write(live_banner(endpoint, stack.resources.stream_name, clock))
    out.flush()
    try:
        for _ in stack.serve(stop=lambda: False):
            pass
    except KeyboardInterrupt:
        out.write("\nstopped\n")
