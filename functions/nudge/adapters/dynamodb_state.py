"""Customer state in DynamoDB: one item per customer, read in batches, written conditionally.

State item: ``pk`` (customer id), ``state`` (binary: the engine's JSON, zlib-compressed when that
is smaller), ``version`` (number, for optimistic concurrency), ``expires_at`` (TTL, seconds: the
behaviour's horizon) and ``profile_expires_at`` (when the profile item below expires, so a write
knows whether to refresh it without reading it). Compressing matters for cost: write units are
billed per KiB of item.

Profile item (a table of its own): ``pk``, ``profile`` (``codec.encode_profile``: traits and
consent) and ``expires_at`` (the profile retention after the last event). An erasure leaves a
tombstone there instead: ``pk = "erased#" + sha256(id)``, ``erased_at`` (ms) and ``expires_at``
(until no record of the customer can still arrive), read with the profile, so a late event from
before the erasure is dropped (``Engine.process``). The state item carries
a copy of the profile, so a customer with state costs one read as before; the profile table is
read only for customers without a state item (new, or whose behaviour expired), in one more
``BatchGetItem`` per 100 of them. It is written only when the profile or consent changed, or when
its expiry has fallen more than ``PROFILE_REFRESH_S`` behind: at most one extra write per customer
per 30 days of activity, beyond the identify and consent events that change it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from ..contracts import ERASURE_PREFIX, customer_hash
from ..engine import CustomerState
from ..engine.runtime.codec import apply_profile, encode_profile
from ..evaluator.ports import StateTooLarge, StoredState, VersionConflict
from ..settings import TTL_ATTRIBUTE

BATCH_GET_LIMIT = 100
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
THROTTLED_CALLS = 2
"""How many BatchGetItem calls of one chunk may fail throttled (each after the client's own
retries, up to ~15 s) before the chunk is left unread: two keep a read inside its invocation."""
STATE_BUDGET_BYTES = 350_000
"""The largest ``state`` attribute written: DynamoDB's item limit is 400 KB, names and the other
attributes included; the rest is margin. A larger state is trimmed first (``Engine.fit``)."""
_RAW, _ZLIB = b"j", b"z"
PROFILE_REFRESH_S = 30 * 86_400
"""How far behind its due expiry a profile item may fall before a write moves it (seconds)."""


def tombstone_key(customer_id: str) -> str:
    """Where an erasure's tombstone is kept, in the profile table: the id's hash, never the id."""
    return ERASURE_PREFIX + customer_hash(customer_id)


def pack(raw: bytes) -> bytes:
    """Marked bytes for an item: zlib-compressed when that is smaller (write units are per KiB)."""
    if len(raw) > 200:
        packed = zlib.compress(raw, 6)
        if len(packed) < len(raw):
            return _ZLIB + packed
    return _RAW + raw


def unpack(blob: bytes) -> bytes:
    marker, body = blob[:1], blob[1:]
    return zlib.decompress(body) if marker == _ZLIB else body


def encode_state(state: CustomerState) -> bytes:
    return pack(state.encode())


def decode_state(blob: bytes) -> CustomerState:
    return CustomerState.decode(unpack(blob))


class DynamoDBStateStore:
    """``StateStore`` over a DynamoDB table (low-level client: no resource-layer overhead)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        profile_table_name: str,
        max_attempts: int = 6,
        sleep: Any = time.sleep,
        budget: int = STATE_BUDGET_BYTES,
        tombstone_seconds: int = 8 * 86_400,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.client = client
        self.tombstone_seconds = tombstone_seconds
        """How long an erasure's tombstone is kept (``StackSettings.erasure_tombstone_seconds``)."""
        self.now_ms = now_ms
        self.budget = budget
        self.table_name = table_name
        self.profile_table_name = profile_table_name
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
        unique = list(dict.fromkeys(customer_ids))
        found: dict[str, StoredState] = {}
        unread: set[str] = set()
        for item in self._get(self.table_name, unique, "pk, #s, version, profile_expires_at", unread):
            state = decode_state(item["state"]["B"])
            expires = item.get("profile_expires_at")
            found[item["pk"]["S"]] = StoredState(
                state,
                int(item["version"]["N"]),
                encode_profile(state),
                int(expires["N"]) if expires else None,
                tombstone=state.erased_at,  # a state that knows its erasure was written with its tombstone
            )
        missing = [cid for cid in unique if cid not in found and cid not in unread]
        # With the profile, the erasure tombstone (under the id's hash): in the same call, so a customer
        # without state costs no more requests than before, only a second key.
        tombstones = {tombstone_key(cid): cid for cid in missing}
        unread_keys: set[str] = set()
        items = self._get(
            self.profile_table_name, [*missing, *tombstones], "pk, profile, expires_at, erased_at", unread_keys
        )
        unread.update(tombstones.get(key, key) for key in unread_keys)
        erased = {tombstones[i["pk"]["S"]]: int(i["erased_at"]["N"]) for i in items if i["pk"]["S"] in tombstones}
        for item in items:
            customer_id = item["pk"]["S"]
            if customer_id in tombstones:
                continue
            state = CustomerState(customer_id)
            profile = unpack(item["profile"]["B"])
            apply_profile(state, profile)
            found[customer_id] = StoredState(state, None, profile, int(item[TTL_ATTRIBUTE]["N"]))
        for customer_id, erased_at in erased.items():
            stored = found.setdefault(customer_id, StoredState(CustomerState(customer_id), None))
            stored.state.erased_at = stored.tombstone = erased_at
        return {cid: found.get(cid) or StoredState(CustomerState(cid), None) for cid in unique if cid not in unread}

    def _get(self, table: str, customer_ids: list[str], projection: str, unread: set[str]) -> list[dict[str, Any]]:
        """Every item of ``table`` for ``customer_ids`` that exists; keys still unprocessed after the
        last attempt go into ``unread``."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(customer_ids), BATCH_GET_LIMIT):
            chunk = customer_ids[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                table: {
                    "Keys": [{"pk": {"S": customer_id}} for customer_id in chunk],
                    "ConsistentRead": True,
                    "ProjectionExpression": projection,
                    **({"ExpressionAttributeNames": {"#s": "state"}} if "#s" in projection else {}),
                }
            }
            throttled = 0
            for attempt in range(self.max_attempts):
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    # Throttled past the client's own retries: every key is still unprocessed, and
                    # after THROTTLED_CALLS such calls the chunk is left unread (those customers
                    # fail alone). Raising instead failed every customer of the batch, which under
                    # sustained throttling stalled a shard for hours behind one that could not load.
                    if exc.response.get("Error", {}).get("Code") not in THROTTLED:
                        raise
                    throttled += 1
                    if throttled >= THROTTLED_CALLS:
                        break
                    response = {"UnprocessedKeys": request}
                items += response.get("Responses", {}).get(table, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt < self.max_attempts - 1:
                    self.sleep(min(0.05 * 2**attempt, 1.0))
            if request:
                unread.update(key["pk"]["S"] for key in request[table]["Keys"])
        return items

    def save(self, stored: StoredState, expires_at_s: int, profile_expires_at_s: int | None = None) -> None:
        state = stored.state
        key = {"pk": {"S": state.customer_id}}
        blob = None if state.is_empty() else encode_state(state)
        if blob is not None and len(blob) > self.budget:
            raise StateTooLarge(len(blob), self.budget)  # before the profile, which is part of it
        if state.erased_at is not None and state.erased_at != stored.tombstone:
            self._erase(stored)
        if profile_expires_at_s is not None:
            self._save_profile(stored, profile_expires_at_s)
        try:
            if blob is None:
                if stored.version is not None:
                    self.client.delete_item(
                        TableName=self.table_name,
                        Key=key,
                        ConditionExpression="version = :v",
                        ExpressionAttributeValues={":v": {"N": str(stored.version)}},
                    )
                    stored.version = None
                return
            item = {
                **key,
                "state": {"B": blob},
                "version": {"N": str((stored.version or 0) + 1)},
                TTL_ATTRIBUTE: {"N": str(expires_at_s)},
            }
            if stored.profile_expires_s is not None:
                item["profile_expires_at"] = {"N": str(stored.profile_expires_s)}
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

    def _erase(self, stored: StoredState) -> None:
        """The tombstone first (the hash of the id and the erasure time, until no record of the
        customer can still arrive), then the profile item goes. Both idempotent: a retried batch
        writes the same tombstone and deletes nothing more."""
        erased_at = stored.state.erased_at
        assert erased_at is not None
        self.client.put_item(
            TableName=self.profile_table_name,
            Item={
                "pk": {"S": tombstone_key(stored.state.customer_id)},
                "erased_at": {"N": str(erased_at)},
                TTL_ATTRIBUTE: {"N": str(self.now_ms() // 1000 + self.tombstone_seconds)},
            },
        )
        self.client.delete_item(TableName=self.profile_table_name, Key={"pk": {"S": stored.state.customer_id}})
        stored.tombstone = erased_at
        stored.profile, stored.profile_expires_s = None, None

    def _save_profile(self, stored: StoredState, expires_at_s: int) -> None:
        """Write the profile item when the traits or consent changed, or its expiry fell behind.

        Unconditional: only this customer's one writer ever writes it, and the state item's
        conditional write that follows is what detects a second writer.
        """
        profile = encode_profile(stored.state)
        if profile is None:
            return  # nothing to keep (a profile once written stays until its expiry or an erasure)
        behind = stored.profile_expires_s is None or expires_at_s - stored.profile_expires_s > PROFILE_REFRESH_S
        if profile == stored.profile and not behind:
            return
        self.client.put_item(
            TableName=self.profile_table_name,
            Item={
                "pk": {"S": stored.state.customer_id},
                "profile": {"B": pack(profile)},
                TTL_ATTRIBUTE: {"N": str(expires_at_s)},
            },
        )
        stored.profile, stored.profile_expires_s = profile, expires_at_s

    def encoded_size(self, state: CustomerState) -> int:
        return len(encode_state(state))
