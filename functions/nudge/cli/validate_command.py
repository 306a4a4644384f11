"""``nudge validate [PATH ...]``: check rule files and their templates, and print problems as file:line messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..delivery.validation import configured_webhooks, validate_paths

DEFAULT_SETTINGS = "cdk.json"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="check rule files and their templates; exit 1 on any error",
        description=(
            "Check rule files (a folder or files) and the message templates in the templates folder beside "
            "them, and report each problem as file:line: message."
        ),
    )
    parser.add_argument("paths", nargs="*", default=["rules"], help="rule folders or files (default: rules)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument(
        "--settings",
        metavar="CDK_JSON",
        help=(
            'the cdk.json whose "nudge".webhooks the rules\' webhook destinations must name '
            "(default: ./cdk.json if there is one; without it, destinations are not checked)"
        ),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = args.settings or (DEFAULT_SETTINGS if Path(DEFAULT_SETTINGS).is_file() else None)
    try:
        webhooks = configured_webhooks(settings) if settings else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = validate_paths(args.paths, webhooks)
    for diagnostic in sorted(result.diagnostics, key=lambda d: (d.file, d.line)):
        print(diagnostic, file=sys.stderr)
    errors = len(result.errors) + (len(result.warnings) if args.strict else 0)
    if errors:
        print(f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)", file=sys.stderr)
        return 1
    rules = result.rules.rules
    enabled = sum(1 for rule in rules if rule.enabled)
    suffix = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    print(f"{len(rules)} rule(s) valid ({enabled} enabled){suffix}")
    return 0
