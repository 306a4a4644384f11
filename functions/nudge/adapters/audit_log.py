"""The audit trail of the customer data tools: who looked at or erased whom, when, with what outcome.

``nudge explain``, ``export`` and ``erase`` read or remove one customer's data with an operator's
own credentials; each call leaves one record here, so an access request, a complaint or a
regulator's question ("who exported this customer's data last spring?") has an answer that does
not depend on anyone's memory. ``nudge audit`` reads it back. The table is encrypted with a key of
its own and only the tools' role (``<prefix>-customer-data``) may write or read it: no function of
the stack can, so the trail cannot be rewritten by the code whose use it records.

Items: ``pk = "month#YYYY-MM"`` (the UTC month of ``at``: a partition per month keeps a range read
to the months it spans), ``sk = "<ISO 8601 of at, always with milliseconds>Z#<uuid4 hex>"``, so
records sort by time within a month and two records of the same millisecond never collide.
Attributes: ``at`` (epoch ms), ``principal``, ``action``, ``customer``, ``outcome``, ``detail``
(only when not empty) and ``expires_at`` (epoch seconds: ``at`` plus the retention), the TTL.
A record holds no personal data beyond the customer id (or, for an erasure, its hash).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..clock import WALL_CLOCK, Clock
from ..settings import TTL_ATTRIBUTE
from ..timefmt import in_range, iso

DAY_MS = 86_400_000
_AFTER_ANY_ID = "#~"
"""Sorts after ``#`` and any uuid hex: the end of a millisecond's sort keys."""


@dataclass(frozen=True)
class AuditRecord:
    """One call of a customer data tool."""

    at: int
    """When, in epoch milliseconds."""
    principal: str
    """The caller's IAM principal ARN (STS ``GetCallerIdentity``'s ``Arn``)."""
    action: str
    """``explain``, ``export`` or ``erase``."""
    customer: str
    """The customer id (explain, export) or its hash (erase: the id itself is what is being forgotten)."""
    outcome: str
    """``ok``, ``unknown_customer``, ``no_state`` (explained from a profile, activations or a tombstone
    only), ``erased``, ``already_erased``, ``requested``, ``pending`` (an erasure not done in the time
    waited) or ``failed: <error>``."""
    detail: str = ""
    """What was done, without personal data: e.g. ``rule cart_abandonment``, ``3 activations``."""


class AuditUnavailable(Exception):
    """The audit table could not be written or read; a tool stops rather than act unrecorded."""

    def __init__(self, table_name: str, code: str) -> None:
        super().__init__(f"the audit trail (DynamoDB table {table_name}) is unavailable: {code}")
        self.table_name = table_name
        self.code = code


def _unavailable(table_name: str, exc: ClientError | BotoCoreError) -> AuditUnavailable:
    code = exc.response.get("Error", {}).get("Code", "Unknown") if isinstance(exc, ClientError) else type(exc).__name__
    return AuditUnavailable(table_name, code)


def sort_time(ms: int) -> str:
    """``2026-11-22T10:00:00.000Z``: ``timefmt.iso`` with the milliseconds always shown, so sort keys
    compare as times (``iso`` leaves out ``.000``, and ``"Z"`` sorts after ``"."``)."""
    text = iso(ms)
    return text if "." in text else f"{text[:-1]}.000Z"


def _month(ms: int) -> tuple[int, int]:
    """(year, month) of ``ms``, in UTC."""
    text = iso(ms)
    return int(text[:4]), int(text[5:7])


def _partition(year: int, month: int) -> str:
    return f"month#{year:04d}-{month:02d}"


def _months(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    """The month partitions from ``first`` to ``last``, both included, oldest first."""
    partitions: list[str] = []
    year, month = first
    while (year, month) <= last:
        partitions.append(_partition(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return partitions


class DynamoDBAuditLog:
    """The audit trail in its DynamoDB table (``table_settings(settings).audit``)."""

    def __init__(self, client: Any, table_name: str, retention_days: int = 1095, *, clock: Clock = WALL_CLOCK) -> None:
        self.client = client
        self.table_name = table_name
        self.retention_days = retention_days
        self.clock = clock
        """Only for ``since`` without ``until``: the month to read up to."""

    def record(self, record: AuditRecord) -> None:
        """Write one record; a failure raises ``AuditUnavailable`` (never swallowed: a tool that cannot
        record what it did must not report success).

        The write is conditional on a new key, so it can only add to the trail, never overwrite.
        """
        if not in_range(record.at):
            raise ValueError(f"an audit record's time must be epoch milliseconds from 1970 on, not {record.at}")
        item: dict[str, Any] = {
            "pk": {"S": _partition(*_month(record.at))},
            "sk": {"S": f"{sort_time(record.at)}#{uuid.uuid4().hex}"},
            "at": {"N": str(record.at)},
            "principal": {"S": record.principal},
            "action": {"S": record.action},
            "customer": {"S": record.customer},
            "outcome": {"S": record.outcome},
            TTL_ATTRIBUTE: {"N": str((record.at + self.retention_days * DAY_MS) // 1000)},
        }
        if record.detail:
            item["detail"] = {"S": record.detail}
        try:
            self.client.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(self.table_name, exc) from exc

    def since(self, since_ms: int, until_ms: int | None = None) -> list[AuditRecord]:
        """The records from ``since_ms`` (included) to ``until_ms`` (included; default: all up to now),
        oldest first: one paginated, strongly consistent Query per month partition, so a record
        written just before (an erasure a moment ago) is in the answer."""
        until = self.clock.now_ms() if until_ms is None else until_ms
        if until < since_ms:
            return []
        condition = "pk = :pk AND sk >= :from"
        values: dict[str, Any] = {":from": {"S": sort_time(since_ms)}}
        if until_ms is not None:
            condition = "pk = :pk AND sk BETWEEN :from AND :to"
            values[":to"] = {"S": sort_time(until_ms) + _AFTER_ANY_ID}
        records: list[AuditRecord] = []
        for partition in _months(_month(since_ms), _month(until)):
            records += self._query(condition, {**values, ":pk": {"S": partition}})
        return records

    def _query(self, condition: str, values: dict[str, Any]) -> list[AuditRecord]:
        records: list[AuditRecord] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        while True:
            try:
                page = self.client.query(**request)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(self.table_name, exc) from exc
            records += [_decode(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _decode(item: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        at=int(item["at"]["N"]),
        principal=item["principal"]["S"],
        action=item["action"]["S"],
        customer=item["customer"]["S"],
        outcome=item["outcome"]["S"],
        detail=item.get("detail", {}).get("S", ""),
    )
