"""Routes: which filters an event meets, what each is for, and how long a matching event is kept."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.engine import CustomerState, Engine, compile_rules
from nudge.engine.plan._builder import pinned_strings
from tests.support import at, ev, fired, plan, rule
from tests.unit.test_semantics import CART

DAY_MS = 86_400_000

YOGA = """
id: yoga
when:
  sequence: [{event: product_viewed, where: {sku: MAT}}, {event: product_viewed, where: {sku: BLOCKS}}]
  within: 7d
action: {channel: email, template: bundle}
"""

VIEWS = """
id: views
key: sku
when: {event: product_viewed, count: {gte: 3}, within: 3d}
action: {channel: push, template: still_thinking, properties: [sku]}
"""

TREND = """
id: loyal
when: {trend: {event: purchase, period: 1w, periods: 4, direction: increasing}}
action: {channel: sms, template: loyalty_perk}
"""


def test_a_filter_used_by_several_rules_is_one_filter_kept_for_its_longest_need():
    p = plan(CART, CART.replace("id: cart", "id: cart_two"), TREND)
    [purchase] = p.routes["purchase"].filters
    assert [r.id for r in purchase.cancels] == ["cart", "cart_two"]
    assert [r.id for r in purchase.triggers] == ["loyal"]
    assert purchase.horizon == 4 * 7 * DAY_MS + p.allowed_lateness  # every filter waits for stragglers too


def test_an_event_is_kept_only_as_long_as_the_filters_it_matches_need():
    """A plain product view serves the 3-day rule only; a mat view also serves the 7-day one."""
    engine = Engine(plan(YOGA, VIEWS))
    state = CustomerState("c-1")
    for event in (ev("product_viewed", "10:00", sku="MAT"), ev("product_viewed", "10:01", sku="SOCKS")):
        engine.process(state, event, event.ts)
    later = ev("product_viewed", "+4d 10:00", sku="HAT")
    engine.process(state, later, later.ts)
    assert [e.props["sku"] for e in state.events.of("product_viewed")] == ["MAT", "HAT"]
    for when, sku in (("+6d 10:00", "CAP"), ("+7d 10:03", "TIE")):  # 7 days and the 2 min allowed lateness
        event = ev("product_viewed", when, sku=sku)
        engine.process(state, event, event.ts)
    assert [e.props["sku"] for e in state.events.of("product_viewed")] == ["CAP", "TIE"]


def test_a_late_event_older_than_its_own_filters_need_is_not_stored():
    engine = Engine(plan(YOGA, VIEWS))
    state = CustomerState("c-1")
    now = ev("product_viewed", "+5d 10:00", sku="HAT")
    engine.process(state, now, now.ts)
    outcome = engine.process(state, ev("product_viewed", "10:00", sku="SOCKS"), now.ts)
    assert not outcome.accepted
    outcome = engine.process(state, ev("product_viewed", "10:00", sku="MAT"), now.ts)
    assert outcome.accepted


def test_the_longer_horizon_still_lets_a_week_long_sequence_fire():
    p = plan(YOGA, VIEWS)
    events = [
        ev("product_viewed", "10:00", sku="MAT"),
        *(ev("product_viewed", f"+{day}d 10:00", sku=f"S{day}") for day in range(1, 6)),
        ev("product_viewed", "+6d 10:00", sku="BLOCKS"),
    ]
    assert fired(p, events) == [("yoga", "c-1", None, at("+6d 10:00"))]


def test_rules_an_event_arms_through_several_filters_run_once_each_in_plan_order():
    both = """
id: both
when:
  any: [{event: product_viewed, where: {sku: MAT}}, {event: product_viewed, where: {price: {gte: 10}}}]
action: {channel: email, template: bundle}
"""
    p = plan(both.replace("id: both", "id: first"), both.replace("id: both", "id: second"))
    events = [ev("product_viewed", "10:00", sku="MAT", price=12)]
    assert [f[0] for f in fired(p, events)] == ["first", "second"]


def test_string_equality_and_string_sets_are_indexed_and_other_tests_are_scanned():
    assert pinned_strings({"sku": {"eq": "MAT"}}) == ("sku", ("MAT",))
    assert pinned_strings({"price": {"gte": 3}, "plan": {"in": ["pro", "team"]}}) == ("plan", ("pro", "team"))
    assert pinned_strings({"items": {"eq": 3}}) is None
    assert pinned_strings({"tag": {"in": ["a", 1]}}) is None
    assert pinned_strings({}) is None


SKUS = ["MAT", "BLOCKS", "STRAP", "1"]
_tests = st.one_of(
    st.sampled_from(SKUS).map(lambda sku: {"eq": sku}),
    st.lists(st.sampled_from(SKUS), min_size=1, max_size=3).map(lambda skus: {"in": skus}),
    st.sampled_from(SKUS).map(lambda sku: {"ne": sku}),
    st.just({"eq": 1}),
    st.just({"exists": True}),
    st.sampled_from(SKUS).map(lambda sku: {"eq": sku, "prefix": sku[:1]}),
)
_wheres = st.dictionaries(st.sampled_from(["sku", "kind"]), _tests, max_size=2)
_values = st.one_of(st.sampled_from(SKUS), st.integers(0, 2), st.none())
_props = st.dictionaries(st.sampled_from(["sku", "kind"]), _values, max_size=2)


@settings(max_examples=200, deadline=None)
@given(wheres=st.lists(_wheres, min_size=1, max_size=8), props=_props)
def test_the_index_finds_exactly_the_filters_a_full_scan_finds(wheres, props):
    rules = [
        rule(f"id: r{index}\nwhen: {{event: product_viewed, where: {json.dumps(where)}}}\naction: {{channel: email}}\n")
        for index, where in enumerate(wheres)
    ]
    route = compile_rules(rules).routes["product_viewed"]
    scanned = {id(item) for item in route.filters if item.matcher.matches(props)}
    found = [id(item) for item in route.match(props)]
    assert sorted(found) == sorted(scanned)
    assert len(found) == len(set(found))
