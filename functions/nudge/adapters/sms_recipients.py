"""The SMS phone index over DynamoDB: keyed hash of a number -> the customer last texted there.

Delivery's End User Messaging channel calls ``remember`` before each text; the feedback function
calls ``customer_of`` for an opt-out reply. Items expire ``retention_days`` after the last text
(DynamoDB TTL), so the table holds only numbers texted recently, and never a number itself
(``nudge.feedback.phone_index``).
"""

from __future__ import annotations

from typing import Any

from ..clock import WALL_CLOCK, Clock
from ..feedback.phone_index import PhoneKey
from ..settings import TTL_ATTRIBUTE


class DynamoDBSmsRecipients:
    def __init__(
        self, client: Any, table: str, key: PhoneKey, *, retention_days: int | None = None, clock: Clock = WALL_CLOCK
    ) -> None:
        """``retention_days`` is the writer's (delivery's); a reader (the feedback function) has none."""
        self.client = client
        self.table = table
        self.key = key
        self.retention_days = retention_days
        self.clock = clock

    def remember(self, phone: str, customer_id: str) -> None:
        """One item per number: the last customer texted there wins (a shared phone's reply opts out
        whoever Nudge texted at it last)."""
        if self.retention_days is None:
            raise RuntimeError("this phone index reads only: give it retention_days to write")
        expires_at = self.clock.now_ms() // 1000 + self.retention_days * 86_400
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": self.key.digest(phone)},
                "customer_id": {"S": customer_id},
                TTL_ATTRIBUTE: {"N": str(expires_at)},
            },
        )

    def customer_of(self, phone: str) -> str | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": self.key.digest(phone)}},
            ProjectionExpression="customer_id, #expires",
            ExpressionAttributeNames={"#expires": TTL_ATTRIBUTE},
        ).get("Item")
        if item is None or int(item[TTL_ATTRIBUTE]["N"]) <= self.clock.now_ms() // 1000:
            return None  # TTL deletes lag expiry by up to days: an expired item is gone already
        return str(item["customer_id"]["S"])
