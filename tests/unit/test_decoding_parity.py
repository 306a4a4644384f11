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


# -- the plain-envelope fast path reads what the model reads -------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nudge.contracts import EventEnvelope, _plain_event  # noqa: E402


def _model(data: dict) -> tuple | str:  # type: ignore[type-arg]
    try:
        event = EventEnvelope.model_validate(data).to_event()
    except Exception as exc:
        return f"refused: {type(exc).__name__}"
    return (event.event_id, event.customer_id, event.name, event.ts, event.properties, event.traits)


STAMPS = st.one_of(
    st.sampled_from(
        [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.5Z",
            "2026-11-22T10:00:00.123456Z",
            "2026-11-22T10:00:00+05:30",
            "2026-11-22T10:00:00-00:00",
            "2026-02-30T10:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T23:59:60Z",
            "2026-11-22T10:00:00",
            "2026-11-22 10:00:00Z",
            "2026-11-22T10:00:00z",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "8999-12-31T23:59:59.999Z",
            "9000-01-01T00:00:00Z",
            "2026-11-22T10:00:00.1234567Z",
            "2026-11-22T10:00Z",
            "20261122T100000Z",
        ]
    ),
    st.integers(0, 2**41),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
TEXTS = st.one_of(st.text(max_size=3), st.sampled_from(["e1", "c-1", "x" * 128, "x" * 129, "y" * 257, "a\n", "é"]))
NAMES = st.one_of(
    st.sampled_from(
        ["purchase", "page_viewed", "a.b:c-d", "bad name", "x" * 129, "ok\n", "identify", "consent_updated"]
    ),
    st.text(max_size=4),
)
OBJECTS = st.one_of(
    st.dictionaries(st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3),
    st.none(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
)
TRAITS = st.one_of(
    OBJECTS, st.sampled_from([{"email": "ana@example.com"}, {"email": "nope"}, {"phone": "+351910000000"}])
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    data: dict = {  # type: ignore[type-arg]
        "event_id": draw(TEXTS),
        "customer_id": draw(TEXTS),
        "event": draw(NAMES),
        "timestamp": draw(STAMPS),
    }
    if draw(st.booleans()):
        data["properties"] = draw(OBJECTS)
    if draw(st.booleans()):
        data["traits"] = draw(TRAITS)
    for field in draw(st.lists(st.sampled_from(list(data)), max_size=1)):
        del data[field]
    if draw(st.integers(0, 9)) == 0:
        data["propertis"] = {}
    if draw(st.integers(0, 9)) == 0:
        data["event_id"] = draw(st.one_of(st.integers(), st.none()))
    return data


@settings(max_examples=600, deadline=None)
@given(data=envelopes())
def test_the_fast_path_accepts_only_what_the_model_accepts_and_reads_it_alike(data: dict) -> None:  # type: ignore[type-arg]
    plain = _plain_event(data)
    if plain is None:
        return  # the model decides, errors and all
    assert _model(data) == (plain.event_id, plain.customer_id, plain.name, plain.ts, plain.properties, plain.traits)


def test_the_fast_path_takes_the_plain_events_of_the_bench_workload() -> None:
    from nudge.bench.workload import WorkloadSpec, generate, record_bytes

    events = generate(WorkloadSpec(events=2_000, customers=200, seed=3)).events
    import orjson

    plain = [_plain_event(orjson.loads(record_bytes(e))) for e in events]
    taken = [p for p in plain if p is not None]
    assert len(taken) / len(plain) > 0.95  # all but consent events and identifies with addresses
    for event, read in zip(events, plain, strict=True):
        if read is not None:
            assert (read.event_id, read.name, read.ts, read.properties) == (
                event.event_id,
                event.name,
                event.ts,
                event.properties,
            )
