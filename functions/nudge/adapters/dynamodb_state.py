"""Customer state in DynamoDB: one item per customer, read in batches, written conditionally.

Item layout: ``pk`` (customer id), ``state`` (binary: the engine's JSON, zlib-compressed when
that is smaller), ``version`` (number, for optimistic concurrency) and ``expires_at`` (TTL,
seconds). Compressing matters for cost: write units are billed per KiB of item.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine import CustomerState
from ..evaluator.ports import StateTooLarge, StoredState, VersionConflict
from ..settings import TTL_ATTRIBUTE

BATCH_GET_LIMIT = 100
STATE_BUDGET_BYTES = 350_000
"""The largest ``state`` attribute written: DynamoDB's item limit is 400 KB, names and the other
attributes included; the rest is margin. A larger state is trimmed first (``Engine.fit``)."""
_RAW, _ZLIB = b"j", b"z"


def encode_state(state: CustomerState) -> bytes:
    raw = state.encode()
    if len(raw) > 200:
        packed = zlib.compress(raw, 6)
        if len(packed) < len(raw):
            return _ZLIB + packed
    return _RAW + raw


def decode_state(blob: bytes) -> CustomerState:
    marker, body = blob[:1], blob[1:]
    return CustomerState.decode(zlib.decompress(body) if marker == _ZLIB else body)


class DynamoDBStateStore:
    """``StateStore`` over a DynamoDB table (low-level client: no resource-layer overhead)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        max_attempts: int = 6,
        sleep: Any = time.sleep,
        budget: int = STATE_BUDGET_BYTES,
    ) -> None:
        self.client = client
        self.budget = budget
        self.table_name = table_name
        self.max_attempts = max_attempts
        self.sleep = sleep

    def load_many(self, customer_ids: Sequence[str]) -> Mapping[str, StoredState]:
        """BatchGetItem, 100 keys a call, strongly consistent (we are the only writer and must
        see our own last write), retrying unprocessed keys with backoff.

        A key still unprocessed after the last attempt is left out of the answer: that customer
        alone fails and is redelivered, while the others go on. (Failing the whole batch stalled
        the shard under heavy throttling: a batch of k customers then loads with probability
        (1 - p^6)^k.)
        """
        found: dict[str, StoredState] = {}
        unread: set[str] = set()
        unique = list(dict.fromkeys(customer_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            chunk = unique[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"pk": {"S": customer_id}} for customer_id in chunk],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, #s, version",
                    "ExpressionAttributeNames": {"#s": "state"},
                }
            }
            for attempt in range(self.max_attempts):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    customer_id = item["pk"]["S"]
                    found[customer_id] = StoredState(decode_state(item["state"]["B"]), int(item["version"]["N"]))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt < self.max_attempts - 1:
                    self.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                unread.update(key["pk"]["S"] for key in request[self.table_name]["Keys"])
        return {cid: found.get(cid) or StoredState(CustomerState(cid), None) for cid in unique if cid not in unread}

    def save(self, stored: StoredState, expires_at_s: int) -> None:
        state = stored.state
        key = {"pk": {"S": state.customer_id}}
        try:
            if state.is_empty():
                if stored.version is not None:
                    self.client.delete_item(
                        TableName=self.table_name,
                        Key=key,
                        ConditionExpression="version = :v",
                        ExpressionAttributeValues={":v": {"N": str(stored.version)}},
                    )
                    stored.version = None
                return
            blob = encode_state(state)
            if len(blob) > self.budget:
                raise StateTooLarge(len(blob), self.budget)
            item = {
                **key,
                "state": {"B": blob},
                "version": {"N": str((stored.version or 0) + 1)},
                TTL_ATTRIBUTE: {"N": str(expires_at_s)},
            }
            if stored.version is None:
                self.client.put_item(
                    TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
            else:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":v": {"N": str(stored.version)}},
                )
            stored.version = (stored.version or 0) + 1
        except self.client.exceptions.ConditionalCheckFailedException:
            raise VersionConflict(state.customer_id) from None

    def encoded_size(self, state: CustomerState) -> int:
        return len(encode_state(state))
