"""Multi-channel escalation: a push, then an email if the push went unanswered, each step decided by event time."""

from __future__ import annotations

from typing import Any

import pytest

from nudge.contracts import Event, Firing
from nudge.engine import CustomerState, Policy, Replayer, compile_rules
from nudge.engine.language.checks import check_rule
from nudge.engine.runtime.outcome import firing_id
from nudge.timefmt import iso
from tests.support import EVERY_CHANNEL_OPT_OUT, at, ev, rule

L = 120_000
ADDRESSES = {"email": "ana@example.com", "push_tokens": [{"token": "tok-1", "platform": "ios"}]}

CART = """
id: cart
when:
  sequence: [{event: add_to_cart}, {event: checkout_viewed}]
  within: 1h
wait: 1h
unless: {event: purchase}
action: {channel: push, template: cart_reminder}
escalate:
  - {after: 2h, channel: email, template: cart_reminder}
"""


def plan(*texts: str, **settings: Any):  # type: ignore[no-untyped-def]
    policy = Policy.model_validate({"consent": EVERY_CHANNEL_OPT_OUT.consent.model_dump(), **settings})
    return compile_rules([rule(text) for text in texts], policy)


def run(events: list[Event], *texts: str, **settings: Any) -> tuple[list[Firing], list[tuple[str, str, str]]]:
    decisions: list[tuple[str, str, str]] = []
    replayer = Replayer(
        plan(*(texts or (CART,)), **settings), on_decision=lambda _, d: decisions.append((d.rule, d.kind, d.reason))
    )
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    return firings, decisions


def cart(customer: str = "c-1", traits: dict[str, Any] | None = None) -> list[Event]:
    """A customer with an email and a push token who leaves a cart at 10:05: the push is due at 11:05."""
    return [
        ev("identify", "09:00", customer, traits=ADDRESSES if traits is None else traits),
        ev("add_to_cart", "10:00", customer, sku="SKU-1"),
        ev("checkout_viewed", "10:05", customer),
    ]


def push_id(customer: str = "c-1") -> str:
    return firing_id("cart", customer, None, at("10:05"))


def steps(firings: list[Firing]) -> list[tuple[int, str, str, str]]:
    return [(f.step, f.channel, iso(f.fired_at), iso(f.send_at or f.fired_at)) for f in firings]


def test_an_unanswered_push_is_followed_by_the_email_two_hours_after_it():
    firings, _ = run(cart())
    assert steps(firings) == [
        (0, "push", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z"),
        (1, "email", "2026-11-22T13:05:00Z", "2026-11-22T13:07:00Z"),
    ]
    push, email = firings
    assert push.firing_id == push_id()
    assert email.firing_id == firing_id("cart", "c-1", None, at("10:05"), 1) != push.firing_id
    assert [e.event for e in email.events] == ["add_to_cart", "checkout_viewed"]  # the email shows the cart
    assert email.events == push.events


def test_an_open_of_the_push_calls_the_email_off():
    opened = ev("message_opened", "12:00", channel="push", rule="cart", firing_id=push_id())
    firings, decisions = run([*cart(), opened])
    assert steps(firings) == [(0, "push", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z")]
    assert ("cart", "cancelled", "by message_opened at 2026-11-22T12:00:00Z") in decisions


def test_a_click_of_the_push_calls_the_email_off():
    clicked = ev("message_clicked", "11:30", channel="push", rule="cart", firing_id=push_id(), url="https://shop/c")
    firings, _ = run([*cart(), clicked])
    assert [f.step for f in firings] == [0]


def test_an_open_without_a_firing_id_counts_by_rule_and_channel_in_the_steps_window():
    """An app that knows only which rule's push was opened: the open must fall between the push and the email."""
    by_rule = ev("message_opened", "12:00", channel="push", rule="cart")
    assert [f.step for f in run([*cart(), by_rule])[0]] == [0]
    other_channel = ev("message_opened", "12:00", channel="email", rule="cart")
    assert [f.step for f in run([*cart(), other_channel])[0]] == [0, 1]
    before_the_push = ev("message_opened", "10:30", channel="push", rule="cart")
    assert [f.step for f in run([*cart(), before_the_push])[0]] == [0, 1]


def test_an_open_of_another_firing_does_not_answer_this_one():
    other = ev("message_opened", "12:00", channel="push", rule="cart", firing_id="f" * 32)
    assert [f.step for f in run([*cart(), other])[0]] == [0, 1]


def test_a_purchase_after_the_push_ends_the_whole_chain():
    firings, decisions = run([*cart(), ev("purchase", "12:30")])
    assert [f.step for f in firings] == [0]
    assert ("cart", "cancelled", "the rule's unless: by purchase at 2026-11-22T12:30:00Z") in decisions


def test_a_late_open_within_the_allowed_lateness_still_calls_the_email_off():
    """Stamped 13:04, before the email's time, and arriving at 13:06: the step is decided at 13:07."""
    late = ev("message_opened", "13:04", channel="push", firing_id=push_id())
    replayer = Replayer(plan(CART))
    firings = [f for e in cart() for f in replayer.feed(e)]
    firings += replayer.feed(ev("page_viewed", "13:06"))  # the clock reaches 13:06
    firings += replayer.feed(late, arrival=at("13:06"))
    firings += replayer.finish()
    assert [f.step for f in firings] == [0]


def test_a_customer_without_a_push_token_goes_straight_to_the_email():
    firings, decisions = run(cart(traits={"email": "ana@example.com"}))
    assert steps(firings) == [(1, "email", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z")]
    assert ("cart", "skipped_unreachable", "no push_tokens trait for push: on to step 1") in decisions


def test_a_customer_without_push_consent_goes_straight_to_the_email():
    refused = ev("consent_updated", "09:30", channel="push", granted=False)
    firings, decisions = run([*cart(), refused])
    assert steps(firings) == [(1, "email", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z")]
    assert (
        "cart",
        "skipped_unreachable",
        "push consent withdrawn at 2026-11-22T09:30:00Z (consent_updated): on to step 1",
    ) in decisions
    assert not any(kind == "suppressed_consent" for _, kind, _ in decisions)


def test_a_sms_step_without_a_phone_is_passed_over_and_the_chain_goes_on():
    three = (
        CART
        + "  - {after: 1h, channel: sms, template: cart_reminder}\n  - {after: 1h, channel: email, template: last}\n"
    )
    firings, decisions = run(cart(), three)
    assert steps(firings) == [
        (0, "push", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z"),
        (1, "email", "2026-11-22T13:05:00Z", "2026-11-22T13:07:00Z"),
        (3, "email", "2026-11-22T14:05:00Z", "2026-11-22T14:07:00Z"),
    ]
    assert ("cart", "skipped_unreachable", "no phone trait for sms: on to step 3") in decisions
    assert firings[2].template == "last"


def test_a_skipped_step_hands_over_at_once_and_an_earlier_answer_still_ends_the_chain():
    """Push, sms (no phone), email: the email takes the sms's place at its time; an open of the push
    before then calls both off."""
    three = CART.replace("channel: email, template: cart_reminder", "channel: sms, template: s") + (
        "  - {after: 1h, channel: email, template: e}\n"
    )
    assert steps(run(cart(), three)[0]) == [
        (0, "push", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z"),
        (2, "email", "2026-11-22T13:05:00Z", "2026-11-22T13:07:00Z"),
    ]
    opened = ev("message_opened", "12:30", channel="push", firing_id=push_id())
    assert [f.step for f in run([*cart(), opened], three)[0]] == [0]


def test_a_cap_that_stops_a_step_ends_the_chain():
    three = CART + "  - {after: 1h, channel: push, template: last}\n"
    firings, decisions = run(cart(), three, frequency_caps=[{"channel": "email", "max": 1, "per": "1d"}])
    assert steps(firings) == [
        (0, "push", "2026-11-22T11:05:00Z", "2026-11-22T11:07:00Z"),
        (1, "email", "2026-11-22T13:05:00Z", "2026-11-22T13:07:00Z"),
        (2, "push", "2026-11-22T14:05:00Z", "2026-11-22T14:07:00Z"),
    ]
    capped = [ev("identify", "08:00", traits=ADDRESSES), ev("x", "08:30")]
    send_one = "id: welcome\nwhen: {event: x}\ncooldown: 1d\naction: {channel: email, template: t}\n"
    firings, decisions = run(
        [*capped, *cart()[1:]], three, send_one, frequency_caps=[{"channel": "email", "max": 1, "per": "1d"}]
    )
    assert [(f.rule, f.step) for f in firings] == [("welcome", 0), ("cart", 0)]
    assert ("cart", "suppressed_cap", "cap email: 1 per 1d") in decisions


def test_quiet_hours_hold_a_step_and_the_next_counts_from_its_send():
    quiet = {"start": "21:00", "end": "09:00", "channels": ["push"], "default_timezone": "UTC"}
    events = [
        ev("identify", "19:00", traits=ADDRESSES),
        ev("add_to_cart", "21:00"),
        ev("checkout_viewed", "21:30"),  # the push is due at 22:30, in the quiet hours
    ]
    firings, _ = run(events, CART, quiet_hours=quiet)
    assert steps(firings) == [
        (0, "push", "2026-11-22T22:30:00Z", "2026-11-23T09:02:00Z"),
        (1, "email", "2026-11-23T11:00:00Z", "2026-11-23T11:02:00Z"),
    ]


def test_a_steps_own_unless_replaces_the_default_answer():
    own = CART.replace(
        "{after: 2h, channel: email, template: cart_reminder}",
        "{after: 2h, channel: email, template: cart_reminder, unless: {event: app_opened}}",
    )
    opened_push = ev("message_opened", "12:00", channel="push", firing_id=push_id())
    assert [f.step for f in run([*cart(), opened_push], own)[0]] == [0, 1]  # opens no longer count
    assert [f.step for f in run([*cart(), ev("app_opened", "12:00")], own)[0]] == [0]
    assert [f.step for f in run([*cart(), ev("app_opened", "10:59")], own)[0]] == [0, 1]  # before the push went


def test_each_arming_runs_its_own_chain_and_a_cooldown_keeps_it_to_one():
    again = [ev("add_to_cart", "12:00"), ev("checkout_viewed", "12:10")]
    firings, _ = run([*cart(), *again])
    assert [(f.step, iso(f.armed_at)) for f in firings] == [
        (0, "2026-11-22T10:05:00Z"),
        (1, "2026-11-22T10:05:00Z"),
        (0, "2026-11-22T12:10:00Z"),
        (1, "2026-11-22T12:10:00Z"),
    ]
    cooled = CART.replace("wait: 1h\n", "wait: 1h\ncooldown: 1d\n")
    firings, decisions = run([*cart(), *again], cooled)
    assert [(f.step, iso(f.armed_at)) for f in firings] == [(0, "2026-11-22T10:05:00Z"), (1, "2026-11-22T10:05:00Z")]
    assert ("cart", "suppressed_cooldown", "") in decisions


def test_a_held_step_survives_the_state_store():
    """Encoded and decoded between every input, the chain decides the same."""
    replayer = Replayer(plan(CART))
    firings: list[Firing] = []
    for event in [*cart(), ev("page_viewed", "12:00")]:
        firings += replayer.feed(event)
        replayer.states = {cid: CustomerState.decode(state.encode()) for cid, state in replayer.states.items()}
    [held] = replayer.states["c-1"].held
    assert (held.step, held.since, held.prev, held.undecided) == (1, at("11:05"), 0, True)
    firings += replayer.finish()
    assert [f.step for f in firings] == [0, 1]


def test_a_rule_reads_its_own_sends_as_message_sent():
    """message_sent is kept in the customer's own events, and a rule can count it like any event."""
    second = """
id: still_nothing
when:
  all:
    - {event: page_viewed}
    - {event: message_sent, where: {rule: cart}, within: 1d}
cooldown: 1d
action: {channel: email, template: t}
"""
    firings, _ = run([*cart(), ev("page_viewed", "10:30"), ev("page_viewed", "14:00")], CART, second)
    assert [(f.rule, f.step, iso(f.fired_at)) for f in firings] == [
        ("cart", 0, "2026-11-22T11:05:00Z"),
        ("cart", 1, "2026-11-22T13:05:00Z"),
        ("still_nothing", 0, "2026-11-22T14:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CART.replace("channel: email, template: cart_reminder}", "channel: webhook}"), "its channel is one of"),
        (CART.replace("channel: email, template: cart_reminder}", "channel: email}"), "needs a `template`"),
        (CART.replace("channel: push, template: cart_reminder", "channel: webhook"), "only an action that reaches"),
        ("id: r\nwhen: {event: message_sent}\ncooldown: 1d\naction: {channel: email, template: t}\n", "never starts"),
    ],
)
def test_a_rule_that_cannot_escalate_is_refused_with_the_reason(text: str, message: str):
    assert any(message in problem.message for problem in check_rule(rule(text)))


def test_a_rule_of_the_shipped_shape_escalates_without_a_problem():
    assert [p for p in check_rule(rule(CART)) if p.severity == "error"] == []
