"""SQS queues: the evaluator's firings and rejected records, and delivery's view of the firings queue."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..contracts import MAX_EVENT_BYTES, Firing, encode_firing
from ..evaluator import Rejected

SEND_BATCH_LIMIT = 10


def _send_batches(client: Any, queue_url: str, entries: list[dict[str, Any]]) -> set[str]:
    """SendMessageBatch, 10 entries a call; return the ids of entries that failed."""
    failed: set[str] = set()
    for start in range(0, len(entries), SEND_BATCH_LIMIT):
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + SEND_BATCH_LIMIT])
        failed.update(entry["Id"] for entry in response.get("Failed", []))
    return failed


class SqsFiringSink:
    """``FiringSink`` over the firings queue; the body is the contract's ``encode_firing``."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, firings: Sequence[Firing]) -> list[Firing]:
        entries = [
            {
                "Id": str(index),
                "MessageBody": encode_firing(firing),
                "MessageAttributes": {
                    "rule": {"DataType": "String", "StringValue": firing.rule},
                    "channel": {"DataType": "String", "StringValue": firing.channel},
                },
            }
            for index, firing in enumerate(firings)
        ]
        failed = _send_batches(self.client, self.queue_url, entries)
        return [firings[int(entry_id)] for entry_id in sorted(failed, key=int)]


PARKED_EXCERPT_BYTES = 4096
"""How much of a record too large to be an event is kept in its rejected-events message."""


def rejection_body(item: Rejected) -> dict[str, Any]:
    """The rejected-events message: the reason, where the record was, and the record itself.

    A record up to the event size limit is kept whole (base64); a larger one only as its first
    4 KiB, its size and its SHA-256, so the message always fits SQS and the record can still be
    found on the stream (by sequence number) and recognized (by hash).
    """
    data = item.record.data
    body: dict[str, Any] = {
        "reason": item.reason,
        "sequence_number": item.record.sequence_number,
        "partition_key": item.record.partition_key,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if len(data) <= MAX_EVENT_BYTES:
        body["data_base64"] = base64.b64encode(data).decode()
    else:
        body["excerpt_base64"] = base64.b64encode(data[:PARKED_EXCERPT_BYTES]).decode()
    return body


class SqsDeadLetters:
    """``DeadLetters`` over the rejected-events queue: the record, base64, beside the reason."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def reject(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        """Park each rejected record with its reason; return those that could not be parked."""
        entries = [
            {
                "Id": str(index),
                "MessageBody": json.dumps(rejection_body(item)),
                "MessageAttributes": {"reason": {"DataType": "String", "StringValue": item.reason[:256]}},
            }
            for index, item in enumerate(rejected)
        ]
        failed = _send_batches(self.client, self.queue_url, entries)
        return [rejected[int(entry_id)] for entry_id in sorted(failed, key=int)]


class SqsFiringQueue:
    """``FiringQueue`` for delivery: the firings queue's visibility, and its dead-letter queue."""

    def __init__(self, client: Any, queue_url: str, dead_letter_url: str) -> None:
        self.client = client
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url

    def park(self, body: str, reason: str, outcome: str | None = None) -> None:
        attributes = {"reason": {"DataType": "String", "StringValue": reason[:1000]}}
        if outcome:
            attributes["outcome"] = {"DataType": "String", "StringValue": outcome}
        self.client.send_message(QueueUrl=self.dead_letter_url, MessageBody=body, MessageAttributes=attributes)

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def requeue(self, body: str, attributes: Mapping[str, str], seconds: int) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            DelaySeconds=seconds,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )


@dataclass(frozen=True)
class Redriven:
    moved: int
    kept_unknown: int = 0
    """Firings parked as outcome unknown and left in the dead-letter queue (no ``resend_unknown``)."""


def redrive(
    client: Any, from_url: str, to_url: str, limit: int | None = None, resend_unknown: bool = False
) -> Redriven:
    """Move messages from a dead-letter queue back to its source queue.

    Each message is sent before it is deleted, so a crash can duplicate a message but never lose
    one; delivery's idempotency on the firing id makes such a duplicate harmless. A message keeps
    its ``outcome`` attribute (what is known of its send). One parked as outcome ``unknown`` may
    already be in the customer's inbox: it stays where it is unless ``resend_unknown`` says a
    person decided to send it anyway, and then it carries that decision to delivery.
    """
    moved = 0
    kept: list[str] = []
    while limit is None or moved < limit:
        batch = min(SEND_BATCH_LIMIT, limit - moved) if limit is not None else SEND_BATCH_LIMIT
        messages = client.receive_message(
            QueueUrl=from_url, MaxNumberOfMessages=batch, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        going = []
        for message in messages:
            attributes = {
                name: value
                for name, value in message.get("MessageAttributes", {}).items()
                if name in ("outcome", "resend_unknown")
            }
            if attributes.get("outcome", {}).get("StringValue") == "unknown":
                if not resend_unknown:
                    kept.append(message["ReceiptHandle"])
                    continue
                attributes["resend_unknown"] = {"DataType": "String", "StringValue": "true"}
            going.append((message, attributes))
        entries = [
            {"Id": str(i), "MessageBody": m["Body"], **({"MessageAttributes": a} if a else {})}
            for i, (m, a) in enumerate(going)
        ]
        failed = _send_batches(client, to_url, entries) if entries else set()
        done = [m for i, (m, _) in enumerate(going) if str(i) not in failed]
        if done:
            client.delete_message_batch(
                QueueUrl=from_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        if failed:
            raise RuntimeError(f"{len(failed)} message(s) could not be sent back; they stay in the dead-letter queue")
    for receipt_handle in kept:  # visible again at once, for the next redrive or a person
        client.change_message_visibility(QueueUrl=from_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)
    return Redriven(moved, len(kept))
