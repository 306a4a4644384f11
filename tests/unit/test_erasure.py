"""Erasure in the engine: `erasure_requested` forgets everything, by event time, and keeps only when."""

from __future__ import annotations

import json

import pytest

from nudge.contracts import HOLD_RULE, EventError, Timer, parse_event
from nudge.engine import CustomerState, Engine, Replayer, TimerCancel
from nudge.evaluator.source_filters import event_filter_patterns
from tests.support import at, ev, plan

CART = """
id: cart
when:
  sequence: [{event: add_to_cart}, {event: checkout_viewed}]
  within: 1h
wait: 1h
unless: {event: purchase}
action: {channel: email, template: t}
"""


def _armed() -> tuple[Engine, CustomerState]:
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    for event in (
        ev("identify", "09:00", traits={"email": "ana@example.com"}),
        ev("consent_updated", "09:01", channel="sms", granted=True, source="checkout"),
        ev("add_to_cart", "10:00", sku="SKU-1"),
        ev("checkout_viewed", "10:05"),
    ):
        engine.process(state, event, wall=event.ts)
    assert state.pending()
    return engine, state


def test_an_erasure_cancels_the_pending_wait_s_timer_and_forgets_everything_but_its_time():
    engine, state = _armed()
    outcome = engine.process(state, ev("erasure_requested", "10:10"), wall=at("10:10"))
    assert outcome.erased and outcome.changed
    assert outcome.timers == [TimerCancel("c-1", "cart", None, at("10:05"))]
    assert state.is_empty() and state.erased_at == at("10:10")
    assert state.profile == {} and state.consent == {} and state.log == []
    assert CustomerState.decode(state.encode()).erased_at == at("10:10")


def test_the_wait_s_timer_coming_anyway_fires_nothing():
    engine, state = _armed()
    engine.process(state, ev("erasure_requested", "10:10"), wall=at("10:10"))
    outcome = engine.on_timer(state, Timer("c-1", "cart", None, at("10:05"), at("11:05")), wall=at("11:07"))
    assert outcome.firings == []


def test_an_event_stamped_before_the_erasure_that_arrives_after_it_is_dropped():
    engine, state = _armed()
    engine.process(state, ev("erasure_requested", "10:10"), wall=at("10:10"))
    retried = engine.process(state, ev("add_to_cart", "10:00", event_id="retry"), wall=at("10:20"))
    assert retried.dropped_erased and not retried.accepted
    assert state.is_empty()
    identify = engine.process(state, ev("identify", "10:09", traits={"email": "x@example.com"}), wall=at("10:20"))
    assert identify.dropped_erased and state.profile == {}


def test_an_event_stamped_after_the_erasure_starts_a_new_customer():
    engine, state = _armed()
    engine.process(state, ev("erasure_requested", "10:10"), wall=at("10:10"))
    engine.process(state, ev("add_to_cart", "10:20"), wall=at("10:20"))
    engine.process(state, ev("checkout_viewed", "10:25"), wall=at("10:25"))
    [(_, wait)] = state.pending()
    assert wait.arm == at("10:25") and [e.name for e in wait.matched] == ["add_to_cart", "checkout_viewed"]
    assert state.erased_at == at("10:10")  # still drops what came before


def test_an_erasure_stamped_before_the_newest_event_still_forgets_it_and_its_copies():
    """The request erases what is held when it is processed: the erasure time moves up to the newest event,
    so a copy of that event cannot come back either."""
    engine, state = _armed()
    engine.process(state, ev("erasure_requested", "10:03"), wall=at("10:06"))
    assert state.erased_at == at("10:05")


def test_a_held_firing_s_hold_timer_is_cancelled_too():
    engine = Engine(plan(CART.replace("wait: 1h\n", ""), policy=_quiet_policy()))
    state = CustomerState("c-1")
    for event in (
        ev("identify", "21:00", traits={"email": "ana@example.com", "timezone": "UTC"}),
        ev("add_to_cart", "22:00"),
        ev("checkout_viewed", "22:05"),
    ):
        engine.process(state, event, wall=event.ts)
    assert state.held
    send_at = state.held[0].send_at
    outcome = engine.process(state, ev("erasure_requested", "22:10"), wall=at("22:10"))
    assert outcome.timers == [TimerCancel("c-1", HOLD_RULE, None, send_at)]
    assert not state.held


def _quiet_policy():  # type: ignore[no-untyped-def]
    from nudge.engine import Policy

    return Policy.model_validate(
        {
            "consent": {"email": "opt_out", "sms": "opt_out", "push": "opt_out", "tracking": "opt_out"},
            "quiet_hours": {"start": "21:00", "end": "09:00", "channels": ["email"], "default_timezone": "UTC"},
        }
    )


def test_replay_erases_and_keeps_the_tombstone_so_later_stragglers_are_dropped():
    replayer = Replayer(plan(CART))
    for event in (ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("erasure_requested", "10:10")):
        replayer.feed(event)
    assert replayer.states["c-1"].erased_at == at("10:10")
    assert replayer.finish() == []  # the cart reminder's timer was cancelled


def test_an_erasure_request_carries_nothing_and_always_passes_the_stream_filters():
    with pytest.raises(EventError, match="carries no properties and no traits"):
        parse_event(
            {
                "event_id": "e",
                "customer_id": "c-1",
                "event": "erasure_requested",
                "timestamp": "2026-11-22T10:00:00Z",
                "properties": {"email": "ana@example.com"},
            }
        )
    [pattern, *_] = event_filter_patterns(plan(CART))
    assert "erasure_requested" in json.loads(pattern)["data"]["event"]


def test_no_rule_can_read_an_erasure_request():
    with pytest.raises(ValueError, match="erasure_requested erases the customer: no rule can read it"):
        plan("id: r\nwhen: {event: erasure_requested}\naction: {channel: event}\n")
