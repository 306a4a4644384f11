"""The engine's documented semantics, one behaviour per test (README: "Semantics")."""

from __future__ import annotations

import pytest

from nudge.contracts import EventError, Timer, key_text, parse_event
from nudge.engine import CustomerState, Engine, TimerCancel, TimerSet, compile_rules
from tests.support import at, ev, fired, plan, rule, run

CART = """
id: cart
when:
  sequence: [{event: add_to_cart}, {event: checkout_viewed}]
  within: 1h
unless: {event: purchase}
wait: 1h
action: {channel: email, template: cart_reminder, properties: [sku, name, price]}
"""

IMMEDIATE = """
id: x_then_y
when:
  sequence: [{event: product_viewed, where: {sku: X}}, {event: product_viewed, where: {sku: Y}}]
  within: 7d
action: {channel: email, template: bundle}
"""


# -- arming and firing ----------------------------------------------------------------------------


def test_rule_without_wait_fires_at_arm_time():
    p = plan(IMMEDIATE)
    events = [ev("product_viewed", "10:00", sku="X"), ev("product_viewed", "+2d 09:00", sku="Y")]
    assert fired(p, events) == [("x_then_y", "c-1", None, at("+2d 09:00"))]


def test_sequence_steps_must_come_in_order():
    p = plan(IMMEDIATE)
    events = [ev("product_viewed", "10:00", sku="Y"), ev("product_viewed", "11:00", sku="X")]
    assert fired(p, events) == []


def test_sequence_longer_than_within_does_not_match():
    p = plan(IMMEDIATE)
    events = [ev("product_viewed", "10:00", sku="X"), ev("product_viewed", "+7d 10:01", sku="Y")]
    assert fired(p, events) == []


def test_sequence_spanning_exactly_within_matches():
    p = plan(IMMEDIATE)
    events = [ev("product_viewed", "10:00", sku="X"), ev("product_viewed", "+7d 10:00", sku="Y")]
    assert fired(p, events) == [("x_then_y", "c-1", None, at("+7d 10:00"))]


def test_sequence_needs_strictly_increasing_timestamp_then_event_id():
    p = plan(IMMEDIATE)
    same = [ev("product_viewed", "10:00", event_id="b", sku="X"), ev("product_viewed", "10:00", event_id="a", sku="Y")]
    assert fired(p, same) == []  # Y's id says it came first
    ordered = [
        ev("product_viewed", "10:00", event_id="a", sku="X"),
        ev("product_viewed", "10:00", event_id="b", sku="Y"),
    ]
    assert [f[0] for f in fired(p, ordered)] == [p.rules[0].id]


def test_wait_without_unless_fires_at_arm_time_plus_wait():
    p = plan(CART.replace("unless: {event: purchase}\n", ""))
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "10:30")]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_wait_with_unless_fires_when_no_unless_event_comes():
    p = plan(CART)
    assert fired(p, [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]) == [
        ("cart", "c-1", None, at("11:05"))
    ]


def test_late_purchase_inside_wait_cancels_firing():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "10:45")]
    assert fired(p, events) == []


def test_unless_event_exactly_at_end_of_wait_cancels():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "11:05")]
    assert fired(p, events) == []


def test_unless_event_after_the_wait_does_not_cancel():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "11:06")]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_unless_event_before_arm_time_does_not_cancel():
    p = plan(CART)
    events = [ev("purchase", "09:59"), ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_unless_event_that_arrived_before_the_arming_event_cancels():
    """The purchase (10:30) reaches us before the checkout (10:05) that arms: it still counts."""
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("purchase", "10:30"), ev("checkout_viewed", "10:05")]
    assert fired(p, events) == []


def test_unless_any_of_several_filters_cancels():
    p = plan(CART.replace("unless: {event: purchase}", "unless: {any: [{event: purchase}, {event: remove_from_cart}]}"))
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("remove_from_cart", "10:10")]
    assert fired(p, events) == []


def test_unless_where_filters_which_events_cancel():
    p = plan(CART.replace("unless: {event: purchase}", "unless: {event: purchase, where: {total: {gt: 0}}}"))
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "10:10", total=0)]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_debounce_restarts_the_wait_from_the_latest_arming():
    p = plan(CART)
    events = [
        ev("add_to_cart", "10:00"),
        ev("checkout_viewed", "10:05"),
        ev("add_to_cart", "10:40"),
        ev("checkout_viewed", "10:50"),
    ]
    assert fired(p, events) == [("cart", "c-1", None, at("11:50"))]


def test_debounced_firing_lists_every_cart_line_in_the_window():
    p = plan(CART)
    events = [
        ev("add_to_cart", "10:00", sku="A", name="Yoga mat", price=29.9),
        ev("add_to_cart", "10:20", sku="B", name="Blocks", price=9.5),
        ev("checkout_viewed", "10:30"),
    ]
    [firing] = run(p, events)
    lines = [(e.event, e.properties.get("name")) for e in firing.events]
    assert lines == [("add_to_cart", "Yoga mat"), ("add_to_cart", "Blocks"), ("checkout_viewed", None)]
    assert firing.armed_at == at("10:30")
    assert firing.template == "cart_reminder"
    assert firing.channel == "email"


def test_firing_keeps_only_the_properties_rules_read():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00", sku="A", name="Mat", price=1, secret="x"), ev("checkout_viewed", "10:05")]
    [firing] = run(p, events)
    assert firing.events[0].properties == {"sku": "A", "name": "Mat", "price": 1}


def test_firing_id_is_deterministic_per_arming():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]
    first = run(p, events)
    second = run(p, [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")])
    assert [f.firing_id for f in first] == [f.firing_id for f in second]
    assert len(first[0].firing_id) == 32


# -- event time and arrival order -----------------------------------------------------------------


def test_pattern_arriving_in_reverse_order_arms_once_with_the_same_arm_time():
    p = plan(IMMEDIATE)
    events = [ev("product_viewed", "+1d 10:00", sku="Y"), ev("product_viewed", "10:00", sku="X")]
    assert fired(p, events) == [("x_then_y", "c-1", None, at("+1d 10:00"))]


def test_late_event_counts_where_its_timestamp_puts_it():
    """A cart add sent late by a mobile app completes the sequence it belongs to."""
    p = plan(CART)
    events = [ev("checkout_viewed", "10:05"), ev("add_to_cart", "10:00")]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_windows_use_event_time_not_arrival_order():
    count_rule = """
id: views
when: {event: product_viewed, count: {gte: 3}, within: 1d}
cooldown: 7d
action: {channel: push, template: t}
"""
    p = plan(count_rule)
    events = [ev("product_viewed", "10:00"), ev("product_viewed", "+2d 10:00"), ev("product_viewed", "+2d 09:00")]
    assert fired(p, events) == []
    events = [ev("product_viewed", "+2d 08:00"), ev("product_viewed", "+2d 10:00"), ev("product_viewed", "+2d 09:00")]
    assert fired(p, events) == [("views", "c-1", None, at("+2d 10:00"))]


def test_event_older_than_the_window_of_now_is_ignored():
    count_rule = """
id: views
when: {event: product_viewed, count: {gte: 2}, within: 1h}
cooldown: 7d
action: {channel: push, template: t}
"""
    p = plan(count_rule)
    events = [ev("product_viewed", "12:00"), ev("product_viewed", "10:00")]
    assert fired(p, events) == []


def test_late_arming_after_the_wait_is_over_fires_at_once_at_its_due_time():
    p = plan(CART)
    events = [
        ev("page_viewed", "10:00", customer="c-2"),
        ev("checkout_viewed", "10:05"),
        ev("add_to_cart", "13:00", customer="c-2"),  # the clock is now 13:00
        ev("add_to_cart", "10:00"),  # c-1's late add completes a wait that ended at 11:05
    ]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_replay_fires_a_timer_due_before_an_event_before_processing_that_event():
    p = plan(CART)
    events = [
        ev("add_to_cart", "10:00"),
        ev("checkout_viewed", "10:05"),
        ev("page_viewed", "11:10", customer="c-2"),
        ev("purchase", "11:00"),  # late: the reminder was already sent at 11:05
    ]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_replay_processes_an_event_at_the_due_time_before_the_timer():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "11:05")]
    assert fired(p, events) == []


def test_until_leaves_later_waits_pending():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]
    assert fired(p, events, until=at("11:04")) == []
    assert fired(p, [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")], until=at("11:05")) == [
        ("cart", "c-1", None, at("11:05"))
    ]


# -- duplicates -----------------------------------------------------------------------------------


def test_duplicate_event_id_has_no_effect_the_second_time():
    p = plan(IMMEDIATE)
    x = ev("product_viewed", "10:00", sku="X", event_id="same-x")
    y = ev("product_viewed", "11:00", sku="Y", event_id="same-y")
    assert fired(p, [x, y, x, y]) == [("x_then_y", "c-1", None, at("11:00"))]


def test_duplicate_does_not_count_twice_toward_a_count():
    count_rule = """
id: views
when: {event: product_viewed, count: {gte: 2}, within: 1d}
cooldown: 7d
action: {channel: push, template: t}
"""
    view = ev("product_viewed", "10:00", event_id="v1")
    assert fired(plan(count_rule), [view, view]) == []


def test_redelivered_timer_fires_only_once():
    p = plan(CART)
    engine = Engine(p)
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00"), at("10:00"))
    outcome = engine.process(state, ev("checkout_viewed", "10:05"), at("10:05"))
    [request] = outcome.timers
    assert isinstance(request, TimerSet)
    assert request.timer.due == at("11:05")
    assert len(engine.on_timer(state, request.timer).firings) == 1
    again = engine.on_timer(state, request.timer)
    assert again.firings == []
    assert [d.kind for d in again.decisions] == ["stale_timer"]


def test_timer_for_a_cancelled_wait_is_a_no_op():
    p = plan(CART)
    engine = Engine(p)
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00"), at("10:00"))
    [request] = engine.process(state, ev("checkout_viewed", "10:05"), at("10:05")).timers
    cancel = engine.process(state, ev("purchase", "10:30"), at("10:30"))
    assert cancel.timers == [TimerCancel("c-1", "cart", None, at("10:05"))]
    assert isinstance(request, TimerSet)
    assert engine.on_timer(state, request.timer).firings == []


def test_timer_for_a_superseded_arming_is_a_no_op():
    p = plan(CART)
    engine = Engine(p)
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00"), at("10:00"))
    [first] = engine.process(state, ev("checkout_viewed", "10:05"), at("10:05")).timers
    [second] = engine.process(state, ev("checkout_viewed", "10:20"), at("10:20")).timers
    assert isinstance(first, TimerSet)
    assert isinstance(second, TimerSet)
    assert engine.on_timer(state, first.timer).firings == []
    assert [f.fired_at for f in engine.on_timer(state, second.timer).firings] == [at("11:20")]


# -- cooldown -------------------------------------------------------------------------------------

COOLING = """
id: buyer
when: {event: purchase}
cooldown: 24h
action: {channel: sms, template: thanks}
"""


def test_cooldown_suppresses_a_second_firing_inside_it():
    p = plan(COOLING)
    events = [ev("purchase", "10:00"), ev("purchase", "+1d 09:59")]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00"))]


def test_cooldown_allows_a_firing_exactly_when_it_ends():
    p = plan(COOLING)
    events = [ev("purchase", "10:00"), ev("purchase", "+1d 10:00")]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00")), ("buyer", "c-1", None, at("+1d 10:00"))]


def test_cooldown_is_per_customer():
    p = plan(COOLING)
    events = [ev("purchase", "10:00"), ev("purchase", "10:01", customer="c-2")]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00")), ("buyer", "c-2", None, at("10:01"))]


def test_rule_without_wait_or_cooldown_fires_on_every_matching_event():
    p = plan(COOLING.replace("cooldown: 24h\n", ""))
    events = [ev("purchase", "10:00"), ev("purchase", "10:01")]
    assert len(fired(p, events)) == 2


def test_arm_times_only_move_forward():
    """A late purchase older than one already seen does not arm again (and a re-delivery cannot)."""
    p = plan(COOLING.replace("cooldown: 24h\n", ""))
    events = [ev("purchase", "10:00"), ev("purchase", "09:00")]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00"))]


# -- keys -----------------------------------------------------------------------------------------

PER_PRODUCT = """
id: views_per_sku
key: sku
when: {event: product_viewed, count: {gte: 3}, within: 3d}
unless: {event: purchase}
wait: 2h
cooldown: 7d
action: {channel: push, template: still_thinking, properties: [name]}
"""


def test_keyed_rule_counts_each_key_separately():
    p = plan(PER_PRODUCT)
    events = [
        ev("product_viewed", "10:00", sku="A"),
        ev("product_viewed", "10:10", sku="B"),
        ev("product_viewed", "10:20", sku="A"),
        ev("product_viewed", "10:30", sku="B"),
        ev("product_viewed", "10:40", sku="A"),
    ]
    assert fired(p, events) == [("views_per_sku", "c-1", "A", at("12:40"))]


def test_keyed_unless_only_cancels_the_same_key():
    p = plan(PER_PRODUCT)
    views = [ev("product_viewed", f"10:{m:02d}", sku=sku) for m in (0, 10, 20) for sku in ("A", "B")]
    events = [*views, ev("purchase", "11:00", sku="A")]
    assert fired(p, events) == [("views_per_sku", "c-1", "B", at("12:20"))]


def test_keyed_rule_ignores_events_without_the_key():
    p = plan(PER_PRODUCT)
    events = [ev("product_viewed", f"10:0{m}") for m in range(5)]
    assert fired(p, events) == []


def test_numeric_key_values_are_keys_too():
    """A key that is not a string is `#` and its JSON, so it can never be taken for a string key."""
    p = plan(PER_PRODUCT)
    events = [ev("product_viewed", f"10:0{m}", sku=42) for m in range(3)]
    assert fired(p, events) == [("views_per_sku", "c-1", "#42", at("12:02"))]


@pytest.mark.parametrize(
    ("first", "second"),
    [(1, "1"), (True, "true"), (2, "2"), (True, 1), (False, 0), ("#1", 1)],
    ids=["number-string", "bool-string", "two", "bool-number", "false-zero", "marked-string"],
)
def test_key_values_of_different_json_types_are_different_keys(first, second):
    p = plan(PER_PRODUCT)
    views = [ev("product_viewed", f"10:0{m}", sku=value) for m in range(3) for value in (first, second)]
    assert sorted(key for _, _, key, _ in fired(p, views)) == sorted([key_text(first), key_text(second)])
    # A purchase of the one cancels only the one's wait.
    kept = fired(p, [*views, ev("purchase", "10:30", sku=second)])
    assert [key for _, _, key, _ in kept] == [key_text(first)]


def test_numbers_are_one_key_by_value():
    p = plan(PER_PRODUCT)
    events = [ev("product_viewed", "10:00", sku=7), ev("product_viewed", "10:01", sku=7.0)]
    events.append(ev("product_viewed", "10:02", sku=7))
    assert fired(p, events) == [("views_per_sku", "c-1", "#7", at("12:02"))]
    assert fired(p, [*events, ev("purchase", "10:30", sku=7.0)]) == []


# -- audience -------------------------------------------------------------------------------------

IBERIA = COOLING.replace("cooldown: 24h", "cooldown: 24h\naudience: {attribute: country, in: [PT, ES]}")


def test_audience_excludes_customers_whose_traits_do_not_match():
    p = plan(IBERIA)
    events = [ev("identify", "09:00", traits={"country": "FR"}), ev("purchase", "10:00")]
    assert fired(p, events) == []


def test_audience_includes_matching_customers():
    p = plan(IBERIA)
    events = [ev("identify", "09:00", traits={"country": "PT"}), ev("purchase", "10:00")]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00"))]


def test_audience_is_checked_when_the_rule_fires_not_when_it_arms():
    p = plan(CART + "audience: {attribute: country, eq: PT}\n")
    events = [
        ev("add_to_cart", "10:00"),
        ev("checkout_viewed", "10:05"),
        ev("identify", "10:30", traits={"country": "PT"}),
    ]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_a_late_identify_does_not_overwrite_a_newer_trait():
    p = plan(IBERIA)
    events = [
        ev("identify", "09:00", traits={"country": "PT"}),
        ev("identify", "08:00", traits={"country": "FR", "first_name": "Ana"}),
        ev("purchase", "10:00"),
    ]
    assert fired(p, events) == [("buyer", "c-1", None, at("10:00"))]


def test_identify_with_null_removes_a_trait():
    engine = Engine(plan(IBERIA))
    state = CustomerState("c-1")
    engine.process(state, ev("identify", "09:00", traits={"country": "PT", "phone": "+351"}), 0)
    engine.process(state, ev("identify", "09:30", traits={"phone": None}), 0)
    assert state.traits() == {"country": "PT"}


# -- state ----------------------------------------------------------------------------------------


def test_events_no_rule_references_are_not_stored():
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    outcome = engine.process(state, ev("page_viewed", "10:00", section="blog"), at("10:00"))
    assert not outcome.changed
    assert state.is_empty()


def test_events_matching_no_filter_are_not_stored():
    engine = Engine(plan(IMMEDIATE))
    state = CustomerState("c-1")
    outcome = engine.process(state, ev("product_viewed", "10:00", sku="Z"), at("10:00"))
    assert not outcome.changed
    assert not state.events


def test_state_forgets_events_older_than_the_longest_window():
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00"), at("10:00"))
    engine.process(state, ev("add_to_cart", "13:00"), at("13:00"))
    assert [e.ts for e in state.events.of("add_to_cart")] == [at("13:00")]


def test_state_keeps_at_most_the_history_cap_per_event_name():
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    for second in range(80):
        engine.process(state, ev("add_to_cart", at("10:00") + second * 1000), at("10:00"))
    assert len(state.events.of("add_to_cart")) == 50


def test_state_round_trips_through_its_encoding_mid_stream():
    p = plan(CART, PER_PRODUCT, IBERIA)
    events = [
        ev("identify", "09:00", traits={"country": "PT", "first_name": "Ana"}),
        ev("add_to_cart", "10:00", sku="A", name="Mat", price=1.5),
        ev("checkout_viewed", "10:05"),
        ev("product_viewed", "10:06", sku="A"),
        ev("product_viewed", "10:07", sku="A"),
    ]
    engine = Engine(p)
    state = CustomerState("c-1")
    for event in events:
        engine.process(state, event, event.ts)
    decoded = CustomerState.decode(state.encode())
    assert decoded.encode() == state.encode()
    follow = ev("product_viewed", "10:08", sku="A")
    a = engine.process(state, follow, follow.ts)
    b = engine.process(decoded, follow, follow.ts)
    assert a.timers == b.timers
    assert decoded.encode() == state.encode()
    assert state.size() == len(state.encode())


def test_state_from_rules_no_longer_deployed_is_dropped():
    old = Engine(plan(CART, IMMEDIATE))
    state = CustomerState("c-1")
    old.process(state, ev("add_to_cart", "10:00"), at("10:00"))
    old.process(state, ev("checkout_viewed", "10:05"), at("10:05"))
    old.process(state, ev("product_viewed", "10:06", sku="X"), at("10:06"))
    assert ("cart", None) in state.rules
    new = Engine(plan(IMMEDIATE))
    new.prune(state)
    assert ("cart", None) not in state.rules
    assert set(state.events.names()) == {"product_viewed"}
    stale = new.on_timer(state, Timer("c-1", "cart", None, at("10:05"), at("11:05")))
    assert stale.firings == []


def test_referenced_events_and_horizon_come_from_the_rules():
    p = plan(CART, IMMEDIATE)
    assert p.referenced_events() == ["add_to_cart", "checkout_viewed", "product_viewed", "purchase"]
    assert p.longest_horizon() == 7 * 86_400_000 + p.allowed_lateness


def test_disabled_rules_are_not_compiled():
    assert compile_rules([rule(CART + "enabled: false\n")]).rules == ()


def test_late_event_of_a_pending_arming_joins_its_firing_without_rearming():
    """add_1 arrives after the arming it belongs to: the reminder lists it, and no new wait starts."""
    p = plan(CART)
    events = [
        ev("add_to_cart", "10:01", name="Blocks"),
        ev("checkout_viewed", "10:05"),
        ev("add_to_cart", "10:00", name="Yoga mat"),
    ]
    [firing] = run(p, events)
    assert firing.fired_at == at("11:05")
    assert [e.properties.get("name") for e in firing.events] == ["Yoga mat", "Blocks", None]


def test_event_text_must_be_strict_json_and_big_integers_read_as_floats():
    base = '{"event_id": "e1", "customer_id": "c-1", "event": "purchase", "timestamp": "2026-11-22T10:00:00Z"'
    with pytest.raises(EventError, match="not JSON"):
        parse_event(base + ', "properties": {"total": NaN}}')
    big = parse_event(base + ', "properties": {"total": 18446744073709551616}}')
    assert big.properties == {"total": 1.8446744073709552e19}


def test_state_with_integers_beyond_64_bits_still_encodes():
    state = CustomerState("c-1")
    engine = Engine(plan(CART))
    engine.process(state, ev("add_to_cart", "10:00", sku=2**70), at("10:00"))
    assert CustomerState.decode(state.encode()).events.of("add_to_cart")[0].props == {"sku": 2**70}


# -- duplicates: an event id counts once per customer, whatever its name and however late ----------


def test_an_id_reused_under_another_name_is_a_duplicate():
    p = plan(CART)
    events = [ev("add_to_cart", "10:00", event_id="e1"), ev("checkout_viewed", "10:10", event_id="e1")]
    assert fired(p, events) == []


def test_an_unless_event_reusing_the_arming_id_cancels_nothing():
    p = plan(CART)
    events = [
        ev("add_to_cart", "10:00", event_id="e1"),
        ev("checkout_viewed", "10:05", event_id="e2"),
        ev("purchase", "10:30", event_id="e1"),
    ]
    assert fired(p, events) == [("cart", "c-1", None, at("11:05"))]


def test_a_duplicate_is_a_duplicate_after_the_original_is_forgotten():
    """k1 at 10:00 is pruned once k9 at 11:30 moves the clock; its copy stamped 11:20 must not count."""
    p = plan(
        """
        id: three_in_an_hour
        when: {event: page_viewed, count: {gte: 3}, within: 1h}
        cooldown: 1d
        action: {channel: event}
        """
    )
    events = [
        ev("page_viewed", "10:00", event_id="k1"),
        ev("page_viewed", "11:30", event_id="k9"),
        ev("page_viewed", "11:20", event_id="k1"),
        ev("page_viewed", "11:25", event_id="k3"),
    ]
    assert fired(p, events) == []
    assert fired(p, [*events[:2], ev("page_viewed", "11:20", event_id="k2"), events[3]]) == [
        ("three_in_an_hour", "c-1", None, at("11:30"))
    ]


def test_a_duplicate_identify_does_not_change_the_profile():
    p = plan(IBERIA.replace("in: [PT, ES]", "in: [PT]"))
    events = [
        ev("identify", "09:00", event_id="i4", traits={"country": "ES"}),
        ev("identify", "09:00", event_id="i4", traits={"country": "PT"}),
        ev("purchase", "10:00"),
    ]
    assert fired(p, events) == []


def test_an_id_is_remembered_for_the_dedupe_window_and_forgotten_on_the_next_full_hour():
    """p1 at 10:00 is remembered 24 h, until the full hour after: a copy is a duplicate until +1d 11:00."""
    p = plan(
        """
        id: each_purchase
        when: {event: purchase}
        action: {channel: event}
        """
    )
    first = [ev("purchase", "10:00", event_id="p1"), ev("purchase", "+1d 10:59", event_id="p2")]
    assert len(fired(p, [*first, ev("purchase", "+1d 10:59", event_id="p1")])) == 2
    later = [ev("purchase", "10:00", event_id="p1"), ev("purchase", "+1d 11:00", event_id="p2")]
    assert len(fired(p, [*later, ev("purchase", "+1d 11:01", event_id="p1")])) == 3


# -- allowed lateness: every event is kept that much beyond its window ------------------------------

EACH_PURCHASE = """
id: each_purchase
when: {event: purchase}
action: {channel: event}
"""
SERVICE_VISITS = """
id: service_visits
when: {event: page_viewed, where: {section: services}, count: {gte: 3}, within: 1d}
cooldown: 1d
action: {channel: event}
"""


def test_a_lone_event_rule_fires_for_an_event_late_within_the_allowed_lateness():
    """The README's "this event, as it arrives": a purchase a minute late fires too, at its own time."""
    p = plan(EACH_PURCHASE, SERVICE_VISITS)
    events = [ev("page_viewed", "10:00", section="services"), ev("purchase", "09:59")]
    assert fired(p, events) == [("each_purchase", "c-1", None, at("09:59"))]
    assert fired(p, events[::-1]) == [("each_purchase", "c-1", None, at("09:59"))]


def test_an_event_later_than_the_allowed_lateness_is_not_stored_where_its_window_is_over():
    p = plan(EACH_PURCHASE, SERVICE_VISITS)
    events = [ev("page_viewed", "10:00", section="services"), ev("purchase", "09:57")]
    assert fired(p, events) == []


def test_a_customer_who_only_identifies_remembers_only_a_day_of_ids():
    """Bounded state: identify events are never stored, yet their ids must not pile up."""
    engine, state = Engine(plan(CART)), CustomerState("c-1")
    for hour in range(72):
        event = ev("identify", f"+{hour // 24}d {hour % 24:02d}:00", traits={"plan": f"p{hour}"})
        engine.process(state, event, event.ts)
    assert 24 <= len(state.seen) <= 26


def test_a_sequence_in_one_millisecond_follows_the_event_ids():
    """Two back-to-back ``track()`` calls share a millisecond; the SDK's ids, increasing, order them."""
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00", event_id="01J0000000000000000000000A"), at("10:00"))
    armed = engine.process(state, ev("checkout_viewed", "10:00", event_id="01J0000000000000000000000B"), at("10:00"))
    assert len(armed.timers) == 1
    reverse = CustomerState("c-2")
    engine.process(reverse, ev("add_to_cart", "10:00", "c-2", event_id="01J0000000000000000000000B"), at("10:00"))
    late = engine.process(
        reverse, ev("checkout_viewed", "10:00", "c-2", event_id="01J0000000000000000000000A"), at("10:00")
    )
    assert late.timers == []  # the checkout's id says it came first
