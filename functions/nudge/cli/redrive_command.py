"""``nudge redrive``: put parked firings (or any dead-letter queue's messages) back to work."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import ResourceNames
from . import aws


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "redrive",
        help="move messages from a dead-letter queue back to its queue",
        description=(
            "Move firings parked in the firings DLQ back to the firings queue, after fixing what parked "
            "them (a template, a sender identity). Delivery is idempotent on the firing id, so a firing "
            "that was already sent is not sent again. "
            "With --evaluator: put the stream records of every batch the evaluator's event source mapping gave "
            "up on (their shard and sequence range, in <prefix>-evaluator-dlq) back on the events stream, same "
            "partition key and data, and delete each message once all its records are back. This is idempotent: "
            "the evaluator drops an event whose event_id it has seen within the dedupe window (rules/policy.yaml: "
            "24 hours after the event's timestamp by default), and a timer for a wait already decided does "
            "nothing. So redrive within that window for it to be exact: with the default max_record_age "
            "(12 hours), within 12 hours of the batch being given up. Records older than the stream's retention "
            "(7 days by default) are gone: each such range is reported as lost with its shard and sequence "
            "numbers, its message is kept, and the exit code is 1."
        ),
    )
    parser.add_argument("--prefix", default="nudge", help="the stack's resource prefix (default: nudge)")
    parser.add_argument("--from-queue", help="queue name or URL to drain (default: <prefix>-firings-dlq)")
    parser.add_argument("--to-queue", help="queue name or URL to refill (default: <prefix>-firings)")
    parser.add_argument("--max", type=int, default=None, help="move at most this many messages")
    parser.add_argument(
        "--resend-unknown",
        action="store_true",
        help="also send firings parked as 'outcome unknown' (an earlier attempt may have sent them): a person's call",
    )
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--endpoint-url", help="an AWS-compatible endpoint, e.g. nudge local's")
    parser.add_argument(
        "--evaluator",
        action="store_true",
        help="put the records of batches in <prefix>-evaluator-dlq (or --from-queue) back on the events stream",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --evaluator: read and fetch the ranges, report, change nothing"
    )
    parser.set_defaults(run=run)


def _url(client: Any, name_or_url: str) -> str:
    if name_or_url.startswith(("https://", "http://")):
        return name_or_url
    return str(client.get_queue_url(QueueName=name_or_url)["QueueUrl"])


def run(args: argparse.Namespace) -> int:
    if args.evaluator or args.dry_run:
        return run_evaluator(args)
    # Imported here so that `nudge validate` and `nudge replay` never load the AWS SDK.
    from ..adapters.sqs import redrive  # noqa: PLC0415

    names = ResourceNames(args.prefix)
    client = aws.session(args.region, args.endpoint_url).client("sqs", endpoint_url=args.endpoint_url)
    try:
        source = _url(client, args.from_queue or names.firings_dlq)
        target = _url(client, args.to_queue or names.firings_queue)
        done = redrive(client, source, target, args.max, resend_unknown=args.resend_unknown)
    except Exception as exc:  # botocore errors, missing queues: say what and stop
        print(f"redrive failed: {exc}", file=sys.stderr)
        return 1
    print(f"moved {done.moved} message(s) from {source} to {target}")
    if done.kept_unknown:
        print(
            f"kept {done.kept_unknown} firing(s) whose send's outcome is unknown: each may already have reached its "
            "customer. Check the provider's records (the activations table has each attempt), then run again with "
            "--resend-unknown to send them anyway."
        )
    return 0


def run_evaluator(args: argparse.Namespace) -> int:
    """``nudge redrive --evaluator``: the evaluator DLQ's ranges back onto the stream."""
    if not args.evaluator:
        print("--dry-run needs --evaluator", file=sys.stderr)
        return 2
    if args.to_queue or getattr(args, "resend_unknown", False):
        print("--to-queue and --resend-unknown are for firings; --evaluator refills the stream", file=sys.stderr)
        return 2
    from botocore.config import Config  # noqa: PLC0415

    from ..adapters.stream_redrive import redrive_evaluator_dlq  # noqa: PLC0415

    names = ResourceNames(args.prefix)
    session = aws.session(args.region, args.endpoint_url)
    retries = Config(retries={"mode": "standard", "max_attempts": 10})  # GetRecords: 5 calls a second per shard
    sqs = session.client("sqs", endpoint_url=args.endpoint_url, config=retries)
    kinesis = session.client("kinesis", endpoint_url=args.endpoint_url, config=retries)
    try:
        source = _url(sqs, args.from_queue or names.evaluator_dlq)
        done = redrive_evaluator_dlq(sqs, kinesis, source, limit=args.max, dry_run=args.dry_run)
    except Exception as exc:  # botocore errors, a missing queue or stream: say what and stop
        print(f"redrive failed: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(
            f"dry run: read {done.messages} message(s) from {source}; would put {done.records} record(s) back on "
            f"the stream and delete {done.redriven} message(s); changed nothing"
        )
    else:
        print(
            f"read {done.messages} message(s) from {source}; put {done.records} record(s) back on the stream; "
            f"deleted {done.redriven} message(s)"
        )
    for lost in done.lost:
        print(f"lost: {lost.batch.describe()}: {lost.reason}; its message stays in the queue", file=sys.stderr)
    for problem in (*done.unreadable, *done.failed):
        print(f"kept: {problem}", file=sys.stderr)
    if done.complete:
        return 0
    print(
        f"{len(done.lost)} range(s) no longer wholly on the stream, {len(done.unreadable)} unreadable and "
        f"{len(done.failed)} failed message(s): kept in the queue",
        file=sys.stderr,
    )
    return 1
