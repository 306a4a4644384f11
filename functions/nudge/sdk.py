"""The producer SDK: validate events where they are made, and put them on the Kinesis stream.

An event that the evaluator would reject is cheapest to fix in the application that made it, so
``track()`` validates the envelope with the engine's own model (``EventEnvelope``) and raises
``InvalidEventError`` naming the field; nothing invalid is ever sent. Valid events get a
time-ordered ``event_id`` and a UTC timestamp when the caller gives none, wait in a small buffer,
and go out with ``PutRecords`` (the customer id is the partition key, so each customer's events
land on one shard and are evaluated by one writer). Records that Kinesis reports as failed are retried on their own,
with exponential backoff and jitter; whatever still fails is never dropped quietly: ``flush()``
returns it in a ``FlushResult`` and, by default, raises ``DeliveryError`` carrying the records and
their error codes.

Usage::

    from nudge.sdk import Tracker

    with Tracker("nudge-events", region_name="eu-west-1") as tracker:
        tracker.identify("c-42", {"email": "ada@example.com", "first_name": "Ada"})
        tracker.track("c-42", "add_to_cart", {"sku": "SKU-1", "name": "Yoga mat", "price": 29.9})
    # leaving the block flushed the buffer; a DeliveryError there lists what did not arrive

The same code talks to AWS or to a local endpoint (moto server): pass ``endpoint_url=...``, a
boto3 ``session=...``, or a ready ``client=...``.
"""

from __future__ import annotations

import atexit
import json
import logging
import random
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from .contracts import (
    ENVELOPE_FIELDS,
    ERASURE_REQUESTED,
    IDENTIFY,
    MAX_EVENT_BYTES,
    MESSAGE_OPENED,
    EventEnvelope,
    validation_problems,
)
from .timefmt import iso, to_ms

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "BufferFullError",
    "DeliveryError",
    "EventIdGenerator",
    "FailedRecord",
    "FlushResult",
    "InvalidEventError",
    "Record",
    "Tracker",
    "TrackerError",
    "batches",
    "new_event_id",
]

# Kinesis PutRecords limits; record sizes count the data and the partition key.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Event ids


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # ascending ASCII, so text order is number order
_RANDOM_BITS = 80


class EventIdGenerator:
    """ULID-style ids: 48-bit epoch milliseconds then 80 random bits, 26 Crockford base32 chars.

    Ids sort (as text) in creation order, which keeps logs and replays readable, and are unique
    without coordination, which the evaluator's de-duplication by ``event_id`` needs. Within one
    millisecond (or if the clock steps back) the previous id's random part is incremented, so ids
    from this generator are strictly increasing even when made faster than the clock ticks.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        randbits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock_ms = clock_ms
        self._randbits = randbits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> str:
        with self._lock:
            ms = self._clock_ms()
            if ms > self._last_ms:
                randomness = self._randbits(_RANDOM_BITS)
            else:
                ms, randomness = self._last_ms, self._last_random + 1
                if randomness >> _RANDOM_BITS:  # 2**80 ids in one ms: borrow the next millisecond
                    ms, randomness = ms + 1, self._randbits(_RANDOM_BITS)
            self._last_ms, self._last_random = ms, randomness
        value = (ms << _RANDOM_BITS) | randomness
        return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


new_event_id = EventIdGenerator()
"""The process-wide generator, shared by every ``Tracker`` so all their ids are ordered."""

# ---------------------------------------------------------------------------------------------
# Records, results and errors


@dataclass(frozen=True)
class Record:
    """One encoded event, exactly as it is put on the stream."""

    event_id: str
    partition_key: str
    data: bytes

    @property
    def size(self) -> int:
        """What Kinesis counts against its limits: data plus the UTF-8 partition key."""
        return len(self.data) + len(self.partition_key.encode())


@dataclass(frozen=True)
class FailedRecord:
    """A record that was not delivered, with the last error Kinesis (or the call) gave for it."""

    record: Record
    error_code: str
    error_message: str = ""


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: records delivered, records that were not, and PutRecords calls made."""

    sent: int = 0
    failed: tuple[FailedRecord, ...] = ()
    calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


class TrackerError(Exception):
    """Base class of the SDK's errors."""


class InvalidEventError(TrackerError, ValueError):
    """An event the evaluator would reject; raised by ``track()``/``identify()``, never sent.

    ``field`` is the first offending field (``fields`` lists all of them) and ``reason`` says
    why, e.g. ``timestamp: timestamp needs a UTC offset (Z or +HH:MM)...``. Like the engine's
    errors it never echoes property values, so it is safe to log.
    """

    def __init__(self, fields: Sequence[str], reason: str) -> None:
        super().__init__(reason)
        self.fields = tuple(fields)
        self.field = self.fields[0]
        self.reason = reason


class DeliveryError(TrackerError):
    """Records still undelivered after the retries; ``failed`` holds them with their error codes.

    The records are handed to the caller here (they are no longer buffered), so they can be
    logged, stored or re-sent: ``tracker.requeue(error.failed)``.
    """

    def __init__(self, result: FlushResult) -> None:
        codes = Counter(item.error_code for item in result.failed)
        summary = ", ".join(f"{code} x{count}" for code, count in codes.most_common())
        super().__init__(f"{len(result.failed)} event(s) not delivered ({summary}); {result.sent} delivered")
        self.result = result
        self.failed = result.failed


class BufferFullError(TrackerError):
    """The buffer holds ``max_buffer`` records, which means the stream has not been taking them.

    Raised instead of growing without bound (or dropping events) so the caller sees back-pressure.
    """


# ---------------------------------------------------------------------------------------------
# Encoding and batching


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused because they are not JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _encode(body: dict[str, Any]) -> bytes:
    try:
        return _dumps(body)
    except (TypeError, ValueError) as exc:  # ValueError covers NaN and lone surrogates
        bad = [name for name, value in body.items() if not _encodes(value)] or ["event"]
        raise InvalidEventError(bad, f"{bad[0]}: not JSON-encodable ({type(exc).__name__})") from None


def _encodes(value: Any) -> bool:
    try:
        _dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _describe(error: ValidationError) -> tuple[list[str], str]:
    problems = validation_problems(error, "event", ENVELOPE_FIELDS)  # the reasons parse_event gives
    return [where for where, _ in problems], "; ".join(f"{where}: {what}" for where, what in problems)


def batches(
    records: Sequence[Record], max_records: int = MAX_BATCH_RECORDS, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[Record]]:
    """Split records, in order, into PutRecords calls within Kinesis's count and size limits."""
    batch: list[Record] = []
    size = 0
    for record in records:
        if batch and (len(batch) >= max_records or size + record.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record.size
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------
# The tracker

_live: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _flush_live_trackers() -> None:
    """The single at-exit hook: flush the trackers still alive.

    It holds trackers weakly (a ``WeakSet``), so a tracker that was garbage-collected or closed
    leaves no hook behind. An exception cannot reach anyone at exit, so failures are logged with
    their event ids and error codes instead.
    """
    for tracker in list(_live):
        try:
            result = tracker.flush(raise_on_failure=False)
        except Exception:
            logger.exception("nudge: flushing events at exit failed")
            continue
        for item in result.failed:
            logger.error("nudge: event %s not delivered at exit: %s", item.record.event_id, item.error_code)


atexit.register(_flush_live_trackers)


class Tracker:
    """Buffers validated events for one stream and delivers them with ``PutRecords``.

    Thread-safe: ``track()`` may be called from many threads. The buffer has its own lock, held
    only briefly; flushes are serialised by a second lock so batches leave in the order they were
    buffered and ``track()`` in other threads is not blocked by the network unless it has to flush.

    Buffered records are sent when the buffer reaches ``flush_at`` records or ``flush_at_bytes``,
    on ``flush()``, when a ``with`` block ends, and at interpreter exit. If that automatic flush
    inside ``track()`` fails, it raises ``DeliveryError``; with ``raise_on_failure=False`` there is
    no one to hand the failures to, so they stay buffered for your next ``flush()`` to report,
    and ``max_buffer`` bounds how many may wait (``BufferFullError``).
    """

    def __init__(
        self,
        stream_name: str,
        *,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        flush_at: int = MAX_BATCH_RECORDS,
        flush_at_bytes: int = MAX_BATCH_BYTES,
        max_buffer: int = 10_000,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        raise_on_failure: bool = True,
        flush_at_exit: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is not None and (session is not None or endpoint_url is not None or region_name is not None):
            raise ValueError("pass either a ready client, or session/endpoint_url/region_name to build one")
        if not 1 <= flush_at <= max_buffer:
            raise ValueError(f"flush_at must be between 1 and max_buffer ({max_buffer})")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if client is None:
            client = (session or boto3.session.Session()).client(
                "kinesis", region_name=region_name, endpoint_url=endpoint_url
            )
        self.client = client
        self.stream_name = stream_name
        self.flush_at = flush_at
        self.flush_at_bytes = flush_at_bytes
        self.max_buffer = max_buffer
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.raise_on_failure = raise_on_failure
        self._sleep = sleep
        self._buffer: list[Record] = []
        self._buffer_bytes = 0
        self._buffer_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        if flush_at_exit:
            _live.add(self)

    # -- producing ------------------------------------------------------------------------------

    def track(
        self,
        customer_id: str,
        event: str,
        properties: dict[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Validate and buffer one event; return its ``event_id``.

        ``timestamp`` is when it happened (an aware ``datetime`` or ISO 8601 text with an offset;
        now, if omitted) and is sent as UTC with ``Z``. Pass ``event_id`` when re-sending an event,
        so the evaluator recognises the duplicate. Raises ``InvalidEventError`` naming the field.
        """
        if event == IDENTIFY:
            raise InvalidEventError(["event"], "event: use identify() for identify events (they carry traits)")
        body = {"properties": {} if properties is None else properties}
        return self._add(customer_id, event, body, timestamp, event_id)

    def identify(
        self,
        customer_id: str,
        traits: dict[str, Any],
        timestamp: datetime | str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Validate and buffer an ``identify`` event carrying profile ``traits`` (``None`` removes one).

        The profile is updated per trait by event time, so pass ``timestamp`` when the traits
        were learnt earlier than now. Returns the ``event_id``.
        """
        return self._add(customer_id, IDENTIFY, {"traits": traits}, timestamp, event_id)

    def request_erasure(self, customer_id: str, timestamp: datetime | str | None = None) -> str:
        """Ask Nudge to erase everything it holds about the customer (``erasure_requested``).

        It travels the customer's stream like any event, so the evaluator erases in order: what was
        sent before it goes, an event stamped at or before it that arrives later is dropped, and one
        stamped later starts a new customer. ``nudge erase`` sends this and waits for it to be done.
        """
        return self._add(customer_id, ERASURE_REQUESTED, {"properties": {}}, timestamp, None)

    def message_opened(
        self,
        customer_id: str,
        *,
        firing_id: str | None = None,
        rule: str | None = None,
        step: int | None = None,
        channel: str = "push",
        timestamp: datetime | str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Report that the customer opened a message: what an app sends when a push is tapped.

        End User Messaging Push reports nothing after the send, so the app is the only one who
        knows; pass the ``firing_id`` (and ``rule``, ``step``) the push carried in its data, so the
        open is recorded against its firing. An open is engagement: it stops the rule's escalation.
        Returns the ``event_id``; pass the same one when re-sending the same open.
        """
        properties: dict[str, Any] = {"channel": channel, "firing_id": firing_id, "rule": rule, "step": step}
        properties = {name: value for name, value in properties.items() if value is not None}
        return self.track(customer_id, MESSAGE_OPENED, properties, timestamp, event_id)

    def _add(
        self,
        customer_id: str,
        event: str,
        payload: dict[str, Any],
        timestamp: datetime | str | None,
        event_id: str | None,
    ) -> str:
        record = self._encode(customer_id, event, payload, timestamp, event_id)
        with self._buffer_lock:
            if self._closed:
                raise TrackerError("tracker is closed: events tracked now would never be sent")
            if len(self._buffer) >= self.max_buffer:
                raise BufferFullError(
                    f"{len(self._buffer)} events are waiting (max_buffer); the stream is not taking them"
                )
            self._buffer.append(record)
            self._buffer_bytes += record.size
            due = len(self._buffer) >= self.flush_at or self._buffer_bytes >= self.flush_at_bytes
        if due:
            self._auto_flush()
        return record.event_id

    @staticmethod
    def _encode(
        customer_id: str,
        event: str,
        payload: dict[str, Any],
        timestamp: datetime | str | None,
        event_id: str | None,
    ) -> Record:
        """The envelope, validated by the engine's model, then encoded as it will be sent."""
        if timestamp is None:
            timestamp = datetime.now(UTC)
        elif not isinstance(timestamp, datetime | str):
            raise InvalidEventError(["timestamp"], "timestamp: must be an aware datetime or ISO 8601 text")
        body = {
            "event_id": new_event_id() if event_id is None else event_id,
            "customer_id": customer_id,
            "event": event,
            "timestamp": timestamp,
            **payload,
        }
        try:
            envelope = EventEnvelope.model_validate(body)
        except ValidationError as exc:
            raise InvalidEventError(*_describe(exc)) from None
        body["timestamp"] = iso(to_ms(envelope.timestamp))
        data = _encode(body)
        record = Record(event_id=envelope.event_id, partition_key=customer_id, data=data)
        if len(data) > MAX_EVENT_BYTES or record.size > MAX_RECORD_BYTES:
            raise InvalidEventError(["event"], f"event: {len(data)} bytes encoded; the limit is {MAX_EVENT_BYTES}")
        return record

    # -- delivering -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records buffered and not yet sent."""
        with self._buffer_lock:
            return len(self._buffer)

    def flush(self, *, raise_on_failure: bool | None = None) -> FlushResult:
        """Send everything buffered; return what happened, raising ``DeliveryError`` on failures.

        Failed records leave the buffer with the result (or the exception): the caller decides
        what happens to them. ``raise_on_failure`` overrides the tracker's setting for this call.
        """
        with self._send_lock:
            result = self._send_buffer()
        if result.failed and (self.raise_on_failure if raise_on_failure is None else raise_on_failure):
            raise DeliveryError(result)
        return result

    def _auto_flush(self) -> None:
        with self._send_lock:
            result = self._send_buffer()
            if result.failed and not self.raise_on_failure:
                self.requeue(result.failed)
        if result.failed and self.raise_on_failure:
            raise DeliveryError(result)

    def requeue(self, failed: Sequence[FailedRecord | Record]) -> None:
        """Put records back at the front of the buffer (e.g. from ``DeliveryError.failed``)."""
        records = [item.record if isinstance(item, FailedRecord) else item for item in failed]
        with self._buffer_lock:
            self._buffer[:0] = records
            self._buffer_bytes += sum(record.size for record in records)

    def _send_buffer(self) -> FlushResult:
        """Take the whole buffer and send it (the caller holds the send lock)."""
        with self._buffer_lock:
            records, self._buffer, self._buffer_bytes = self._buffer, [], 0
        try:
            return self._send(records)
        except BaseException:
            # Interrupted half-way (e.g. KeyboardInterrupt): a re-sent duplicate is harmless, as the
            # evaluator ignores a repeated event_id, but a lost event is not; so keep them all.
            self.requeue(records)
            raise

    def _send(self, records: Sequence[Record]) -> FlushResult:
        sent = calls = 0
        failed: list[FailedRecord] = []
        for batch in batches(records):
            batch_calls, batch_failed = self._put_with_retries(batch)
            calls += batch_calls
            sent += len(batch) - len(batch_failed)
            failed += batch_failed
        return FlushResult(sent=sent, failed=tuple(failed), calls=calls)

    def _put_with_retries(self, batch: list[Record]) -> tuple[int, list[FailedRecord]]:
        """PutRecords, then again for only the records reported failed, with backoff and jitter.

        A call that raises has already been retried by botocore's own retry policy (throttling,
        5xx, connection errors), so its records are reported with the error's code, not retried.
        """
        pending = batch
        failures: list[FailedRecord] = []
        for attempt in range(self.max_attempts):
            if attempt:
                cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                self._sleep(random.uniform(0, cap))  # "full jitter": spread out retrying producers
            try:
                response = self.client.put_records(
                    StreamName=self.stream_name,
                    Records=[{"Data": record.data, "PartitionKey": record.partition_key} for record in pending],
                )
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, message = error.get("Code", "ClientError"), error.get("Message", str(exc))
                return attempt + 1, [FailedRecord(record, code, message) for record in pending]
            except BotoCoreError as exc:
                return attempt + 1, [FailedRecord(record, type(exc).__name__, str(exc)) for record in pending]
            if not response.get("FailedRecordCount"):
                return attempt + 1, []
            failures = [
                FailedRecord(record, entry["ErrorCode"], entry.get("ErrorMessage", ""))
                for record, entry in zip(pending, response["Records"], strict=True)
                if entry.get("ErrorCode")
            ] or [FailedRecord(record, "Unknown", "FailedRecordCount without ErrorCode") for record in pending]
            pending = [failure.record for failure in failures]
        return self.max_attempts, failures

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> FlushResult:
        """Flush, then refuse further events and drop the at-exit hook for this tracker."""
        with self._buffer_lock:
            self._closed = True
        _live.discard(self)
        return self.flush()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
