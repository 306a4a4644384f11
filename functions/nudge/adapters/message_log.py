"""Message events against their firings, in the activations table: "did she open it?".

The evaluator writes these (``BatchEvaluator``, for every message event on the stream that names a
``firing_id``), so an open reported by an app through the SDK is recorded like one SES reports.
Per event: an item ``sk = "feedback#<event id>"`` (its status, time, channel and, where the channel
said, reason, url or bounce type), and the firing's head (``sk = "firing"``, ``activations.py``)
moves up to the furthest status so far (``FEEDBACK_RANKS``). Kept apart from ``activations.py`` so
the evaluator loads nothing of delivery.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..contracts import FEEDBACK_RANKS, MESSAGE_STATUSES, SENT_STATUS, Event
from ..settings import BY_CUSTOMER_INDEX, TTL_ATTRIBUTE
from ..timefmt import iso

DAY_MS = 86_400_000

ADVANCING = {f":a{index}": status for index, status in enumerate([SENT_STATUS, *FEEDBACK_RANKS])}
"""The condition's placeholders for the statuses a message event may move a firing's head on from."""


def customer_firings(
    client: Any, table_name: str, customer_id: str, projection: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every item of every firing of ``customer_id``, by firing id: what erasure deletes and export shows.

    ``by_customer`` holds each firing's head and its attempts (they carry ``customer_id`` and
    ``fired_at``), not its message events, so each firing found there is then queried whole by its ``pk``.
    """
    paginator = client.get_paginator("query")
    firing_ids = dict.fromkeys(
        item["pk"]["S"]
        for page in paginator.paginate(
            TableName=table_name,
            IndexName=BY_CUSTOMER_INDEX,
            KeyConditionExpression="customer_id = :c",
            ExpressionAttributeValues={":c": {"S": customer_id}},
            ProjectionExpression="pk",
        )
        for item in page.get("Items", [])
    )
    by_firing: dict[str, list[dict[str, Any]]] = {}
    for firing_id in firing_ids:
        query: dict[str, Any] = {
            "TableName": table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": firing_id}},
            "ConsistentRead": True,
        }
        if projection:
            query["ProjectionExpression"] = projection
        by_firing[firing_id] = [item for page in paginator.paginate(**query) for item in page.get("Items", [])]
    return by_firing


class DynamoDBMessageLog:
    def __init__(self, client: Any, table_name: str, ttl_days: int = 400) -> None:
        self.client = client
        self.table_name = table_name
        self.ttl_days = ttl_days

    def record_feedback(self, events: Sequence[Event]) -> list[Event]:
        """Each message event against its firing: a ``feedback#`` item, and the head's status moved up.

        Both writes are idempotent (the item is named by the event id, and the status moves only to
        a higher rank), so a redelivered batch writes the same. An event whose firing has no head (sent
        before this table existed, or a ``firing_id`` an app made up) moves nothing.
        """
        unrecorded: list[Event] = []
        for event in events:
            try:
                self._feedback(event)
            except (ClientError, BotoCoreError):
                unrecorded.append(event)
        return unrecorded

    def _feedback(self, event: Event) -> None:
        props = event.properties
        status = MESSAGE_STATUSES[event.name]
        key = {"pk": {"S": str(props["firing_id"])}, "sk": {"S": "firing"}}
        values = {name: {"S": value} for name, value in ADVANCING.items()}
        values |= {":status": {"S": status}, ":rank": {"N": str(FEEDBACK_RANKS[status])}, ":at": {"S": iso(event.ts)}}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET #s = :status, feedback_rank = :rank, feedback_at = :at",
                ConditionExpression=(
                    f"attribute_exists(pk) AND #s IN ({', '.join(ADVANCING)})"
                    " AND (attribute_not_exists(feedback_rank) OR feedback_rank < :rank)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            if not exc.response.get("Item"):
                return  # no such firing (sent before this table, or an id an app made up): nothing to attach to
            # Further along already: the event is still part of the firing's story.
        item: dict[str, Any] = {
            "pk": key["pk"],
            "sk": {"S": f"feedback#{event.event_id}"},
            "status": {"S": status},
            "at": {"S": iso(event.ts)},
            "customer_id": {"S": event.customer_id},
            "channel": {"S": str(props["channel"])},
            TTL_ATTRIBUTE: {"N": str((event.ts + self.ttl_days * DAY_MS) // 1000)},
        }
        for name in ("rule", "reason", "url", "bounce_type"):
            value = props.get(name)
            if isinstance(value, str) and value:
                item[name] = {"S": value[:1000]}
        self.client.put_item(TableName=self.table_name, Item=item)

    def erase_customer(self, customer_id: str) -> int:
        """Every item of every firing of ``customer_id`` (``customer_firings``), deleted in batches."""
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for items in customer_firings(self.client, self.table_name, customer_id, "pk, sk").values()
            for item in items
        ]
        for start in range(0, len(keys), 25):
            requests = {self.table_name: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
            for attempt in range(8):
                left = self.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not left:
                    break
                requests = left
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError(f"activations of an erased customer still unprocessed after retries: {len(left)}")
        return len(keys)
