"""Kinesis record payloads: customer events from SDKs, and timer events from the Scheduler.

A timer is put back onto the events stream by EventBridge Scheduler with the customer id as the
partition key, so it is read in order with that customer's events by the one evaluator that owns
the shard. Its payload names the arming it was set for (``arm``), which makes stale timers no-ops,
and carries the evaluator's signature (``contracts.TimerKey``), which makes forged ones rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts import (
    MAX_EVENT_BYTES,
    ContractError,
    Event,
    Timer,
    TimerKey,
    decode_timer,
    is_timer,
    loads,
    parse_event,
)


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


def decode_record(record: InputRecord, timer_key: TimerKey | None = None) -> Event | TimerRecord | Rejected:
    """Decode one record with the contracts' strict decoder; never raises: a bad record becomes ``Rejected``.

    Replay and the SDK read envelopes through the same ``nudge.contracts`` functions, so a record
    the Lambda accepts is exactly one replay accepts, with the same values (NaN refused, integers
    beyond 64 bits read as floats, the last of duplicate keys kept). A timer is accepted only when
    ``timer_key`` signed it.
    """
    if len(record.data) > MAX_EVENT_BYTES:
        return Rejected(record, f"record is {len(record.data)} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        decoded = loads(record.data)
        if is_timer(decoded):
            timer = decode_timer(decoded, timer_key)
            if timer.customer_id != record.partition_key:
                return Rejected(record, "timer partition key differs from its customer id")
            return TimerRecord(timer)
        event = parse_event(decoded)
    except ContractError as exc:
        return Rejected(record, exc.reason)
    if event.customer_id != record.partition_key:
        # Ordering per customer relies on the partition key: a mismatch would let two evaluators
        # write the same customer, so the record is refused rather than silently mis-ordered.
        return Rejected(record, "partition key differs from customer_id")
    return event
