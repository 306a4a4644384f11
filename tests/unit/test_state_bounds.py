"""``Engine.fit``: a state too large to write loses what matters least first, and only then."""

from __future__ import annotations

from nudge.engine import CustomerState, Engine, compile_rules, load_rules_or_raise
from tests.support import at, ev

ENGINE = Engine(compile_rules(load_rules_or_raise("rules")))


def size_of(state: CustomerState) -> int:
    return state.size()


def customer() -> CustomerState:
    state = CustomerState("c-1")
    ENGINE.process(state, ev("identify", "09:00", traits={"email": "ana@example.com", "bio": "x" * 5000}), at("09:00"))
    for minute in range(10):
        ENGINE.process(state, ev("product_viewed", f"09:{10 + minute}", sku=f"S-{minute}", name="y" * 500), at("09:30"))
    return state


def test_a_state_within_the_budget_is_left_alone():
    state = customer()
    before = state.encode()
    assert not ENGINE.fit(state, size_of, len(before))
    assert state.encode() == before


def test_the_oldest_events_go_first_and_their_ids_are_still_recognized():
    state = customer()
    stored = [e.id for e in state.events.of("product_viewed") or ()]
    trim = ENGINE.fit(state, size_of, state.size() - 600)
    assert (trim.events, trim.traits) == (2, 0)  # a quarter of ten, rounded down
    assert [e.id for e in state.events.of("product_viewed") or ()] == stored[2:]
    copy = ev("product_viewed", "09:10", event_id=stored[0], sku="S-0", name="y" * 500)
    ENGINE.process(state, copy, at("09:31"))  # a redelivered copy of a trimmed event
    assert [e.id for e in state.events.of("product_viewed") or ()] == stored[2:]  # known: not stored again


def test_traits_go_after_every_event_largest_first_and_never_the_addresses():
    state = customer()
    trim = ENGINE.fit(state, size_of, 600)
    assert trim.events == 10 and trim.traits == 1
    assert state.traits() == {"email": "ana@example.com"}
    assert trim.after <= 600 or trim.ids
