"""The guardrail scenarios (examples/scenarios/guardrails) under the shipped rules and policy: exactly
the sends, send times and decisions their README promises."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from nudge.contracts import parse_event
from nudge.engine import Replayer, load_plan
from nudge.timefmt import iso

ROOT = Path(__file__).resolve().parents[2]
GUARDRAILS = ROOT / "examples" / "scenarios" / "guardrails"
PLAN = load_plan(ROOT / "rules")

Send = tuple[str, str, str | None, str, str]
"""(rule, customer, key, fired_at, send_at)."""


def replayed(name: str) -> tuple[list[Send], Counter[tuple[str, str, str]], list[str]]:
    """Sends, decision counts by (customer, rule, kind), and the reasons given."""
    decisions: Counter[tuple[str, str, str]] = Counter()
    reasons: list[str] = []

    def heard(customer: str, decision) -> None:  # type: ignore[no-untyped-def]
        decisions[(customer, decision.rule, decision.kind)] += 1
        if decision.reason:
            reasons.append(f"{customer} {decision.rule} {decision.kind}: {decision.reason}")

    replayer = Replayer(PLAN, on_decision=heard)
    lines = (GUARDRAILS / name).read_text(encoding="utf-8").splitlines()
    firings = [f for line in lines if line.strip() for f in replayer.feed(parse_event(line))] + replayer.finish()
    sends = [(f.rule, f.customer_id, f.key, iso(f.fired_at), iso(f.send_at or f.fired_at)) for f in firings]
    return sends, decisions, reasons


def test_an_opted_out_customer_gets_nothing_and_one_identified_sixty_days_before_gets_the_email():
    sends, decisions, reasons = replayed("opted_out.jsonl")
    assert sends == [("cart_abandonment", "c-8402", None, "2026-11-21T15:10:00Z", "2026-11-21T15:12:00Z")]
    assert decisions[("c-8401", "cart_abandonment", "suppressed_consent")] == 1
    assert reasons[0] == (
        "c-8401 cart_abandonment suppressed_consent: email consent withdrawn at 2026-11-21T09:30:00Z (list_unsubscribe)"
    )
    # Chloé refused everything, tracking included, then allowed email again: still not tracked.
    assert decisions[("c-8403", "cart_abandonment", "armed")] == 0


def test_five_eligible_firings_under_a_cap_of_three_send_the_three_first_in_priority_order():
    sends, decisions, reasons = replayed("capped.jsonl")
    assert sends == [
        ("purchase_frequency_rising", "c-8201", None, "2026-11-20T22:15:00Z", "2026-11-21T09:02:00Z"),
        ("repeated_product_views", "c-8201", "SKU-LAMP-OAK", "2026-11-20T21:50:00Z", "2026-11-21T09:02:00Z"),
        ("repeated_product_views", "c-8201", "SKU-MUG-SET", "2026-11-20T21:55:00Z", "2026-11-21T09:02:00Z"),
    ]
    assert decisions[("c-8201", "repeated_product_views", "held")] == 4
    assert decisions[("c-8201", "purchase_frequency_rising", "held")] == 1
    capped = [reason for reason in reasons if "suppressed_cap" in reason]
    # Two pushes over the cap at 09:02, then, a day on, the email follow-ups of the two that went.
    assert capped == ["c-8201 repeated_product_views suppressed_cap: cap any: 3 per 1w"] * 4


def test_an_sms_fired_at_night_is_held_until_nine_in_the_customers_own_time_zone():
    sends, _, reasons = replayed("sms_overnight.jsonl")
    assert sorted(sends) == [
        ("purchase_frequency_rising", "c-8101", None, "2026-11-20T23:30:00Z", "2026-11-21T09:02:00Z"),  # Lisbon
        ("purchase_frequency_rising", "c-8102", None, "2026-11-21T02:30:00Z", "2026-11-21T14:02:00Z"),  # New York
        ("purchase_frequency_rising", "c-8103", None, "2026-11-20T22:00:00Z", "2026-11-21T09:02:00Z"),  # "Berlin"
    ]
    assert (
        "c-8103 purchase_frequency_rising invalid_timezone: timezone 'Berlin' is not an IANA time zone: "
        "quiet hours used Europe/Lisbon"
    ) in reasons
    assert (
        "c-8102 purchase_frequency_rising held: quiet hours 21:00-09:00 in America/New_York: "
        "held until 2026-11-21T14:00:00Z"
    ) in reasons


def test_a_transactional_message_goes_out_when_marketing_is_capped():
    sends, decisions, _ = replayed("transactional.jsonl")
    assert [(rule, send_at) for rule, _, _, _, send_at in sends] == [
        ("cart_abandonment", "2026-11-16T11:07:00Z"),
        ("cart_abandonment", "2026-11-17T11:37:00Z"),
        ("cart_abandonment", "2026-11-18T12:07:00Z"),
        ("payment_failed_no_retry", "2026-11-21T00:12:00Z"),
    ]
    assert decisions[("c-8301", "cart_abandonment", "suppressed_cap")] == 1  # the fourth cart, on the 19th


@pytest.mark.parametrize("path", sorted(GUARDRAILS.glob("*.jsonl")), ids=lambda p: p.name)
def test_the_guardrails_readme_names_every_scenario(path: Path):
    readme = (ROOT / "examples" / "scenarios" / "README.md").read_text(encoding="utf-8")
    assert f"`guardrails/{path.name}`" in readme
