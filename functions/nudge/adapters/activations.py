"""The activations table: who was contacted, when, on which channel and why — and the claim that
makes a send happen once.

Items: ``pk = firing id``; ``sk = "firing"`` holds the current status (the idempotency claim),
``sk = "attempt#NNNN#<status>"`` one per recorded attempt. Every item carries customer id, rule,
channel and an ``expires_at`` TTL (400 days by default). No address or phone number is
stored here: the provider message id links to the provider's own records.
"""

from __future__ import annotations

from typing import Any

from ..contracts import FiringMessage
from ..delivery.ports import RECLAIMABLE, ActivationStatus, Claim
from ..settings import TTL_ATTRIBUTE

DAY_MS = 86_400_000
RECLAIMABLE_VALUES = {f":r{index}": status.value for index, status in enumerate(sorted(RECLAIMABLE))}
"""The condition's placeholders for the statuses a new attempt may claim again."""


class DynamoDBActivationLog:
    def __init__(self, client: Any, table_name: str, ttl_days: int = 400, lease_ms: int = 120_000) -> None:
        self.client = client
        self.table_name = table_name
        self.ttl_days = ttl_days
        self.lease_ms = lease_ms

    def _common(self, firing: FiringMessage, now_ms: int) -> dict[str, Any]:
        return {
            "customer_id": {"S": firing.customer_id},
            "rule": {"S": firing.rule},
            "channel": {"S": firing.channel},
            "fired_at": {"S": firing.fired_at},
            TTL_ATTRIBUTE: {"N": str((now_ms + self.ttl_days * DAY_MS) // 1000)},
        }

    def claim(self, firing: FiringMessage, now_ms: int) -> Claim:
        item = {
            "pk": {"S": firing.firing_id},
            "sk": {"S": "firing"},
            "status": {"S": ActivationStatus.SENDING.value},
            "lease_until": {"N": str(now_ms + self.lease_ms)},
            "updated_at": {"N": str(now_ms)},
            **self._common(firing, now_ms),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=f"attribute_not_exists(pk) OR #s IN ({', '.join(RECLAIMABLE_VALUES)})",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={name: {"S": status} for name, status in RECLAIMABLE_VALUES.items()},
            )
            return Claim.NEW
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        head = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": firing.firing_id}, "sk": {"S": "firing"}}, ConsistentRead=True
        ).get("Item", {})
        status = head.get("status", {}).get("S")
        if status != ActivationStatus.SENDING:
            return Claim.DONE
        if int(head.get("lease_until", {}).get("N", "0")) > now_ms:
            return Claim.BUSY
        return Claim.UNKNOWN

    def record(
        self,
        firing: FiringMessage,
        *,
        status: ActivationStatus,
        now_ms: int,
        attempt: int,
        provider_message_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        common = self._common(firing, now_ms)
        details: dict[str, Any] = {"status": {"S": status.value}, "updated_at": {"N": str(now_ms)}}
        if provider_message_id:
            details["provider_message_id"] = {"S": provider_message_id}
        if reason:
            details["reason"] = {"S": reason[:1000]}
        self.client.put_item(
            TableName=self.table_name,
            Item={"pk": {"S": firing.firing_id}, "sk": {"S": "firing"}, **common, **details},
        )
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": firing.firing_id},
                "sk": {"S": f"attempt#{attempt:04d}#{status.value}"},
                "attempt": {"N": str(attempt)},
                **common,
                **details,
            },
        )

    def history(self, firing_id: str) -> list[dict[str, Any]]:
        """Every item of one firing (head and attempts), for audits and tests."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": firing_id}},
            ConsistentRead=True,
        )
        return [{key: next(iter(value.values())) for key, value in item.items()} for item in response["Items"]]
