"""The state store's batch read under throttling, against moto's DynamoDB with a throttling hook."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from nudge.adapters.dynamodb_state import THROTTLED_CALLS, DynamoDBStateStore
from nudge.engine import CustomerState
from nudge.evaluator.ports import StoredState


def throttle(client: Any, calls: int, code: str = "ProvisionedThroughputExceededException") -> list[int]:
    """Make the next ``calls`` BatchGetItem calls of ``client`` fail with ``code``; count every call."""
    seen = [0]

    def refuse(**_: Any) -> None:
        seen[0] += 1
        if seen[0] <= calls:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "BatchGetItem")

    client.meta.events.register("before-call.dynamodb.BatchGetItem", refuse)
    return seen


@pytest.fixture
def store(session, resources) -> DynamoDBStateStore:  # type: ignore[no-untyped-def]
    client = session.client("dynamodb")
    store = DynamoDBStateStore(
        client, resources.config.state_table, resources.config.profile_table, sleep=lambda _: None
    )
    state = CustomerState("c-1")
    state.profile["email"] = ["ana@example.com", 1]
    store.save(StoredState(state, None), 2_000_000_000, 2_000_000_000)
    return store


def test_a_read_throttled_once_past_the_clients_retries_is_tried_again(store: DynamoDBStateStore):
    calls = throttle(store.client, 1)
    loaded = store.load_many(["c-1", "c-2"])
    assert loaded["c-1"].version is not None and loaded["c-1"].state.profile["email"][0] == "ana@example.com"
    assert loaded["c-2"].version is None  # a customer with no item is a new one, as always
    assert calls[0] > 1


def test_a_read_that_stays_throttled_leaves_its_customers_unread_instead_of_failing_the_batch(
    store: DynamoDBStateStore,
):
    throttle(store.client, THROTTLED_CALLS)
    # Unread is not "new": a customer missing from the answer fails alone and is redelivered; an
    # empty state in its place would overwrite what it has.
    assert store.load_many(["c-1", "c-2"]) == {}


def test_an_error_that_is_not_throttling_still_raises(store: DynamoDBStateStore):
    throttle(store.client, 1, code="ValidationException")
    with pytest.raises(ClientError, match="ValidationException"):
        store.load_many(["c-1"])
