"""Bounces and complaints suppress a channel, by event time, until the customer grants it again."""

from __future__ import annotations

from typing import Any

import pytest

from nudge.contracts import EventError, parse_event
from nudge.engine import CustomerState, Replayer
from nudge.engine.runtime.codec import apply_profile, encode_profile
from nudge.evaluator.source_filters import event_filter_patterns, record_passes
from tests.support import ev, plan
from tests.unit.test_semantics import CART

SMS = CART.replace("id: cart", "id: cart_sms").replace("channel: email", "channel: sms")
PLAN = plan(CART, SMS)
"""The cart rule on email and on SMS, every channel opt-out: only suppressions stop a send here."""


def bounced(when: str, channel: str = "email", bounce_type: str = "permanent", customer: str = "c-1"):  # type: ignore[no-untyped-def]
    return ev("message_bounced", when, customer, channel=channel, bounce_type=bounce_type, source="ses")


def complained(when: str, channel: str = "email", customer: str = "c-1"):  # type: ignore[no-untyped-def]
    return ev("message_complained", when, customer, channel=channel, source="ses")


def granted(when: str, channel: str = "email"):  # type: ignore[no-untyped-def]
    return ev("consent_updated", when, channel=channel, granted=True, source="preference_center")


def cart(customer: str = "c-1") -> list:
    return [ev("add_to_cart", "10:00", customer), ev("checkout_viewed", "10:05", customer)]


def replayed(events: list) -> tuple[list[str], list[tuple[str, str, str]]]:  # type: ignore[type-arg]
    decisions: list[tuple[str, str, str]] = []
    replayer = Replayer(PLAN, on_decision=lambda _, d: decisions.append((d.rule, d.kind, d.reason)))
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    return sorted(f.rule for f in firings), [d for d in decisions if d[1].startswith("suppressed")]


def test_a_permanent_bounce_suppresses_the_channel_and_says_so():
    sent, suppressed = replayed([bounced("09:00"), *cart()])
    assert sent == ["cart_sms"]  # the SMS still goes: the bounce was an email's
    assert suppressed == [
        ("cart", "suppressed_bounced", "email suppressed after a permanent bounce at 2026-11-22T09:00:00Z (ses)")
    ]


def test_a_transient_bounce_suppresses_nothing():
    sent, suppressed = replayed([bounced("09:00", bounce_type="transient"), *cart()])
    assert sent == ["cart", "cart_sms"] and suppressed == []


def test_a_complaint_suppresses_the_channel():
    sent, suppressed = replayed([complained("09:00", channel="sms"), *cart()])
    assert sent == ["cart"]
    assert [kind for _, kind, _ in suppressed] == ["suppressed_complaint"]


def test_a_grant_after_the_bounce_lifts_it_and_one_before_does_not():
    assert replayed([bounced("09:00"), granted("09:30"), *cart()])[0] == ["cart", "cart_sms"]
    assert replayed([granted("08:30"), bounced("09:00"), *cart()])[0] == ["cart_sms"]


def test_a_bounce_after_the_due_time_does_not_recall_a_decided_send():
    """Judged as of the wait's due time (11:05), like consent: a bounce stamped later stops later sends only."""
    assert replayed([*cart(), bounced("11:06")])[0] == ["cart", "cart_sms"]


def test_a_re_sent_bounce_changes_nothing_and_the_suppression_is_kept_durably():
    event = bounced("09:00")
    assert replayed([event, event, *cart()])[0] == ["cart_sms"]
    replayer = Replayer(PLAN)
    replayer.feed(event)
    state = replayer.states["c-1"]
    profile = encode_profile(state)
    assert profile is not None
    kept = CustomerState("c-1")
    apply_profile(kept, profile)
    assert kept.consent["email"] == [[event.ts, False, "ses", "bounced"]]


@pytest.mark.parametrize(
    ("name", "properties", "reason"),
    [
        ("message_bounced", {"channel": "all", "bounce_type": "permanent"}, "channel is 'all'"),
        ("message_bounced", {"channel": "tracking", "bounce_type": "permanent"}, "one of email, sms, push"),
        ("message_bounced", {"channel": "email"}, "bounce_type must be one of permanent, transient"),
        ("message_complained", {}, "channel is missing"),
    ],
)
def test_a_bounce_or_complaint_that_could_be_read_two_ways_is_refused(
    name: str, properties: dict[str, Any], reason: str
):
    envelope = {"event_id": "e", "customer_id": "c", "event": name, "timestamp": "2026-11-22T10:00:00Z"}
    with pytest.raises(EventError, match=reason):
        parse_event({**envelope, "properties": properties})


def test_bounces_and_complaints_pass_the_stream_filters_whatever_the_rules_read():
    patterns = event_filter_patterns(PLAN)
    for name in ("message_bounced", "message_complained"):
        assert record_passes(patterns, f'{{"event": "{name}", "customer_id": "c"}}'.encode())


def test_the_replay_summary_counts_them():
    replayer = Replayer(PLAN)
    for event in [bounced("09:00"), complained("09:10", channel="sms"), *cart()]:
        replayer.feed(event)
    replayer.finish()
    assert replayer.stats.rules["cart"].suppressed_bounced == 1
    assert replayer.stats.rules["cart_sms"].suppressed_complaint == 1
