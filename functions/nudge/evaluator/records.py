"""Kinesis record payloads: customer events from SDKs, and timer events from the Scheduler.

A timer is put back onto the events stream by EventBridge Scheduler with the customer id as the
partition key, so it is read in order with that customer's events by the one evaluator that owns
the shard. Its payload names the arming it was set for (``arm``), which makes stale timers no-ops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..contracts import MAX_EVENT_BYTES, Event, EventError, Timer, parse_event

TIMER_TYPE = "nudge.timer"


@dataclass(frozen=True)
class InputRecord:
    """One stream record as the evaluator sees it (from Lambda's event, or the local poller)."""

    sequence_number: str
    partition_key: str
    data: bytes
    arrival_ms: int = 0


@dataclass(frozen=True)
class TimerRecord:
    timer: Timer


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be evaluated, with a reason that is safe to log (no payload values)."""

    record: InputRecord
    reason: str


def encode_timer(timer: Timer) -> str:
    """The Scheduler target's ``Input``: the JSON that lands on the stream when the wait is over."""
    return json.dumps(
        {
            "type": TIMER_TYPE,
            "v": 1,
            "customer_id": timer.customer_id,
            "rule": timer.rule,
            "key": timer.key,
            "arm": timer.arm,
            "due": timer.due,
        },
        separators=(",", ":"),
    )


def _decode_timer(data: dict[str, Any]) -> Timer:
    try:
        timer = Timer(
            customer_id=str(data["customer_id"]),
            rule=str(data["rule"]),
            key=None if data.get("key") is None else str(data["key"]),
            arm=int(data["arm"]),
            due=int(data["due"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(f"malformed timer: {type(exc).__name__} on {exc}") from None
    return timer


def decode_record(record: InputRecord) -> Event | TimerRecord | Rejected:
    """Decode one record; never raises: a bad record becomes ``Rejected`` with its reason."""
    if len(record.data) > MAX_EVENT_BYTES:
        return Rejected(record, f"record is {len(record.data)} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        decoded = json.loads(record.data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Rejected(record, "not JSON")
    try:
        if isinstance(decoded, dict) and decoded.get("type") == TIMER_TYPE:
            timer = _decode_timer(decoded)
            if timer.customer_id != record.partition_key:
                return Rejected(record, "timer partition key differs from its customer id")
            return TimerRecord(timer)
        event = parse_event(decoded)
    except EventError as exc:
        return Rejected(record, exc.reason)
    if event.customer_id != record.partition_key:
        # Ordering per customer relies on the partition key: a mismatch would let two evaluators
        # write the same customer, so the record is refused rather than silently mis-ordered.
        return Rejected(record, "partition key differs from customer_id")
    return event
