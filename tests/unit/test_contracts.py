"""The wire contracts round-trip, and a consumer refuses what it does not understand with a reason."""

from __future__ import annotations

import orjson
import pytest

from nudge.contracts import (
    ContractError,
    Firing,
    MatchedEvent,
    Timer,
    decode_firing,
    decode_timer,
    encode_firing,
    encode_timer,
    loads,
)

FIRING = Firing(
    firing_id="f" * 32,
    rule="cart_abandonment",
    customer_id="c-1",
    key=None,
    armed_at=1_795_000_000_000,
    fired_at=1_795_003_600_000,
    channel="email",
    template="cart_reminder",
    events=(MatchedEvent("add_to_cart", "e1", 1_795_000_000_000, {"sku": "SKU-1", "product": {"name": "Mat"}}),),
    profile={"email": "ana@example.com", "first_name": "Ana"},
)


def test_a_firing_reads_back_as_it_was_written():
    message = decode_firing(encode_firing(FIRING))
    assert message.v == 1
    assert message.model_dump(exclude={"v"}) == FIRING.to_json(with_profile=True)


def test_a_firing_of_another_version_is_refused_with_the_reason():
    body = encode_firing(FIRING).replace('"v":1', '"v":2')
    with pytest.raises(ContractError, match="firing message v2 is not supported"):
        decode_firing(body)


def test_a_field_this_release_does_not_know_is_refused_not_dropped():
    body = encode_firing(FIRING).replace('"rule":', '"priority":3,"rule":')
    with pytest.raises(ContractError, match=r"not a firing \(priority\)"):
        decode_firing(body)


def test_a_firing_queued_before_messages_were_versioned_is_still_read():
    legacy = loads(encode_firing(FIRING))
    del legacy["v"]
    legacy["variant"] = "default"
    assert decode_firing(orjson.dumps(legacy)) == decode_firing(encode_firing(FIRING))


def test_a_timer_reads_back_as_it_was_written():
    timer = Timer("c-ü", "cart_abandonment", "SKU-1", 1, 3_600_001)
    assert decode_timer(loads(encode_timer(timer))) == timer


def test_a_timer_of_another_version_is_refused():
    body = loads(encode_timer(Timer("c-1", "r", None, 1, 2)))
    body["v"] = 9
    with pytest.raises(ContractError, match="timer message v9 is not supported"):
        decode_timer(body)
