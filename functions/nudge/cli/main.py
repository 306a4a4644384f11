"""``nudge`` entry point: one sub-command per module, dispatched by argparse."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import (
    bench_command,
    customer_command,
    local_command,
    preview_command,
    redrive_command,
    replay_command,
    validate_command,
)
from .aws import AwsSetupError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge",
        description="Behavioural triggers as config files: validate rules and replay events through them.",
    )
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate_command.register(commands)
    replay_command.register(commands)
    redrive_command.register(commands)
    preview_command.register(commands)
    local_command.register(commands)
    bench_command.register(commands)
    customer_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except AwsSetupError as exc:  # no region or credentials: what to set, not botocore's traceback
        print(f"nudge {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
