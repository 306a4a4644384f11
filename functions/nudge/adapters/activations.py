"""The activations table: who was contacted, when, on which channel and why — and the claim that
makes a send happen once.

Items: ``pk = firing id``; ``sk = "firing"`` holds the current status (the idempotency claim:
``claimed`` or ``sending`` with the attempt's ``holder`` and ``lease_until``, then the outcome),
``sk = "attempt#NNNN#<status>"`` one per recorded attempt, ``sk = "feedback#<event id>"`` one per
message event the channels reported (delivered, opened, clicked, bounced...), and the head's status
moves up to the furthest of them (written by the evaluator: ``message_log.py``). Every item carries customer id, rule,
channel and an ``expires_at`` TTL (400 days by default). No address or phone number is
stored here: the provider message id links to the provider's own records.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..contracts import FiringMessage
from ..delivery.ports import RECLAIMABLE, ActivationLogUnavailable, ActivationStatus, Claim, ClaimLost
from ..settings import TTL_ATTRIBUTE

DAY_MS = 86_400_000
RECLAIMABLE_VALUES = {f":r{index}": status.value for index, status in enumerate(sorted(RECLAIMABLE))}
"""The condition's placeholders for the statuses a new attempt may claim again."""
LIVE = {ActivationStatus.CLAIMED.value, ActivationStatus.SENDING.value}
"""Statuses of a claim whose attempt has not settled it."""


def _unavailable(exc: ClientError | BotoCoreError) -> ActivationLogUnavailable:
    """The table's failure as the port names it: the error code only (no item, no address)."""
    code = exc.response.get("Error", {}).get("Code", "Unknown") if isinstance(exc, ClientError) else type(exc).__name__
    return ActivationLogUnavailable(code)


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

    def claim(self, firing: FiringMessage, now_ms: int, holder: str, resend_unknown: bool = False) -> Claim:
        item = {
            "pk": {"S": firing.firing_id},
            "sk": {"S": "firing"},
            "status": {"S": ActivationStatus.CLAIMED.value},
            "holder": {"S": holder},
            "lease_until": {"N": str(now_ms + self.lease_ms)},
            "updated_at": {"N": str(now_ms)},
            **self._common(firing, now_ms),
        }
        values = {name: {"S": status} for name, status in RECLAIMABLE_VALUES.items()}
        values |= {":claimed": {"S": ActivationStatus.CLAIMED.value}, ":now": {"N": str(now_ms)}, ":me": {"S": holder}}
        condition = (
            f"attribute_not_exists(pk) OR #s IN ({', '.join(RECLAIMABLE_VALUES)})"
            " OR (#s = :claimed AND lease_until < :now) OR holder = :me"
        )
        if resend_unknown:
            condition += " OR #s = :unknown"
            values[":unknown"] = {"S": ActivationStatus.OUTCOME_UNKNOWN.value}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
            return Claim.NEW
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from None
        try:
            head = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": firing.firing_id}, "sk": {"S": "firing"}},
                ConsistentRead=True,
            ).get("Item", {})
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from None
        status = head.get("status", {}).get("S")
        if status not in LIVE:
            return Claim.DONE
        if int(head.get("lease_until", {}).get("N", "0")) >= now_ms:
            return Claim.BUSY
        return Claim.UNKNOWN  # sending, lapsed (a lapsed claimed was taken by the condition above)

    def start_sending(self, firing: FiringMessage, now_ms: int, holder: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": firing.firing_id}, "sk": {"S": "firing"}},
                UpdateExpression="SET #s = :sending, lease_until = :lease, updated_at = :now",
                ConditionExpression="holder = :me",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":sending": {"S": ActivationStatus.SENDING.value},
                    ":lease": {"N": str(now_ms + self.lease_ms)},
                    ":now": {"N": str(now_ms)},
                    ":me": {"S": holder},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ClaimLost(firing.firing_id) from None
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from None

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
        try:
            self._put_record(firing, status, attempt, common, details)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from None

    def _put_record(
        self,
        firing: FiringMessage,
        status: ActivationStatus,
        attempt: int,
        common: dict[str, Any],
        details: dict[str, Any],
    ) -> None:
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
