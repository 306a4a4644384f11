"""One envelope decoder: the Lambda's record path and replay's file path accept, refuse and read alike."""

from __future__ import annotations

import pytest

from nudge.contracts import Event, EventError, parse_event
from nudge.engine import CustomerState, Engine
from nudge.evaluator import InputRecord, Rejected, decode_record
from tests.support import plan

PRICE_RULE = """
id: big_spender
when: {event: purchase, where: {total: {gt: 100}}}
cooldown: 1d
action: {channel: email, template: thanks}
"""

ENVELOPE = '{{"event_id":"e1","customer_id":"c-1","event":"purchase","timestamp":"2026-11-22T10:00:00Z",{tail}}}'

CASES = {
    "nan": '"properties":{"total":NaN}',
    "infinity": '"properties":{"total":Infinity}',
    "minus infinity": '"properties":{"total":-Infinity}',
    "thirty-digit integer": '"properties":{"total":123456789012345678901234567890}',
    "integer beyond 64 bits": '"properties":{"total":18446744073709551616}',
    "largest unsigned 64-bit integer": '"properties":{"total":18446744073709551615}',
    "duplicate property key": '"properties":{"total":5,"total":500}',
    "duplicate envelope key": '"properties":{"total":500},"properties":{"total":5}',
    "float overflow": '"properties":{"total":1e400}',
    "plain": '"properties":{"total":250.5}',
    "misspelt envelope key": '"propertis":{"total":500}',
}


def _replay_side(data: bytes) -> Event | str:
    try:
        return parse_event(data)
    except EventError as exc:
        return exc.reason


def _lambda_side(data: bytes) -> Event | str:
    decoded = decode_record(InputRecord(sequence_number="1", partition_key="c-1", data=data))
    if isinstance(decoded, Rejected):
        return decoded.reason
    assert isinstance(decoded, Event)
    return decoded


def _decisions(event: Event) -> list[tuple[str, str]]:
    outcome = Engine(plan(PRICE_RULE)).process(CustomerState("c-1"), event, event.ts)
    return [(d.rule, d.kind) for d in outcome.decisions]


@pytest.mark.parametrize("tail", CASES.values(), ids=CASES.keys())
def test_the_lambda_path_and_replay_read_the_same_bytes_alike(tail: str):
    data = ENVELOPE.format(tail=tail).encode()
    replayed, evaluated = _replay_side(data), _lambda_side(data)
    if isinstance(replayed, str) or isinstance(evaluated, str):
        assert replayed == evaluated  # both refuse, for the same reason
        return
    assert replayed.properties == evaluated.properties
    assert type(replayed.properties["total"]) is type(evaluated.properties["total"])
    assert _decisions(replayed) == _decisions(evaluated)


def test_nan_and_infinity_are_refused_on_both_paths():
    for name in ("nan", "infinity", "minus infinity"):
        data = ENVELOPE.format(tail=CASES[name]).encode()
        assert isinstance(_lambda_side(data), str)
        assert _lambda_side(data).startswith("not JSON")


def test_a_misspelt_envelope_key_is_refused_on_both_paths_naming_the_field():
    """It used to be dropped on both: the purchase was evaluated without its total."""
    data = ENVELOPE.format(tail=CASES["misspelt envelope key"]).encode()
    reason = "propertis: unknown field; did you mean properties?"
    assert _lambda_side(data) == _replay_side(data) == reason


def test_the_last_of_duplicate_keys_wins_on_both_paths():
    data = ENVELOPE.format(tail=CASES["duplicate property key"]).encode()
    evaluated = _lambda_side(data)
    assert isinstance(evaluated, Event)
    assert evaluated.properties == {"total": 500}
    assert _decisions(evaluated) == [("big_spender", "armed"), ("big_spender", "fired")]
