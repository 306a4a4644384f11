"""``nudge redrive``: put parked firings (or any dead-letter queue's messages) back to work."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import ResourceNames


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "redrive",
        help="move messages from a dead-letter queue back to its queue",
        description=(
            "Move firings parked in the firings DLQ back to the firings queue, after fixing what parked "
            "them (a template, a sender identity). Delivery is idempotent on the firing id, so a firing "
            "that was already sent is not sent again."
        ),
    )
    parser.add_argument("--prefix", default="nudge", help="the stack's resource prefix (default: nudge)")
    parser.add_argument("--from-queue", help="queue name or URL to drain (default: <prefix>-firings-dlq)")
    parser.add_argument("--to-queue", help="queue name or URL to refill (default: <prefix>-firings)")
    parser.add_argument("--max", type=int, default=None, help="move at most this many messages")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--endpoint-url", help="an AWS-compatible endpoint, e.g. nudge local's")
    parser.set_defaults(run=run)


def _url(client: Any, name_or_url: str) -> str:
    if name_or_url.startswith(("https://", "http://")):
        return name_or_url
    return str(client.get_queue_url(QueueName=name_or_url)["QueueUrl"])


def run(args: argparse.Namespace) -> int:
    # Imported here so that `nudge validate` and `nudge replay` never load the AWS SDK.
    import boto3  # noqa: PLC0415

    from ..adapters.sqs import redrive  # noqa: PLC0415

    names = ResourceNames(args.prefix)
    client = boto3.session.Session(region_name=args.region).client("sqs", endpoint_url=args.endpoint_url)
    try:
        source = _url(client, args.from_queue or names.firings_dlq)
        target = _url(client, args.to_queue or names.firings_queue)
        moved = redrive(client, source, target, args.max)
    except Exception as exc:  # botocore errors, missing queues: say what and stop
        print(f"redrive failed: {exc}", file=sys.stderr)
        return 1
    print(f"moved {moved} message(s) from {source} to {target}")
    return 0
