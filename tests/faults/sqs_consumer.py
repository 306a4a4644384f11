"""Lambda's SQS event source for the delivery function, over moto's SQS, on the virtual clock.

A poll is one ``ReceiveMessage`` of up to the batch size (10, as ``infra/delivery.py`` deploys) with
every system and message attribute; the messages go to the function as Lambda's SQS event
(``ApproximateReceiveCount`` among the attributes: the handler passes it as the attempt). Then:

- the invocation returned: every message not listed in ``batchItemFailures`` is deleted
  (``ReportBatchItemFailures``); a listed one stays in flight until its visibility timeout ends,
  which the handler may have changed with ``ChangeMessageVisibility`` (its backoff);
- it failed (an exception, a ``ProcessDeath``, a timeout): nothing is deleted; every message of the
  receive comes back when its visibility timeout ends.

Visibility, receive counts and the redrive policy (``maxReceiveCount`` from ``queue_settings``,
``max_delivery_attempts + 2``, moving a message to the firings DLQ on the receive after its last)
are moto's own logic, run on the virtual clock: moto keeps them on the wall clock, so
``virtual_time`` switches moto's SQS to virtual time rather than this module re-implementing them.
When nothing is visible, the next wake is the earliest ``visible_at`` among in-flight messages,
read from moto's model of the queue.

SQS delivers at least once: ``duplicate_rate`` hands a share of received messages to a second
invocation as well (a second poller that received the same message), before the first deletes it.

Known gaps against AWS: one poller (Lambda scales to several concurrent batches), no long-poll
wait, no batching window (delivery deploys none), no ``maxConcurrency``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from .lambda_runtime import Function
from .moto_stack import REGION
from .virtual_time import VirtualTime

BATCH_SIZE = 10
"""``infra/delivery.py``: ``SqsEventSource(queue, batch_size=10, report_batch_item_failures=True)``."""


@dataclass
class SqsEventSource:
    sqs: Any
    queue_url: str
    queue_model: Any
    """moto's model of the queue (``MotoStack.sqs_queue``): for the next visibility deadline only."""
    function: Function
    time: VirtualTime
    batch_size: int = BATCH_SIZE
    duplicate_rate: float = 0.0
    seed: int = 0
    receives: int = 0
    duplicates: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def queue_arn(self) -> str:
        return str(self.queue_model.queue_arn)

    def next_wake(self) -> int | None:
        """Now if a message is visible; else when the first in-flight one comes back (``None``: empty)."""
        messages = list(self.queue_model._messages)
        if not messages:
            return None
        now = self.time.now_ms()
        return min(now if message.visible else int(message.visible_at) + 1 for message in messages)

    def idle(self) -> bool:
        return not self.queue_model._messages

    def step(self, now_ms: int) -> bool:
        """One receive and one invocation, if anything is visible; True if so."""
        if not any(message.visible for message in self.queue_model._messages):
            return False  # what ReceiveMessage would answer, without the round trip
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        self.receives += 1
        event = {"Records": [self._record(message) for message in messages]}
        outcome = self.function.invoke(event)
        twins = [m for m in messages if self.duplicate_rate and self._rng.random() < self.duplicate_rate]
        if twins:
            self.duplicates += len(twins)
            self.function.invoke({"Records": [self._record(message) for message in twins]})
        if outcome.failed:
            return True
        response = outcome.response if isinstance(outcome.response, dict) else {}
        failed = {str(item.get("itemIdentifier")) for item in response.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return True

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """One message as Lambda's SQS event carries it."""
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": attributes,
            "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # SQS's own checksum of the body
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }
