"""Everything Nudge holds about one customer, read from the stack's tables: what export and erase see.

Four places hold a customer (README "Customer data"): the state item (behaviour, profile copy,
pending waits, held sends, decision log), the profile item (traits and consent, durable), the
activations table (each firing's head, its attempts and its message events, found through the
``by_customer`` index) and, after an erasure, a tombstone under the id's hash. Reads are strongly
consistent where DynamoDB allows (not on an index), so a tool sees what the evaluator last wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..adapters.dynamodb_state import decode_state, tombstone_key, unpack
from ..adapters.message_log import customer_firings
from ..engine import CustomerState
from ..engine.runtime.codec import apply_profile
from ..settings import ResourceNames


@dataclass
class Holdings:
    customer_id: str
    state: CustomerState | None = None
    profile: CustomerState | None = None
    """The profile item, when there is one, read as the evaluator reads it (``codec.apply_profile``):
    a state with only traits and consent."""
    profile_expires_at: int | None = None
    erased_at: int | None = None
    """The erasure time the tombstone holds (ms), when the customer was erased."""
    tombstone_expires_at: int | None = None
    activations: list[dict[str, Any]] = field(default_factory=list)
    """Per firing: its head's attributes, with ``history``: its attempts and message events."""

    @property
    def holds_data(self) -> bool:
        """Whether anything about the customer is held, beyond an erasure's tombstone."""
        return self.state is not None or self.profile is not None or bool(self.activations)

    @property
    def known(self) -> bool:
        return self.holds_data or self.erased_at is not None


def _plain(value: Any) -> Any:
    """A deserialized DynamoDB value as JSON: numbers as int or float, binary as text when it is."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def read_holdings(dynamodb: Any, names: ResourceNames, customer_id: str) -> Holdings:
    """Read every item of ``customer_id`` (low-level client): three GetItems and the activations."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - boto3 only when a tool runs

    deserialize = TypeDeserializer().deserialize
    held = Holdings(customer_id)
    item = dynamodb.get_item(TableName=names.state_table, Key={"pk": {"S": customer_id}}, ConsistentRead=True).get(
        "Item"
    )
    if item is not None:
        held.state = decode_state(item["state"]["B"])
        held.erased_at = held.state.erased_at
    item = dynamodb.get_item(TableName=names.profile_table, Key={"pk": {"S": customer_id}}, ConsistentRead=True).get(
        "Item"
    )
    if item is not None:
        held.profile = CustomerState(customer_id)
        apply_profile(held.profile, unpack(item["profile"]["B"]))
        held.profile_expires_at = int(item["expires_at"]["N"])
    item = dynamodb.get_item(
        TableName=names.profile_table, Key={"pk": {"S": tombstone_key(customer_id)}}, ConsistentRead=True
    ).get("Item")
    if item is not None:
        held.erased_at = int(item["erased_at"]["N"])
        held.tombstone_expires_at = int(item["expires_at"]["N"])
    for firing_id, raw in customer_firings(dynamodb, names.activations_table, customer_id).items():
        items = [{key: _plain(deserialize(value)) for key, value in entry.items()} for entry in raw]
        head = next((entry for entry in items if entry.get("sk") == "firing"), {"pk": firing_id})
        held.activations.append({**head, "history": [entry for entry in items if entry.get("sk") != "firing"]})
    held.activations.sort(key=lambda head: str(head.get("fired_at", "")))
    return held
