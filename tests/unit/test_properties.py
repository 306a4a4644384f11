"""Property-based checks of the promises replay and the evaluator rely on.

1. A pattern's events arriving in any order arm the rule exactly once, with the same arm time.
2. Sending every event twice (same event ids) gives exactly the firings of sending it once.
3. A state kept in memory and one encoded and decoded between events (as the evaluator does
   between batches) decide the same and hold the same: decoding's packed lists and prune's memo
   change how much work is done, never the result.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nudge.contracts import Event, key_text
from nudge.engine import CustomerState, Engine, Plan, compile_rules, load_rules_or_raise, replay
from tests.support import VOCABULARY as SHARED_VOCABULARY
from tests.support import at, plan

BASE = at("00:00")
MINUTE = 60_000
STEP_NAMES = ["product_viewed", "add_to_cart", "checkout_viewed", "whitepaper_downloaded", "onboarding_viewed"]
NOISE = ["page_viewed", "remove_from_cart", "upgraded"]


def _event(name: str, ts: int, event_id: str, **properties: Any) -> Event:
    return Event(event_id=event_id, customer_id="c-1", name=name, ts=ts, properties=properties)


@st.composite
def sequence_patterns(draw: st.DrawFn) -> tuple[Plan, list[Event]]:
    names = draw(st.lists(st.sampled_from(STEP_NAMES), min_size=2, max_size=4, unique=True))
    within = draw(st.integers(min_value=len(names), max_value=600))
    gaps = draw(st.lists(st.integers(1, within), min_size=len(names) - 1, max_size=len(names) - 1))
    if sum(gaps) > within:
        gaps = [max(1, gap * within // (sum(gaps) + 1)) for gap in gaps]
    start = BASE + draw(st.integers(0, 10_000)) * MINUTE
    times = [start]
    for gap in gaps:
        times.append(times[-1] + gap * MINUTE)
    steps = ", ".join(f"{{event: {name}, where: {{sku: S{i}}}}}" for i, name in enumerate(names))
    text = f"""
id: pattern
when:
  sequence: [{steps}]
  within: {within}m
action: {{channel: event}}
"""
    events = [_event(name, ts, f"p{i}", sku=f"S{i}") for i, (name, ts) in enumerate(zip(names, times, strict=True))]
    return plan(text), events


@st.composite
def count_patterns(draw: st.DrawFn) -> tuple[Plan, list[Event]]:
    n = draw(st.integers(2, 6))
    within = draw(st.integers(n, 600))
    offsets = sorted(draw(st.lists(st.integers(0, within), min_size=n, max_size=n, unique=True)))
    start = BASE + draw(st.integers(0, 10_000)) * MINUTE
    text = f"""
id: pattern
when: {{event: product_viewed, where: {{price: {{gte: 10}}}}, count: {{gte: {n}}}, within: {within}m}}
action: {{channel: event}}
"""
    events = [_event("product_viewed", start + o * MINUTE, f"p{i}", price=10 + i) for i, o in enumerate(offsets)]
    return plan(text), events


@st.composite
def all_patterns(draw: st.DrawFn) -> tuple[Plan, list[Event]]:
    n = draw(st.integers(1, 4))
    within = draw(st.integers(n + 1, 600))
    offsets = draw(st.lists(st.integers(0, within), min_size=n + 1, max_size=n + 1, unique=True))
    start = BASE + draw(st.integers(0, 10_000)) * MINUTE
    text = f"""
id: pattern
when:
  all:
    - {{event: whitepaper_downloaded, within: {within}m}}
    - {{event: page_viewed, where: {{section: services}}, count: {{gte: {n}}}, within: {within}m}}
action: {{channel: event}}
"""
    events = [_event("whitepaper_downloaded", start + offsets[0] * MINUTE, "p0")]
    events += [
        _event("page_viewed", start + o * MINUTE, f"p{i + 1}", section="services") for i, o in enumerate(offsets[1:])
    ]
    return plan(text), events


@st.composite
def noise(draw: st.DrawFn) -> list[Event]:
    items = draw(st.lists(st.tuples(st.sampled_from(NOISE), st.integers(0, 10_000)), max_size=6))
    return [_event(name, BASE + minute * MINUTE, f"n{i}") for i, (name, minute) in enumerate(items)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.one_of(sequence_patterns(), count_patterns(), all_patterns()),
    extra=noise(),
    data=st.data(),
)
def test_pattern_events_in_any_order_arm_once_with_the_same_arm_time(
    pattern: tuple[Plan, list[Event]], extra: list[Event], data: st.DataObject
):
    compiled, events = pattern
    arrival = data.draw(st.permutations(events + extra))
    engine = Engine(compiled)
    state = CustomerState("c-1")
    arms = []
    wall = 0
    for event in arrival:
        wall = max(wall, event.ts)
        outcome = engine.process(state, event, wall)
        arms += [decision.at for decision in outcome.decisions if decision.kind == "armed"]
    assert arms == [max(event.ts for event in events)]


SHIPPED = compile_rules(load_rules_or_raise("rules"))
VOCABULARY = [name for name in SHARED_VOCABULARY if name != "identify"]


@st.composite
def event_streams(draw: st.DrawFn, span_minutes: int = 8 * 24 * 60) -> list[Event]:
    count = draw(st.integers(1, 60))
    events = []
    for index in range(count):
        name = draw(st.sampled_from(VOCABULARY))
        props: dict[str, Any] = {}
        if name in ("product_viewed", "add_to_cart", "remove_from_cart", "purchase"):
            props = {"sku": draw(st.sampled_from(["SKU-YOGA-MAT", "SKU-YOGA-BLOCKS", "SKU-3"])), "price": 10}
        elif name == "page_viewed":
            props = {"section": draw(st.sampled_from(["services", "blog"]))}
        minute = draw(st.integers(0, span_minutes))
        events.append(
            Event(
                event_id=f"e{index}",
                customer_id=draw(st.sampled_from(["c-1", "c-2"])),
                name=name,
                ts=BASE + minute * MINUTE,
                properties=props,
            )
        )
    return events


def _firings(events: list[Event]) -> list[dict[str, Any]]:
    return [firing.to_json() for firing in replay(SHIPPED, events)]


@settings(max_examples=200, deadline=None)
@given(events=event_streams(), seed=st.integers(0, 2**32 - 1))
def test_every_event_sent_twice_gives_the_same_firings_as_once(events: list[Event], seed: int):
    shuffler = random.Random(seed)
    doubled = list(events)
    for event in events:
        original = doubled.index(event)
        doubled.insert(shuffler.randint(original + 1, len(doubled)), event)
    assert _firings(doubled) == _firings(events)


def _held(state: CustomerState) -> bytes:
    return state.encode()


@settings(max_examples=200, deadline=None)
@given(events=event_streams())
@example(  # two names forgotten at once: a decoded log lists them in another order than a warm one
    events=[
        Event(event_id="e0", customer_id="c-1", name="checkout_viewed", ts=BASE, properties={}),
        Event(event_id="e1", customer_id="c-1", name="add_to_cart", ts=BASE, properties={"sku": "SKU-3", "price": 10}),
        Event(event_id="e2", customer_id="c-1", name="whitepaper_downloaded", ts=BASE + 63 * MINUTE, properties={}),
    ]
)
def test_a_state_decoded_between_events_decides_and_holds_exactly_what_one_kept_in_memory_does(
    events: list[Event],
):
    """In memory, with the prune memo and packed lists warm; and decoded before every event (as between batches)."""
    engine = Engine(SHIPPED)
    kept, reloaded = CustomerState("c-1"), CustomerState("c-1")
    for event in events:
        reloaded = CustomerState.decode(reloaded.encode())
        outcomes = [engine.process(state, event, event.ts) for state in (kept, reloaded)]
        assert len({repr((o.firings, o.timers, o.decisions)) for o in outcomes}) == 1
        assert _held(kept) == _held(reloaded)


KEYED = plan(
    """
id: views_per_sku
key: sku
when: {event: product_viewed, count: {gte: 2}, within: 1d}
unless: {event: purchase}
wait: 1h
action: {channel: event, properties: [sku]}
""",
    """
id: mat_then_blocks_per_sku
key: sku
when:
  sequence: [{event: product_viewed}, {event: add_to_cart}]
  within: 1d
action: {channel: event, properties: [sku]}
""",
)
MIXED_SKUS = [1, "1", True, "true", 1.0, 2, "2", "#1"]


@st.composite
def mixed_key_streams(draw: st.DrawFn) -> list[Event]:
    events = []
    for index in range(draw(st.integers(1, 40))):
        name = draw(st.sampled_from(["product_viewed", "product_viewed", "add_to_cart", "purchase"]))
        sku = draw(st.sampled_from(MIXED_SKUS))
        minute = draw(st.integers(0, 6 * 60))
        events.append(_event(name, BASE + minute * MINUTE, f"k{index}", sku=sku))
    return events


@settings(max_examples=200, deadline=None)
@given(events=mixed_key_streams())
def test_keyed_rules_never_mix_keys_of_different_json_types(events: list[Event]):
    for firing in replay(KEYED, events):
        kinds = {(_json_kind(e.properties["sku"]), e.properties["sku"]) for e in firing.events}
        assert len(kinds) == 1, f"one firing, keys of several JSON values: {kinds}"
        [(_, value)] = kinds
        assert key_text(value) == firing.key


def _json_kind(value: object) -> str:
    return "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"


def _accepted_ids(events: list[Event]) -> set[tuple[str, str]]:
    """(customer, id) of every event the engine stores when ``events`` arrive in this order."""
    engine, states = Engine(SHIPPED), {}
    accepted = set()
    for event in events:
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        if engine.process(state, event, event.ts).accepted:
            accepted.add((event.customer_id, event.event_id))
    return accepted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_streams(span_minutes=20 * 60), data=st.data())
def test_a_second_copy_with_another_payload_changes_nothing_once_the_first_is_stored(
    events: list[Event], data: st.DataObject
):
    """Within the dedupe window, an id counts once: its copies may differ in name and properties.

    A copy keeps the original's timestamp: in replay a later timestamp would also move the virtual
    clock, which stands for the wall clock, and that changes when waits are decided.
    """
    accepted = _accepted_ids(events)
    stream = list(events)
    for original in events:
        if (original.customer_id, original.event_id) not in accepted or not data.draw(st.booleans()):
            continue
        name = data.draw(st.sampled_from(VOCABULARY))
        copy = Event(
            event_id=original.event_id,
            customer_id=original.customer_id,
            name=name,
            ts=original.ts,
            properties={"sku": data.draw(st.sampled_from(["SKU-YOGA-MAT", "SKU-YOGA-BLOCKS"])), "section": "services"},
        )
        after = stream.index(original) + 1
        stream.insert(data.draw(st.integers(after, len(stream))), copy)
    assert _firings(stream) == _firings(events)
