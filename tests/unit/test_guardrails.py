"""Frequency caps, priority and quiet hours, decided by the engine at each firing's send time."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.contracts import Event, Firing
from nudge.engine import CustomerState, Engine, Policy, Replayer, compile_rules, load_plan, load_rules
from nudge.engine.runtime.guardrails import Guardrails
from nudge.engine.runtime.quiet import quiet_until, zone
from nudge.timefmt import iso, parse_iso
from tests.support import EVERY_CHANNEL_OPT_OUT, at, ev, rule

ROOT = Path(__file__).resolve().parents[2]
L = 120_000
"""The default allowed lateness: a capped firing is decided that long after its firing time."""
DAY = 86_400_000


def policy(**settings: Any) -> Policy:
    """Every channel opt-out (consent is not what these tests are about), plus ``settings``."""
    return Policy.model_validate({"consent": EVERY_CHANNEL_OPT_OUT.consent.model_dump(), **settings})


def on(event: str, channel: str = "push", rule_id: str | None = None, **extra: Any) -> str:
    """A rule that fires at once on ``event`` and sends on ``channel``."""
    lines = [f"id: {rule_id or event}", f"when: {{event: {event}}}", f"action: {{channel: {channel}, template: t}}"]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return "\n".join(lines) + "\n"


def compiled(*texts: str, **settings: Any):  # type: ignore[no-untyped-def]
    return compile_rules([rule(text) for text in texts], policy(**settings))


def replayed(plan, events: list[Event]) -> tuple[list[Firing], Replayer]:  # type: ignore[no-untyped-def]
    decisions: list[tuple[str, str, str]] = []
    replayer = Replayer(plan, on_decision=lambda _, d: decisions.append((d.rule, d.kind, d.reason)))
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    replayer.decisions = decisions  # type: ignore[attr-defined]
    return firings, replayer


def sends(plan, events: list[Event]) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(rule, customer, send_at) of every firing sent, in send order."""
    firings, _ = replayed(plan, events)
    return [(f.rule, f.customer_id, iso(f.send_at or f.fired_at)) for f in firings]


def zoned(timezone: str, customer: str = "c-1") -> Event:
    return ev("identify", parse_iso("2026-01-01T00:00:00Z"), customer, traits={"timezone": timezone})


def ev_at(name: str, moment: str, customer: str = "c-1") -> Event:
    return ev(name, parse_iso(moment), customer)


# -- caps ------------------------------------------------------------------------------------------


def test_a_channel_cap_counts_that_channel_only():
    plan = compiled(
        on("a", "sms"), on("b", "sms"), on("c", "email"), frequency_caps=[{"channel": "sms", "max": 1, "per": "1d"}]
    )
    events = [ev("a", "10:00"), ev("b", "11:00"), ev("c", "12:00")]
    firings, replayer = replayed(plan, events)
    assert [(f.rule, iso(f.send_at)) for f in firings] == [("a", "2026-11-22T10:02:00Z"), ("c", "2026-11-22T12:00:00Z")]
    assert ("b", "suppressed_cap", "cap sms: 1 per 1d") in replayer.decisions  # type: ignore[attr-defined]
    assert replayer.stats.rules["b"].suppressed_cap == 1


def test_the_any_cap_counts_email_sms_and_push_together_and_never_a_webhook():
    plan = compiled(
        on("a", "email"),
        on("b", "sms"),
        on("w", "webhook"),
        on("c", "push"),
        frequency_caps=[{"channel": "any", "max": 2, "per": "7d"}],
    )
    events = [ev("a", "10:00"), ev("w", "10:30"), ev("b", "11:00"), ev("c", "12:00"), ev("w", "+1d 10:00")]
    assert [rule for rule, _, _ in sends(plan, events)] == ["a", "w", "b", "w"]


def test_a_rules_own_cap_counts_its_sends_per_customer_and_key():
    capped = """
id: viewed
key: sku
when: {event: product_viewed}
action: {channel: email, template: t}
frequency_cap: {max: 1, per: 7d}
"""
    plan = compiled(capped, on("other", "email"))
    events = [
        ev("product_viewed", "10:00", sku="A"),
        ev("product_viewed", "11:00", sku="B"),  # another key: its own window
        ev("product_viewed", "12:00", sku="A"),  # the same key within 7 days: capped
        ev("product_viewed", "12:00", "c-2", sku="A"),  # another customer
        ev("other", "13:00"),  # another rule: not counted
        ev("product_viewed", "+7d 10:02", sku="A"),  # 7 days after the first send: a new window
    ]
    firings, replayer = replayed(plan, events)
    assert [(f.rule, f.customer_id, f.key, iso(f.send_at)) for f in firings] == [
        ("viewed", "c-1", "A", "2026-11-22T10:02:00Z"),
        ("viewed", "c-1", "B", "2026-11-22T11:02:00Z"),
        ("viewed", "c-2", "A", "2026-11-22T12:02:00Z"),
        ("other", "c-1", None, "2026-11-22T13:00:00Z"),
        ("viewed", "c-1", "A", "2026-11-29T10:04:00Z"),
    ]
    assert ("viewed", "suppressed_cap", "cap rule: 1 per 1w") in replayer.decisions  # type: ignore[attr-defined]


@pytest.mark.parametrize(("second", "sent"), [("+1d 10:00", True), (at("+1d 10:00") - 1, False)])
def test_a_cap_window_is_open_at_its_start_and_closed_at_its_end(second: str | int, sent: bool):
    """A window is ``(send_at - per, send_at]``: a send exactly ``per`` after another is in a new one."""
    plan = compiled(on("a", "email"), frequency_caps=[{"channel": "email", "max": 1, "per": "1d"}])
    got = sends(plan, [ev("a", "10:00"), ev("a", second)])
    assert len(got) == (2 if sent else 1)


def test_a_firing_decided_late_does_not_break_a_window_after_it():
    """A send decided after later ones must leave every window that would hold it within the cap."""
    plan = compiled(on("a", "email"), frequency_caps=[{"channel": "email", "max": 2, "per": "1h"}])
    # 10:00 and 10:40 are sent; an event for 10:30 arrives much later than the lateness, at 11:10:
    # the windows (09:32, 10:32] and (10:12, 11:12]... the one ending at 10:42 would hold three.
    events = [ev("a", "10:00"), ev("a", "10:40"), ev("x", "11:10"), ev("a", "10:30")]
    assert [send for _, _, send in sends(plan, events)] == ["2026-11-22T10:02:00Z", "2026-11-22T10:42:00Z"]


def test_a_transactional_rule_ignores_caps_and_is_not_counted_by_them():
    plan = compiled(
        on("a", "email"),
        on("receipt", "email", category="transactional"),
        frequency_caps=[{"channel": "any", "max": 1, "per": "7d"}],
    )
    events = [ev("receipt", "09:00"), ev("a", "10:00"), ev("receipt", "11:00"), ev("a", "12:00")]
    assert sends(plan, events) == [
        ("receipt", "c-1", "2026-11-22T09:00:00Z"),
        ("a", "c-1", "2026-11-22T10:02:00Z"),
        ("receipt", "c-1", "2026-11-22T11:00:00Z"),
    ]


def test_the_cooldown_counts_from_the_firing_even_when_a_cap_stopped_its_send():
    plan = compiled(
        on("a", "email"), on("b", "email", cooldown="1d"), frequency_caps=[{"channel": "email", "max": 1, "per": "1d"}]
    )
    firings, replayer = replayed(plan, [ev("a", "10:00"), ev("b", "11:00"), ev("b", "+1d 10:30")])
    assert [f.rule for f in firings] == ["a"]
    assert replayer.stats.rules["b"].suppressed_cap == 1
    assert replayer.stats.rules["b"].suppressed_cooldown == 1


# -- priority --------------------------------------------------------------------------------------

PRIORITIES = {"p1": 10, "p2": 50, "p3": 30, "p4": 40, "p5": 20}
FIVE = [on(name, "push", priority=value) for name, value in PRIORITIES.items()]
QUIET = {"start": "21:00", "end": "09:00", "channels": ["sms", "push"], "default_timezone": "Europe/Lisbon"}


def test_five_eligible_at_the_end_of_the_quiet_hours_under_a_cap_of_three_send_the_three_of_highest_priority():
    plan = compiled(*FIVE, frequency_caps=[{"channel": "any", "max": 3, "per": "7d"}], quiet_hours=QUIET)
    events = [ev(name, f"23:0{n}") for n, name in enumerate(PRIORITIES)]  # p1 first, p5 last
    firings, replayer = replayed(plan, events)
    assert [(f.rule, iso(f.fired_at), iso(f.send_at)) for f in firings] == [
        ("p2", "2026-11-22T23:01:00Z", "2026-11-23T09:02:00Z"),
        ("p4", "2026-11-22T23:03:00Z", "2026-11-23T09:02:00Z"),
        ("p3", "2026-11-22T23:02:00Z", "2026-11-23T09:02:00Z"),
    ]
    capped = sorted(r for r, kind, _ in replayer.decisions if kind == "suppressed_cap")  # type: ignore[attr-defined]
    assert capped == ["p1", "p5"]
    assert sum(replayer.stats.rules[name].held for name in PRIORITIES) == 5
    assert replayer.stats.holds_ended == 1  # one hold timer for the customer, not one per firing


def test_equal_priorities_at_the_same_send_time_go_in_rule_id_order():
    plan = compiled(on("b", "push"), on("a", "push"), frequency_caps=[{"channel": "push", "max": 1, "per": "1d"}])
    assert [rule for rule, _, _ in sends(plan, [ev("b", "10:00"), ev("a", "10:00")])] == ["a"]


def test_a_higher_priority_firing_cannot_take_back_a_slot_an_earlier_send_used():
    plan = compiled(
        on("low", "email", priority=1),
        on("high", "email", priority=100),
        frequency_caps=[{"channel": "email", "max": 1, "per": "1d"}],
    )
    assert [rule for rule, _, _ in sends(plan, [ev("low", "10:00"), ev("high", "10:03")])] == ["low"]
    # Within the allowed lateness of each other, both are decided together: priority wins.
    assert [rule for rule, _, _ in sends(plan, [ev("low", "10:00"), ev("high", "10:00")])] == ["high"]


# -- quiet hours -----------------------------------------------------------------------------------


def test_quiet_hours_across_midnight_hold_a_push_until_they_end_in_the_customers_zone():
    plan = compiled(on("a", "push"), quiet_hours=QUIET)
    tokyo = [zoned("Asia/Tokyo"), ev("a", "13:00")]  # 22:00 in Tokyo: held until 09:00 there, 00:00Z
    assert sends(plan, tokyo) == [("a", "c-1", "2026-11-23T00:02:00Z")]
    morning = [ev("a", "06:00")]  # 06:00 in Lisbon (UTC in November): before 09:00, held the same day
    assert sends(plan, morning) == [("a", "c-1", "2026-11-22T09:02:00Z")]
    assert sends(plan, [ev("a", "12:00")]) == [("a", "c-1", "2026-11-22T12:00:00Z")]  # not held: at once


def test_quiet_hours_within_one_day_and_their_edges():
    plan = compiled(on("a", "sms"), quiet_hours={**QUIET, "start": "12:00", "end": "14:00", "default_timezone": "UTC"})
    assert sends(plan, [ev("a", "11:59")]) == [("a", "c-1", "2026-11-22T11:59:00Z")]
    assert sends(plan, [ev("a", "12:00")]) == [("a", "c-1", "2026-11-22T14:02:00Z")]  # start: inside
    assert sends(plan, [ev("a", "14:00")]) == [("a", "c-1", "2026-11-22T14:00:00Z")]  # end: outside


def test_quiet_hours_hold_only_their_channels_and_not_a_rule_that_opts_out_or_a_transactional_one():
    plan = compiled(
        on("mail", "email"),
        on("urgent", "push", quiet_hours="false"),
        on("otp", "sms", category="transactional"),
        on("promo", "push"),
        quiet_hours=QUIET,
    )
    events = [ev("mail", "23:00"), ev("urgent", "23:00"), ev("otp", "23:00"), ev("promo", "23:00")]
    firings, replayer = replayed(plan, events)
    assert [(f.rule, iso(f.send_at)) for f in firings] == [
        ("mail", "2026-11-22T23:00:00Z"),
        ("urgent", "2026-11-22T23:00:00Z"),
        ("otp", "2026-11-22T23:00:00Z"),
        ("promo", "2026-11-23T09:02:00Z"),
    ]
    [reason] = [why for r, kind, why in replayer.decisions if kind == "held"]  # type: ignore[attr-defined]
    assert reason == "quiet hours 21:00-09:00 in Europe/Lisbon: held until 2026-11-23T09:00:00Z"


@pytest.mark.parametrize(
    ("timezone", "fired", "held_until"),
    [
        # Lisbon leaves summer time at 02:00 local on 2026-10-25 (UTC+1 to UTC): 09:00 is 09:00Z...
        ("Europe/Lisbon", "2026-10-24T22:30:00Z", "2026-10-25T09:00:00Z"),
        # ...while the morning before, still in summer time, it was 08:00Z.
        ("Europe/Lisbon", "2026-10-23T22:30:00Z", "2026-10-24T08:00:00Z"),
        # New York leaves daylight time at 02:00 local on 2026-11-01 (UTC-4 to UTC-5): 09:00 is 14:00Z.
        ("America/New_York", "2026-11-01T03:00:00Z", "2026-11-01T14:00:00Z"),
        ("America/New_York", "2026-10-31T03:00:00Z", "2026-10-31T13:00:00Z"),
        # 20:30 local on the night of the change, 00:30Z, is before the quiet hours: not held.
        ("America/New_York", "2026-11-01T00:30:00Z", None),
        # Lisbon enters summer time on 2026-03-29: quiet hours that began at 21:00Z end at 08:00Z.
        ("Europe/Lisbon", "2026-03-28T21:30:00Z", "2026-03-29T08:00:00Z"),
    ],
)
def test_quiet_hours_end_at_the_local_time_across_daylight_saving_changes(
    timezone: str, fired: str, held_until: str | None
):
    plan = compiled(on("a", "push"), quiet_hours=QUIET)
    got = sends(plan, [zoned(timezone), ev_at("a", fired)])
    expected = fired if held_until is None else iso(parse_iso(held_until) + L)
    assert got == [("a", "c-1", expected)]


def test_quiet_hours_that_end_at_a_skipped_local_time_end_when_the_clocks_jump_past_it():
    """Lisbon skips 01:00-02:00 local on 2026-03-29: an end at 01:30 is taken as 02:00 WEST, 01:00Z."""
    quiet = compile_rules([rule(on("a", "push"))], policy(quiet_hours={**QUIET, "end": "01:30"})).quiet
    assert quiet is not None
    lisbon = zone("Europe/Lisbon")
    assert lisbon is not None
    held = quiet_until(quiet, lisbon, parse_iso("2026-03-28T23:00:00Z"))
    assert held == parse_iso("2026-03-29T01:00:00Z")
    # A repeated local time (01:30 on the night Lisbon leaves summer time) ends at its first occurrence.
    again = quiet_until(quiet, lisbon, parse_iso("2026-10-24T23:00:00Z"))
    assert again == parse_iso("2026-10-25T00:30:00Z")


def test_an_invalid_timezone_uses_the_default_and_says_so():
    plan = compiled(on("a", "push"), quiet_hours=QUIET)
    firings, replayer = replayed(plan, [zoned("Mars/Olympus_Mons"), ev("a", "23:00")])
    assert [iso(f.send_at) for f in firings] == ["2026-11-23T09:02:00Z"]  # Lisbon's night
    [why] = [why for _, kind, why in replayer.decisions if kind == "invalid_timezone"]  # type: ignore[attr-defined]
    assert why == "timezone 'Mars/Olympus_Mons' is not an IANA time zone: quiet hours used Europe/Lisbon"
    assert replayer.stats.rules["a"].invalid_timezone == 1
    firings, replayer = replayed(plan, [ev("identify", "09:00", traits={"timezone": 7}), ev("a", "12:00")])
    assert [why for _, kind, why in replayer.decisions if kind == "invalid_timezone"] == [  # type: ignore[attr-defined]
        "timezone a int is not an IANA time zone: quiet hours used Europe/Lisbon"
    ]


def test_consent_for_a_held_firing_is_judged_as_of_the_end_of_the_quiet_hours():
    plan = compiled(on("a", "push"), quiet_hours=QUIET)
    refused = ev("consent_updated", "+1d 08:00", channel="push", granted=False)
    firings, replayer = replayed(plan, [ev("a", "23:00"), refused])
    assert firings == []
    assert replayer.stats.rules["a"].suppressed_consent == 1


# -- state -----------------------------------------------------------------------------------------


def test_held_firings_and_counted_sends_survive_the_codec():
    plan = compiled(*FIVE, frequency_caps=[{"channel": "any", "max": 3, "per": "7d"}], quiet_hours=QUIET)
    engine = Engine(plan)
    state = CustomerState("c-1")
    for event in [ev("p1", "10:00"), ev("p2", "23:00")]:
        engine.process(state, event, event.ts)
    engine.process(state, ev("x", "10:03"), at("10:03"))  # releases p1's send
    decoded = CustomerState.decode(state.encode())
    assert decoded.encode() == state.encode() and len(decoded.held) == 1
    assert decoded.sent == state.sent == [[at("10:02"), "push"]]  # no rule of its own cap: no rule, no key
    assert CustomerState.decode(CustomerState("c-2").encode()).held == []


# -- policy validation -----------------------------------------------------------------------------


def _diagnostics(tmp_path: Path, policy_text: str, rule_text: str | None = None) -> list[str]:
    (tmp_path / "a.yaml").write_text(rule_text or on("a", "email"))
    (tmp_path / "policy.yaml").write_text(policy_text)
    return [f"{Path(d.file).name}:{d.line}: {d.message}" for d in load_rules(tmp_path).errors]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "frequency_caps:\n  - {channel: any, max: 3, per: 7d}\n  - {channel: sms, max: 0, per: 1d}\n",
            "policy.yaml:3: ",
        ),
        ("frequency_caps:\n  - {channel: fax, max: 3, per: 7d}\n", "policy.yaml:2: "),
        (
            "consent: {}\nfrequency_caps:\n  - {channel: any, max: 3, per: 7d}\n  - {channel: any, max: 5, per: 1w}\n",
            "policy.yaml:2: ",
        ),
        ('quiet_hours:\n  start: "25:00"\n  end: "09:00"\n', "policy.yaml:2: "),
        ('quiet_hours:\n  start: "21:00"\n  end: "09:00"\n  default_timezone: Europe/Lisbn\n', "policy.yaml:4: "),
        ('quiet_hours: {start: "09:00", end: "09:00"}\n', "policy.yaml:1: "),
        ('policy:\n  quiet_hours:\n    start: "21:00"\n    end: "9am"\n', "policy.yaml:4: "),
    ],
)
def test_a_bad_policy_fails_validation_with_file_and_line(tmp_path: Path, text: str, expected: str):
    [message] = _diagnostics(tmp_path, text)
    assert message.startswith(expected), message


def test_the_messages_of_bad_guardrail_settings_say_what_to_write(tmp_path: Path):
    messages = "\n".join(
        _diagnostics(tmp_path, text)[0]
        for text in (
            'quiet_hours: {start: "25:00", end: "09:00"}\n',
            'quiet_hours: {start: "21:00", end: "09:00", default_timezone: Europe/Lisbn}\n',
            "frequency_caps: [{channel: any, max: 3, per: 7d}, {channel: any, max: 5, per: 7d}]\n",
        )
    )
    assert '"HH:MM"' in messages
    assert "Europe/Lisbn" in messages
    assert "two frequency caps for any per 1w" in messages


def test_a_transactional_rule_with_its_own_cap_fails_validation(tmp_path: Path):
    text = on("a", "email", category="transactional", frequency_cap="{max: 1, per: 1d}")
    [message] = _diagnostics(tmp_path, "{}\n", text)
    assert message.startswith("a.yaml:5: ") and "transactional" in message


def test_the_policy_may_sit_under_a_policy_key_as_in_the_issue_example(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(on("a", "push"))
    (tmp_path / "policy.yaml").write_text('policy:\n  quiet_hours: {start: "21:00", end: "09:00"}\n')
    assert load_plan(tmp_path).quiet is not None


def test_the_shipped_policy_caps_and_quiets_the_shipped_rules():
    plan = load_plan(ROOT / "rules")
    assert plan.quiet is not None and plan.quiet.default_timezone == "Europe/Lisbon"
    by_id = plan.by_id
    assert [cap.label for cap in by_id["purchase_frequency_rising"].caps] == ["any: 3 per 1w", "sms: 1 per 1d"]
    assert by_id["payment_failed_no_retry"].caps == () and not by_id["payment_failed_no_retry"].quiet
    assert by_id["repeated_product_views"].quiet and not by_id["cart_abandonment"].quiet


# -- properties ------------------------------------------------------------------------------------

CAPS = [{"channel": "any", "max": 2, "per": "1d"}, {"channel": "push", "max": 1, "per": "6h"}]
PROPERTY_RULES = [
    on("a", "email", priority=5),
    on("b", "push", priority=9),
    on("c", "sms"),
    on("d", "push", frequency_cap="{max: 1, per: 12h}"),
    on("t", "email", category="transactional"),
]
PROPERTY_PLAN = compiled(*PROPERTY_RULES, frequency_caps=CAPS, quiet_hours={**QUIET, "default_timezone": "UTC"})
WAIT_PLAN = compiled(
    *(text + "wait: 10m\n" for text in PROPERTY_RULES),
    frequency_caps=CAPS,
    quiet_hours={**QUIET, "default_timezone": "UTC"},
)
"""The same rules with a wait: their firings do not depend on the arrival order of their armings
(README, "When a decision is taken"); a rule without a wait ignores an arming older than its last."""


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Two customers' triggers over three days, at minute resolution, some in the quiet hours."""
    events = []
    for index in range(draw(st.integers(1, 30))):
        customer = draw(st.sampled_from(["c-1", "c-2"]))
        ts = at("08:00") + draw(st.integers(0, 3 * 24 * 60)) * 60_000
        name = draw(st.sampled_from(["a", "b", "c", "d", "t"]))
        events.append(Event(event_id=f"e{index}", customer_id=customer, name=name, ts=ts))
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def _sent(events: list[Event], plan=PROPERTY_PLAN) -> list[tuple[str, str, int | None]]:  # type: ignore[no-untyped-def]
    firings, _ = replayed(plan, events)
    return sorted((f.rule, f.customer_id, f.send_at) for f in firings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=histories())
@pytest.mark.parametrize("plan", [PROPERTY_PLAN, WAIT_PLAN], ids=["at-once", "waits"])
def test_no_customer_ever_gets_more_sends_in_a_window_than_a_cap_allows(plan, events: list[Event]):  # type: ignore[no-untyped-def]
    counted = {"a": "email", "b": "push", "c": "sms", "d": "push"}
    sent = _sent(events, plan)
    for customer in ("c-1", "c-2"):
        mine = [(name, at_) for name, c, at_ in sent if c == customer and name in counted]
        for _, end in mine:
            assert end is not None
            for scope, most, per in (("any", 2, DAY), ("push", 1, DAY // 4), ("d", 1, DAY // 2)):
                window = [
                    r
                    for r, t in mine
                    if t is not None
                    and end - per < t <= end
                    and (scope == "any" or counted[r] == scope or r == scope)
                    and (scope != "d" or r == "d")
                ]
                assert len(window) <= most, (customer, scope, iso(end), window)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=histories())
def test_every_event_sent_twice_gives_the_same_sends_under_caps_and_quiet_hours(events: list[Event]):
    for plan in (PROPERTY_PLAN, WAIT_PLAN):
        assert _sent([e for event in events for e in (event, event)], plan) == _sent(events, plan)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=histories(), seed=st.integers(0, 2**32 - 1))
def test_sends_are_the_same_whatever_order_events_arrive_in_within_the_lateness(events: list[Event], seed: int):
    rng = random.Random(seed)
    arrivals = sorted(((e.ts + rng.randint(0, L), e) for e in events), key=lambda item: (item[0], item[1].event_id))
    assert _sent([e for _, e in arrivals], WAIT_PLAN) == _sent(events, WAIT_PLAN)


def test_the_dates_in_these_tests_are_what_they_say():
    """The DST cases depend on the tz database: pin the offsets they assume."""
    lisbon, new_york = zone("Europe/Lisbon"), zone("America/New_York")
    assert lisbon is not None and new_york is not None
    assert datetime(2026, 10, 24, 12, tzinfo=UTC).astimezone(lisbon).utcoffset().total_seconds() == 3600  # type: ignore[union-attr]
    assert datetime(2026, 10, 25, 12, tzinfo=UTC).astimezone(lisbon).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert datetime(2026, 11, 1, 12, tzinfo=UTC).astimezone(new_york).utcoffset().total_seconds() == -5 * 3600  # type: ignore[union-attr]


class HoldEverything(Guardrails):
    """The naive reference for the fast path: every firing waits in ``held`` for its ``send_at``."""

    def fire(self, rule, state, firing, outcome) -> None:  # type: ignore[no-untyped-def]
        self.place(rule, state, firing, outcome)
        self.hold(state, firing, outcome)


MIXED_PLAN = compiled(
    on("a", "email"),
    on("b", "push", cooldown="1h"),
    on("c", "sms", priority=3, quiet_hours="false"),
    on("t", "email", category="transactional"),
    on("w", "webhook"),
    *(text + "wait: 10m\n" for text in (on("d", "push", rule_id="d_wait"), on("e", "email", rule_id="e_wait"))),
    frequency_caps=[{"channel": "sms", "max": 1, "per": "1d"}],
    quiet_hours={**QUIET, "default_timezone": "UTC"},
)
"""Rules on the fast path (no cap counts them, no quiet hours hold them) beside ones that are held."""


@st.composite
def ordered_histories(draw: st.DrawFn) -> list[Event]:
    """Triggers and consent changes of two customers, in time order, no two at the same instant."""
    events = []
    for index in range(draw(st.integers(1, 30))):
        customer = draw(st.sampled_from(["c-1", "c-2"]))
        ts = at("08:00") + draw(st.integers(0, 2 * 24 * 60)) * 60_000 + index
        name = draw(st.sampled_from(["a", "b", "c", "d", "e", "t", "w", "consent"]))
        if name == "consent":
            props = {"channel": draw(st.sampled_from(["email", "push", "sms"])), "granted": draw(st.booleans())}
            events.append(
                Event(event_id=f"e{index}", customer_id=customer, name="consent_updated", ts=ts, properties=props)
            )
        else:
            events.append(Event(event_id=f"e{index}", customer_id=customer, name=name, ts=ts))
    return sorted(events, key=lambda e: e.ts)


def _decided(events: list[Event], naive: bool) -> list[dict[str, Any]]:
    replayer = Replayer(MIXED_PLAN)
    if naive:
        engine = replayer.engine
        engine.guardrails = HoldEverything(MIXED_PLAN, engine.consent, engine.judge_step, engine.record_sent)
    firings = [f for event in events for f in replayer.feed(event)] + replayer.finish()
    return sorted((f.to_json() for f in firings), key=lambda f: (f["send_at"], f["firing_id"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=ordered_histories())
def test_sending_at_once_sends_what_holding_every_firing_would(events: list[Event]):
    assert _decided(events, naive=False) == _decided(events, naive=True)
