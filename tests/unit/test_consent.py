"""Consent, decided by the engine: per channel, opt-in or opt-out, as of the firing's send time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.contracts import Event, EventError, Timer, parse_event
from nudge.engine import (
    DEFAULT_POLICY,
    CustomerState,
    Engine,
    Policy,
    Replayer,
    TimerCancel,
    compile_rules,
    load_plan,
)
from nudge.engine.plan.compiled import DEFAULT_CONSENT
from nudge.evaluator.source_filters import event_filter_patterns, record_passes
from tests.support import at, ev, plan, rule
from tests.unit.test_semantics import CART

ROOT = Path(__file__).resolve().parents[2]
SMS = CART.replace("id: cart", "id: cart_sms").replace("channel: email", "channel: sms")
DEFAULTS = compile_rules([rule(CART), rule(SMS)], DEFAULT_POLICY)
"""The cart rule on email and on SMS, under the shipped consent defaults (email opt-out, SMS opt-in)."""


def consent(channel: str, granted: bool, when: str | int, customer: str = "c-1", source: str = "preferences"):
    return ev("consent_updated", when, customer, channel=channel, granted=granted, source=source)


def unsubscribed(channel: str, when: str | int, customer: str = "c-1"):
    return ev("unsubscribed", when, customer, channel=channel, source="list_unsubscribe")


def cart(customer: str = "c-1") -> list:
    return [ev("add_to_cart", "10:00", customer), ev("checkout_viewed", "10:05", customer)]


def replayed(compiled, events):  # type: ignore[no-untyped-def]
    replayer = Replayer(compiled)
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    return [(f.rule, f.customer_id) for f in firings], replayer


def test_an_unsubscribe_click_stops_the_cart_email_of_the_shipped_rules():
    """The defect: the endpoint's `unsubscribed` event was filtered out, and the email went anyway."""
    events = [
        ev("identify", "09:00", traits={"email": "c1@example.com"}),
        unsubscribed("email", "09:30"),
        *cart(),
    ]
    fired, replayer = replayed(load_plan(ROOT / "rules"), events)
    assert fired == []
    assert replayer.stats.rules["cart_abandonment"].suppressed_consent == 1
    assert replayer.stats.rules["cart_abandonment"].armed == 1


def test_email_is_opt_out_and_sms_opt_in_by_default():
    fired, _ = replayed(DEFAULTS, cart())
    assert fired == [("cart", "c-1")]  # no word on SMS: not sent
    fired, _ = replayed(DEFAULTS, [consent("sms", True, "09:00"), *cart()])
    assert sorted(fired) == [("cart", "c-1"), ("cart_sms", "c-1")]


def test_the_suppression_says_which_consent_and_why():
    engine = Engine(DEFAULTS)
    state = CustomerState("c-1")
    for event in [unsubscribed("email", "09:30"), *cart()]:
        engine.process(state, event, event.ts)
    # Both waits are due at 11:05: the first timer decides both, so that they meet in one decision.
    outcome = engine.on_timer(state, _timer_for(state, "cart"), at("11:07"))
    reasons = {d.rule: d.reason for d in outcome.decisions if d.kind == "suppressed_consent"}
    assert reasons == {
        "cart": "email consent withdrawn at 2026-11-22T09:30:00Z (list_unsubscribe)",
        "cart_sms": "sms is opt_in and the customer has said nothing yet",
    }


def _timer_for(state: CustomerState, rule_id: str) -> Timer:
    [(key, wait)] = [(k, w) for k, w in state.pending() if k[0] == rule_id]
    return Timer(state.customer_id, rule_id, key[1], wait.arm, wait.due)


def test_consent_is_judged_as_of_the_due_time_on_what_arrived_by_the_decision():
    """The cart is due at 11:05, decided at 11:07: a refusal stamped 11:05 stops it, even arriving at
    11:06:30 behind a later event; one stamped 11:06 does not (it is after the due time)."""
    p = plan(CART)
    assert replayed(p, [*cart(), unsubscribed("email", "11:05")])[0] == []
    straggler = [*cart(), ev("page_viewed", "11:06:30"), unsubscribed("email", "11:05")]
    assert replayed(p, straggler)[0] == []
    assert replayed(p, [*cart(), unsubscribed("email", "11:06")])[0] == [("cart", "c-1")]


def test_all_changes_every_channel_and_a_later_grant_reopens_one():
    events = [consent("all", False, "09:00"), consent("email", True, "09:10"), *cart()]
    fired, _ = replayed(compile_rules([rule(CART), rule(SMS)], DEFAULT_POLICY), events)
    assert fired == []  # `all: false` withdrew tracking too: the cart was never stored
    events = [consent("sms", False, "09:00"), consent("all", True, "09:10"), *cart()]
    fired, _ = replayed(DEFAULTS, events)
    assert sorted(fired) == [("cart", "c-1"), ("cart_sms", "c-1")]


@pytest.mark.parametrize("refusal_first", [True, False])
def test_at_the_same_instant_a_refusal_wins_whatever_arrives_first(refusal_first: bool):
    both = [unsubscribed("email", "10:01"), consent("email", True, "10:01")]
    events = [*(both if refusal_first else both[::-1]), *cart()]
    assert replayed(plan(CART), events)[0] == []


def test_a_re_sent_consent_event_changes_nothing():
    grant = consent("email", True, "10:02")
    refusal = unsubscribed("email", "10:01")
    state = CustomerState("c-1")
    engine = Engine(plan(CART))
    for event in (refusal, grant):
        engine.process(state, event, event.ts)
    before = state.encode()
    assert not engine.process(state, grant, grant.ts).changed
    assert state.encode() == before
    assert [entry[1] for entry in state.consent["email"]] == [False, True]


def test_the_consent_history_keeps_time_choice_and_source_through_the_codec():
    state = CustomerState("c-1")
    engine = Engine(plan(CART))
    for n in range(25):
        event = consent("sms", n % 2 == 0, at("09:00") + n * 60_000, source=f"form-{n}")
        engine.process(state, event, event.ts)
    history = CustomerState.decode(state.encode()).consent["sms"]
    assert len(history) == 20  # the newest 20 changes
    assert history[-1] == [at("09:24"), True, "form-24"]


def test_withdrawing_tracking_forgets_the_behaviour_and_cancels_the_waits():
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    for event in cart():
        engine.process(state, event, event.ts)
    assert state.pending()
    outcome = engine.process(state, consent("tracking", False, "10:10"), at("10:10"))
    assert [type(t) for t in outcome.timers] == [TimerCancel]
    assert [(d.kind, d.reason) for d in outcome.decisions] == [("cancelled", "tracking consent withdrawn")]
    assert not state.events and not state.rules and state.now is None
    # From then on nothing is stored, late events included; the profile and consent stay.
    engine.process(state, ev("identify", "10:11", traits={"email": "c1@example.com"}), at("10:11"))
    for event in [ev("add_to_cart", "10:20"), ev("add_to_cart", "10:09")]:
        assert not engine.process(state, event, at("10:20")).accepted
    assert state.traits() == {"email": "c1@example.com"} and state.consent["tracking"][-1][1] is False


def test_tracking_allowed_again_starts_afresh_from_the_grant():
    events = [
        ev("add_to_cart", "09:00"),
        consent("tracking", False, "09:30"),
        consent("tracking", True, "10:02"),
        *cart(),  # the add to cart at 10:00 came before the grant: it is not kept
    ]
    assert replayed(plan(CART), events)[0] == []
    events[3] = ev("add_to_cart", "10:03")
    assert replayed(plan(CART), events)[0] == [("cart", "c-1")]


def test_a_refusal_of_tracking_that_arrives_late_still_forgets_what_came_before_it():
    """Stamped 10:04, arriving after the checkout of 10:05: the cart from before it is forgotten, the
    wait cancelled; in stamp order the checkout would never have been kept. Both say: no email."""
    events = [*cart(), consent("tracking", False, "10:04")]
    assert replayed(plan(CART), events)[0] == []
    assert replayed(plan(CART), sorted(events, key=lambda e: e.ts))[0] == []


def test_events_that_arrive_while_tracking_is_off_are_dropped_even_if_a_grant_before_them_comes_later():
    """The one arrival-order exception, by design: tracking is a privacy switch, and what arrived
    while it was off is gone. In stamp order the add to cart of 10:00 would have been kept."""
    grant, refusal = consent("tracking", True, "09:59"), consent("tracking", False, "09:00")
    in_order = [refusal, grant, *cart()]
    assert replayed(plan(CART), in_order)[0] == [("cart", "c-1")]
    assert replayed(plan(CART), [refusal, *cart(), grant])[0] == []


def test_tracking_opt_in_stores_nothing_before_a_yes():
    opt_in = Policy.model_validate({"consent": {"tracking": "opt_in"}})
    p = plan(CART, policy=opt_in)
    assert replayed(p, cart())[0] == []
    assert replayed(p, [consent("tracking", True, "09:59"), *cart()])[0] == [("cart", "c-1")]


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"granted": False}, "properties.channel is missing; it must be one of email, sms, push, tracking, all"),
        ({"channel": "fax", "granted": False}, "properties.channel is 'fax'"),
        ({"channel": "email", "granted": "no"}, "properties.granted must be true or false"),
        ({"channel": "email"}, "properties.granted must be true or false"),
        ({"channel": "email", "granted": True, "source": 7}, "properties.source must be a string"),
    ],
)
def test_a_consent_event_that_could_be_read_two_ways_is_refused(properties: dict, reason: str):
    envelope = {"event_id": "e", "customer_id": "c", "event": "consent_updated", "timestamp": "2026-11-22T10:00:00Z"}
    with pytest.raises(EventError) as error:
        parse_event({**envelope, "properties": properties})
    assert reason in error.value.reason


def test_an_unsubscribe_may_not_grant():
    envelope = {"event_id": "e", "customer_id": "c", "event": "unsubscribed", "timestamp": "2026-11-22T10:00:00Z"}
    assert parse_event({**envelope, "properties": {"channel": "email"}}).name == "unsubscribed"
    with pytest.raises(EventError, match="granted can only be false"):
        parse_event({**envelope, "properties": {"channel": "email", "granted": True}})


def test_consent_events_pass_the_stream_filters_whatever_the_rules_read():
    patterns = event_filter_patterns(plan(CART))
    for name in ("consent_updated", "unsubscribed"):
        assert record_passes(patterns, f'{{"event": "{name}", "customer_id": "c"}}'.encode())
    assert Engine(plan(CART)).needs(unsubscribed("email", "10:00"))


def test_the_policy_defaults_are_the_engine_defaults():
    assert {channel: mode == "opt_out" for channel, mode in Policy().consent.model_dump().items()} == DEFAULT_CONSENT
    with pytest.raises(ValueError, match="opt_in"):
        Policy.model_validate({"consent": {"sms": "maybe"}})


# -- properties ------------------------------------------------------------------------------------

L = 120_000
"""The allowed lateness of the default policy."""


@st.composite
def consent_histories(draw: st.DrawFn) -> list[Event]:
    """Carts and consent changes of two customers over two hours, on both channels of ``DEFAULTS``."""
    events = []
    for index in range(draw(st.integers(1, 25))):
        customer = draw(st.sampled_from(["c-1", "c-2"]))
        ts = at("10:00") + draw(st.integers(0, 360)) * 20_000
        kind = draw(st.sampled_from(["add_to_cart", "checkout_viewed", "purchase", "consent", "consent"]))
        if kind == "consent":
            # Grants and refusals on the channels; tracking only refused (a grant that arrives after
            # the events it would have let in cannot bring them back: the one exception, README).
            channel = draw(st.sampled_from(["email", "sms", "tracking"]))
            props = {"channel": channel, "granted": channel != "tracking" and draw(st.booleans())}
            events.append(
                Event(event_id=f"e{index}", customer_id=customer, name="consent_updated", ts=ts, properties=props)
            )
        else:
            events.append(Event(event_id=f"e{index}", customer_id=customer, name=kind, ts=ts))
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def _sends(events: list[Event]) -> list[tuple[str, str, int]]:
    replayer = Replayer(DEFAULTS)
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    return sorted((f.rule, f.customer_id, f.fired_at) for f in firings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=consent_histories(), seed=st.integers(0, 2**32 - 1))
def test_sends_are_the_same_whatever_order_consent_and_behaviour_arrive_in_within_the_lateness(
    events: list[Event], seed: int
):
    rng = random.Random(seed)
    arrivals = sorted(((e.ts + rng.randint(0, L), e) for e in events), key=lambda item: (item[0], item[1].event_id))
    assert _sends([e for _, e in arrivals]) == _sends(events)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=consent_histories())
def test_every_event_sent_twice_gives_the_same_sends(events: list[Event]):
    assert _sends([e for event in events for e in (event, event)]) == _sends(events)
