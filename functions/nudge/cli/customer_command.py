"""``nudge explain``, ``nudge export``, ``nudge erase``, ``nudge audit``: one customer's data, audited.

They run against the deployed stack with your own AWS credentials (best: the stack's
``<prefix>-customer-data`` role, ``CustomerDataRoleArn`` in the stack's outputs), or against
``nudge local`` with ``--endpoint-url``. Exit codes: 0 done, 1 a failure (AWS, or an erasure not
finished in time), 2 a usage or setup problem, 3 the customer is unknown (Nudge holds nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..settings import SettingsError, StackSettings
from ..timefmt import iso, parse_iso
from . import aws

UNKNOWN_EXIT = 3
DEFAULT_WAIT_SECONDS = 60.0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix", help="the stack's resource prefix (default: cdk.json's, else nudge)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--endpoint-url", help="an AWS-compatible endpoint, e.g. nudge local's")
    parser.add_argument("--cdk-json", default="cdk.json", type=Path, help="where the stack's settings are")


def register(commands: Any) -> None:
    explain = commands.add_parser(
        "explain",
        help="why a customer did or did not get a rule's message",
        description=(
            "For each rule (or --rule): its pending wait and when it is due, its latest decisions with their reasons "
            "(the state's decision log: armed, fired, cancelled by which unless event, suppressed by consent, cap, "
            "quiet hours, audience or cooldown), and, for a rule with nothing pending, its `when` judged condition by "
            "condition at the customer's latest event, by the engine's own conditions. Reads the customer's state "
            "(the tables' items) and the rules in --rules: use the rules you deployed."
        ),
    )
    explain.add_argument("customer_id")
    explain.add_argument("--rule", help="only this rule")
    explain.add_argument("--rules", default="rules", type=Path, help="rule folder (default: rules)")
    explain.add_argument("--json", action="store_true", help="the same, as one JSON document")
    explain.add_argument(
        "--at",
        help="judge the conditions at this instant (ISO 8601, or 'now') instead of at the customer's latest event",
    )
    _common(explain)
    explain.set_defaults(run=run_explain)

    export = commands.add_parser(
        "export",
        help="print everything Nudge holds about a customer, as JSON (a data-subject access request)",
        description=(
            "One JSON document: the profile and each consent's history, the stored events, pending waits, held "
            "sends, decisions, and every activation with its delivery status, attempts and message events."
        ),
    )
    export.add_argument("customer_id")
    export.add_argument("--output", type=Path, help="write the document to this file instead of stdout")
    _common(export)
    export.set_defaults(run=run_export)

    erase = commands.add_parser(
        "erase",
        help="erase everything Nudge holds about a customer (GDPR/CCPA)",
        description=(
            "Puts an erasure_requested event on the customer's stream; the evaluator then deletes the state, the "
            "profile and consent history, the pending schedules and the activations, in order with the customer's "
            "other events, and leaves a tombstone (a hash of the id and the erasure time) so that an event from "
            "before the erasure that arrives later is dropped. Waits until it is done (--wait). Idempotent."
        ),
    )
    erase.add_argument("customer_id")
    erase.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help=f"seconds to wait for the evaluator to finish (default: {DEFAULT_WAIT_SECONDS:g}; 0: do not wait)",
    )
    _common(erase)
    erase.set_defaults(run=run_erase)

    audit = commands.add_parser(
        "audit",
        help="list the audit trail of explain, export and erase",
        description="Who looked at or erased which customer, when, and how it ended (erasures show the id's hash).",
    )
    audit.add_argument("--since", default="30d", help="ISO 8601 time or a duration back from now (default: 30d)")
    audit.add_argument("--json", action="store_true", help="one JSON object per record")
    _common(audit)
    audit.set_defaults(run=run_audit)


def _settings(args: argparse.Namespace) -> StackSettings:
    """The stack's settings from cdk.json when there is one (the prefix, the audit retention)."""
    path: Path = args.cdk_json
    context: Any = None
    if path.exists():
        try:
            context = json.loads(path.read_text(encoding="utf-8")).get("context", {}).get("nudge")
        except (OSError, ValueError) as exc:
            raise SettingsError([f"{path}: cannot read settings ({exc})"]) from None
    settings = StackSettings.from_context(context)
    return settings.model_copy(update={"prefix": args.prefix}) if args.prefix else settings


def _tools(args: argparse.Namespace, rules: Path | None = None) -> Any:
    from ..customer_data import CustomerDataTools  # noqa: PLC0415 - boto3 only for these commands
    from ..engine import Engine, load_plan  # noqa: PLC0415

    settings = _settings(args)
    engine = Engine(load_plan(rules)) if rules is not None else None  # only explain judges rules
    session = aws.session(args.region, args.endpoint_url)
    return CustomerDataTools.from_session(
        session,
        settings.names,
        engine,
        endpoint_url=args.endpoint_url,
        audit_retention_days=settings.audit_retention_days,
    )


def _fail(command: str, exc: Exception) -> int:
    from ..customer_data import UnknownCustomer  # noqa: PLC0415

    if isinstance(exc, UnknownCustomer):
        print(f"nudge {command}: {exc}", file=sys.stderr)
        return UNKNOWN_EXIT
    if isinstance(exc, SettingsError | ValueError):
        print(f"nudge {command}: {exc}", file=sys.stderr)
        return 2
    print(f"nudge {command} failed: {exc}", file=sys.stderr)
    return 1


def run_explain(args: argparse.Namespace) -> int:
    try:
        at = None if args.at is None else _instant(args.at)
    except ValueError as exc:
        print(f"nudge explain: --at {args.at!r}: {exc}", file=sys.stderr)
        return 2
    try:
        explanation = _tools(args, args.rules).explain(args.customer_id, args.rule, at)
    except aws.AwsSetupError:
        raise
    except Exception as exc:
        return _fail("explain", exc)
    if args.json:
        print(json.dumps(explanation.as_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(explanation.lines()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    try:
        document = _tools(args).export(args.customer_id)
    except aws.AwsSetupError:
        raise
    except Exception as exc:
        return _fail("export", exc)
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {len(document['events'])} events, {len(document['activations'])} activations")
    else:
        sys.stdout.write(text)
    return 0


def run_erase(args: argparse.Namespace) -> int:
    try:
        result = _tools(args).erase(args.customer_id, wait_seconds=args.wait)
    except aws.AwsSetupError:
        raise
    except Exception as exc:
        return _fail("erase", exc)
    found = result.summary()
    if result.outcome == "already_erased":
        print(f"customer {args.customer_id} was already erased at {iso(result.erased_at or 0)}: nothing more held")
        return 0
    if result.outcome == "erased":
        print(f"erased customer {args.customer_id} at {iso(result.erased_at or 0)} (held: {found})")
        return 0
    if result.outcome == "requested":
        print(f"erasure of {args.customer_id} requested on the stream (held: {found}); not waited for")
        return 0
    print(
        f"nudge erase: the erasure of {args.customer_id} was requested but is not done after {args.wait:g} s: it stays "
        "on the stream and the evaluator retries it; check its errors, then run nudge erase again to see it done",
        file=sys.stderr,
    )
    return 1


def _instant(text: str) -> int:
    from ..clock import WALL_CLOCK  # noqa: PLC0415

    return WALL_CLOCK.now_ms() if text == "now" else parse_iso(text)


def _since(text: str) -> int:
    from ..clock import WALL_CLOCK  # noqa: PLC0415
    from ..engine import parse_duration  # noqa: PLC0415

    try:
        return WALL_CLOCK.now_ms() - parse_duration(text)  # 30d: that long back from now
    except ValueError:
        return parse_iso(text if "T" in text else f"{text}T00:00:00Z")  # a day, or an instant


def run_audit(args: argparse.Namespace) -> int:
    try:
        since = _since(args.since)
    except ValueError as exc:
        print(f"nudge audit: --since {args.since!r}: {exc}", file=sys.stderr)
        return 2
    try:
        records = _tools(args).audit_since(since)
    except aws.AwsSetupError:
        raise
    except Exception as exc:
        return _fail("audit", exc)
    if args.json:
        for record in records:
            print(json.dumps({**record.__dict__, "at": iso(record.at)}, ensure_ascii=False))
        return 0
    if not records:
        print(f"no audit records since {iso(since)}")
        return 0
    for record in records:
        detail = f"  ({record.detail})" if record.detail else ""
        print(
            f"{iso(record.at)}  {record.action:<7}  {record.outcome:<16}  {record.customer}  {record.principal}{detail}"
        )
    return 0
