"""The engine against its naive reference (``runtime/reference.py``): same retention, same armings.

Every storage trick of the event log and every shortcut of the engine (packed lists, horizon
memos, the prune memo, the filter index, shared evaluation contexts) must leave these two equal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.contracts import Event
from nudge.engine import CustomerState, Engine, Plan, compile_rules, load_rules_or_raise
from nudge.engine.runtime.reference import ReferenceModel
from tests.support import VOCABULARY, at, plan

BASE = at("00:00")
MINUTE = 60_000
SHIPPED = compile_rules(load_rules_or_raise("rules"))
SKUS = ["SKU-YOGA-MAT", "SKU-YOGA-BLOCKS", "SKU-3"]

# Filters on one name with different horizons, and a count that raises its cap: each product view
# is kept as long as the longest window among the filters it matches (6h or 10m), and competes for
# 55 places, so a crowded history fills the cap while cheap views pass their horizons.
CROWDED = plan(
    """
id: pricey_views_often
key: sku
when: {event: product_viewed, where: {price: {gte: 10}}, count: {gte: 55}, within: 6h}
cooldown: 1d
action: {channel: event}
""",
    """
id: any_view_then_cart
when:
  sequence: [{event: product_viewed}, {event: add_to_cart}]
  within: 10m
action: {channel: event}
""",
    """
id: blocks_then_checkout
when:
  sequence: [{event: product_viewed, where: {sku: SKU-YOGA-BLOCKS}}, {event: checkout_viewed}]
  within: 2d
wait: 1h
unless: {event: purchase}
action: {channel: event}
""",
)


@st.composite
def histories(draw: st.DrawFn, names: list[str], size: int, span_minutes: int, least: int = 1) -> list[Event]:
    events = []
    for index in range(draw(st.integers(least, size))):
        name = draw(st.sampled_from(names))
        props: dict[str, Any] = {}
        if name in ("product_viewed", "add_to_cart", "purchase"):
            props = {"sku": draw(st.sampled_from(SKUS)), "price": draw(st.sampled_from([5, 10, 40]))}
        elif name == "page_viewed":
            props = {"section": draw(st.sampled_from(["services", "blog"]))}
        ts = BASE + draw(st.integers(0, span_minutes)) * MINUTE
        # Ids repeat now and then: a re-sent event is a duplicate of what is stored.
        event_id = f"e{draw(st.integers(0, index))}" if draw(st.booleans()) and index else f"e{index}"
        events.append(Event(event_id=event_id, customer_id="c-1", name=name, ts=ts, properties=props))
    return events


def _held(state: CustomerState) -> dict[str, list[str]]:
    return {name: [e.id for e in items] for name, items in state.events.all().items() if items}


def _compare(compiled: Plan, events: list[Event], *, reload: bool) -> None:
    engine, reference = Engine(compiled), ReferenceModel(compiled)
    state = CustomerState("c-1")
    armings: list[tuple[str, str | None, int]] = []
    for event in events:
        if reload:
            state = CustomerState.decode(state.encode())  # as between two batches
        outcome = engine.process(state, event, event.ts)
        armings += [(d.rule, d.key, d.at) for d in outcome.decisions if d.kind == "armed"]
        reference.feed(event)
        assert _held(state) == reference.retained()
        assert state.now == reference.now
    assert armings == reference.armings


CROWDED_NAMES = ["product_viewed"] * 6 + ["add_to_cart", "checkout_viewed", "purchase"]
"""Mostly product views: enough of them to fill the cap while older ones pass their horizons."""


@settings(max_examples=150, deadline=None)
@given(events=histories(CROWDED_NAMES, 220, 8 * 60, least=120))
def test_crowded_history_retains_and_arms_as_the_reference_does(events: list[Event]):
    _compare(CROWDED, events, reload=False)


@settings(max_examples=100, deadline=None)
@given(events=histories(CROWDED_NAMES, 220, 8 * 60, least=120))
def test_crowded_history_decoded_between_events_retains_and_arms_as_the_reference_does(events: list[Event]):
    _compare(CROWDED, events, reload=True)


SHIPPED_NAMES = [name for name in VOCABULARY if name != "identify"]


@settings(max_examples=150, deadline=None)
@given(events=histories(SHIPPED_NAMES, 80, 30 * 24 * 60), reload=st.booleans())
def test_shipped_rules_retain_and_arm_as_the_reference_does(events: list[Event], reload: bool):
    _compare(SHIPPED, events, reload=reload)
