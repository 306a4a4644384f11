"""The wire contracts round-trip, and a consumer refuses what it does not understand with a reason."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.contracts import (
    ContractError,
    EventError,
    Firing,
    MatchedEvent,
    Timer,
    TimerKey,
    decode_firing,
    decode_timer,
    encode_firing,
    encode_timer,
    feedback_event_id,
    key_text,
    key_value,
    loads,
    parse_event,
)
from nudge.evaluator import InputRecord, Rejected, decode_record
from nudge.sdk import InvalidEventError, Tracker

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
    assert message.v == 3
    assert message.model_dump(exclude={"v"}) == FIRING.to_json(with_profile=True)


def test_a_firing_of_another_version_is_refused_with_the_reason():
    body = encode_firing(FIRING).replace('"v":3', '"v":4')
    with pytest.raises(ContractError, match="firing message v4 is not supported"):
        decode_firing(body)


def test_a_v1_firing_has_no_send_time_and_is_still_read():
    """v1 (before the guardrails) had no ``send_at``: such a message in a DLQ is sent at once."""
    v1 = loads(encode_firing(FIRING))
    v1["v"] = 1
    del v1["send_at"], v1["step"]
    message = decode_firing(orjson.dumps(v1))
    assert message.v == 1
    assert message.send_at is None


def test_a_field_this_release_does_not_know_is_refused_not_dropped():
    body = encode_firing(FIRING).replace('"rule":', '"priority":3,"rule":')
    with pytest.raises(ContractError, match=r"not a firing \(priority\)"):
        decode_firing(body)


def test_a_firing_queued_before_messages_were_versioned_is_still_read():
    legacy = loads(encode_firing(FIRING))
    del legacy["v"]
    del legacy["send_at"]
    legacy["variant"] = "default"
    assert decode_firing(orjson.dumps(legacy)) == decode_firing(encode_firing(FIRING)).model_copy(
        update={"v": 1, "send_at": None}
    )


KEY = TimerKey(b"a-timer-key-for-tests")


def test_a_timer_reads_back_as_it_was_written():
    timer = Timer("c-ü", "cart_abandonment", "SKU-1", 1, 3_600_001)
    assert decode_timer(loads(encode_timer(timer, KEY)), KEY) == timer


def test_a_timer_of_another_version_is_refused():
    body = loads(encode_timer(Timer("c-1", "r", None, 1, 2), KEY))
    body["v"] = 9
    with pytest.raises(ContractError, match="timer message v9 is not supported"):
        decode_timer(body, KEY)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body: body.pop("sig"), "timer is not signed"),
        (lambda body: body.update(due=body["due"] - 3_300_000), "timer signature does not match"),  # decided early
        (lambda body: body.update(key="SKU-2"), "timer signature does not match"),
        (
            lambda body: body.update(sig=TimerKey(b"someone-elses-key!").sign(Timer("c-1", "r", None, 1, 2))),
            "does not match",
        ),
        (lambda body: body.update(sig=42), "timer signature does not match"),
    ],
)
def test_a_timer_not_signed_by_the_evaluators_key_is_refused(change, reason):  # type: ignore[no-untyped-def]
    body = loads(encode_timer(Timer("c-1", "r", None, 1, 3_600_000), KEY))
    change(body)
    with pytest.raises(ContractError, match=reason):
        decode_timer(body, KEY)


def test_without_a_key_no_timer_is_accepted_and_the_key_never_prints():
    body = loads(encode_timer(Timer("c-1", "r", None, 1, 2), KEY))
    with pytest.raises(ContractError, match="not accepted here"):
        decode_timer(body, None)
    assert "timer-key" not in repr(KEY)
    with pytest.raises(ValueError, match="16 bytes"):
        TimerKey(b"short")


JSON_SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(["#", "#1", "#true", '#"#"', "1", "true", "7.0"]),
)


def _json_equal(a: object, b: object) -> bool:
    """Equal as JSON values: the same type (numbers are one type) and the same value."""
    number = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, number) and isinstance(b, number):
        return a == b
    return type(a) is type(b) and a == b


@given(a=JSON_SCALARS, b=JSON_SCALARS)
def test_two_values_share_a_key_exactly_when_they_are_equal_json_values(a: object, b: object):
    assert (key_text(a) == key_text(b)) is _json_equal(a, b)


@given(value=JSON_SCALARS)
def test_a_key_text_reads_back_as_its_value(value: object):
    assert _json_equal(key_value(key_text(value)), value)


def test_a_string_key_is_its_own_text_and_other_values_are_marked():
    assert key_text("SKU-1") == "SKU-1"
    assert (key_text(42), key_text(7.0), key_text(True), key_text("#vip")) == ("#42", "#7", "#true", '#"#vip"')
    assert key_text(None) is None and key_text({"a": 1}) is None and key_text([1]) is None


@pytest.mark.parametrize(
    ("traits", "reason"),
    [
        ({"email": "ana@example.com\r\nBcc: x@evil.example"}, "the email trait is not one email address"),
        ({"email": "ana@example.com, victim@evil.example"}, "the email trait is not one email address"),
        ({"email": 42}, "the email trait is not a string"),
        ({"phone": "+44 7700 900123"}, "the phone trait is not a phone number in E.164 form"),
        ({"phone": "07700900123"}, "the phone trait is not a phone number in E.164 form"),
    ],
)
def test_an_identify_whose_address_is_not_one_address_is_refused_with_the_reason(traits, reason):  # type: ignore[no-untyped-def]
    envelope = {"event_id": "e-1", "customer_id": "c-1", "event": "identify", "timestamp": "2026-11-22T09:00:00Z"}
    with pytest.raises(EventError, match=reason):
        parse_event({**envelope, "traits": traits})


def test_addresses_that_are_one_address_are_accepted_and_null_clears_them():
    envelope = {"event_id": "e-1", "customer_id": "c-1", "event": "identify", "timestamp": "2026-11-22T09:00:00Z"}
    traits = {"email": "zoë.o'neil+shop@exämple.co.uk", "phone": "+351912345678"}
    assert parse_event({**envelope, "traits": traits}).traits == traits
    assert parse_event({**envelope, "traits": {"email": None, "phone": None}}).traits == {"email": None, "phone": None}


ENVELOPE = {"event_id": "e-1", "customer_id": "c-1", "event": "add_to_cart", "timestamp": "2026-11-22T09:00:00Z"}


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"propertis": {"sku": "SKU-1"}}, "propertis: unknown field; did you mean properties?"),
        ({"trait": {"email": "a@example.com"}}, "trait: unknown field; did you mean traits?"),
        ({"customerid": "c-1"}, "customerid: unknown field; did you mean customer_id?"),
        ({"timestmp": "2026-11-22T09:00:00Z"}, "timestmp: unknown field; did you mean timestamp?"),
        ({"source": "web"}, "source: unknown field"),
    ],
)
def test_an_unknown_envelope_key_is_refused_naming_it_and_the_field_it_resembles(extra, reason):  # type: ignore[no-untyped-def]
    """It used to be ignored, with what it carried: a misspelt ``properties`` failed at send time."""
    with pytest.raises(EventError) as raised:
        parse_event({**ENVELOPE, **extra})
    assert raised.value.reason == reason


def test_unknown_keys_are_reported_with_the_other_problems_and_kept_short():
    with pytest.raises(EventError) as raised:
        parse_event({**ENVELOPE, "timestamp": "2026-11-22T09:00:00", "propertis": {}})
    assert raised.value.reason.startswith("timestamp: timestamp needs a UTC offset")
    assert raised.value.reason.endswith("; propertis: unknown field; did you mean properties?")
    with pytest.raises(EventError) as raised:
        parse_event({**ENVELOPE, **{f"k{n}": n for n in range(1000)}, "x\n" * 100: 1})
    assert raised.value.reason.startswith("k0: unknown field; k1: unknown field; k2: unknown field; ")
    assert raised.value.reason.endswith("; event: 998 more unknown fields")
    with pytest.raises(EventError) as raised:
        parse_event({**ENVELOPE, "x\n" * 100: 1})
    assert raised.value.reason == repr("x\n" * 32) + "…: unknown field"  # no line break reaches a log


def test_every_envelope_field_is_still_accepted():
    event = parse_event({**ENVELOPE, "properties": {"sku": "SKU-1"}, "traits": {"first_name": "Ana"}})
    assert (event.properties, event.traits) == ({"sku": "SKU-1"}, {"first_name": "Ana"})


_OUT_OF_RANGE = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "9000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
_RANGE_REASON = "timestamp: timestamp must be from 1970-01-01T00:00:00Z to before 9000-01-01T00:00:00Z"


@pytest.mark.parametrize("timestamp", _OUT_OF_RANGE)
def test_a_timestamp_out_of_range_is_refused_alike_by_replay_the_evaluator_and_the_sdk(timestamp: str) -> None:
    envelope = {"event_id": "e-1", "customer_id": "c-1", "event": "ping", "timestamp": timestamp}
    with pytest.raises(EventError) as parsed:
        parse_event(orjson.dumps(envelope))
    assert parsed.value.reason.startswith(_RANGE_REASON)
    rejected = decode_record(InputRecord(sequence_number="1", partition_key="c-1", data=orjson.dumps(envelope)))
    assert isinstance(rejected, Rejected) and rejected.reason == parsed.value.reason
    tracker = Tracker("events", client=object(), flush_at_exit=False)
    with pytest.raises(InvalidEventError) as refused:
        tracker.track("c-1", "ping", timestamp=timestamp, event_id="e-1")
    assert (refused.value.field, refused.value.reason) == ("timestamp", parsed.value.reason)
    assert tracker.pending == 0


@pytest.mark.parametrize(
    ("timestamp", "ts"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("8999-12-31T23:59:59.999Z", 221_845_391_999_999),
        ("9000-01-01T00:59:59+01:00", 221_845_391_999_000),
    ],
)
def test_the_ends_of_the_accepted_range_are_accepted(timestamp: str, ts: int) -> None:
    envelope = {"event_id": "e-1", "customer_id": "c-1", "event": "ping", "timestamp": timestamp}
    assert parse_event(envelope).ts == ts


def test_a_v2_firing_has_no_step_and_is_read_as_the_first():
    """v2 (before escalation) had no ``step``: it is the rule's action, step 0."""
    v2 = loads(encode_firing(FIRING))
    v2["v"] = 2
    del v2["step"]
    assert decode_firing(orjson.dumps(v2)).step == 0


def test_an_escalation_step_travels_in_the_firing_message():
    step = replace(FIRING, step=2)
    assert decode_firing(encode_firing(step)).step == 2


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({}, "properties.channel is missing"),
        ({"channel": "webhook"}, "properties.channel is 'webhook'"),
        ({"channel": "push", "firing_id": 7}, "properties.firing_id must be a string"),
        ({"channel": "push", "step": "1"}, "properties.step must be a whole number"),
    ],
)
def test_a_message_event_names_its_channel_and_typed_ids(properties, problem):
    envelope = {"event_id": "e", "customer_id": "c", "event": "message_opened", "timestamp": "2026-01-01T00:00:00Z"}
    with pytest.raises(EventError, match=problem):
        parse_event({**envelope, "properties": properties})


def test_message_sent_is_the_engines_own_record_and_cannot_be_sent():
    envelope = {"event_id": "e", "customer_id": "c", "event": "message_sent", "timestamp": "2026-01-01T00:00:00Z"}
    with pytest.raises(EventError, match="recorded by the engine"):
        parse_event({**envelope, "properties": {"channel": "email"}})


def test_a_feedback_event_id_is_the_same_for_the_same_provider_report():
    first = feedback_event_id("ses", "0100-abc:Open:2026-01-01T00:00:00.000Z")
    assert first == feedback_event_id("ses", "0100-abc:Open:2026-01-01T00:00:00.000Z")
    assert first != feedback_event_id("ses", "0100-abc:Click:2026-01-01T00:00:00.000Z")
    assert first != feedback_event_id("sms", "0100-abc:Open:2026-01-01T00:00:00.000Z")
    assert (
        parse_event(
            {
                "event_id": first,
                "customer_id": "c",
                "event": "message_opened",
                "timestamp": "2026-01-01T00:00:00Z",
                "properties": {"channel": "email"},
            }
        ).event_id
        == first
    )
