"""Small builders shared by the tests: rules from YAML text, events at readable times."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import yaml

from nudge.contracts import Event, Firing
from nudge.engine import Plan, Policy, Rule, Yaml12Loader, compile_rules, replay

DAY = "2026-11-22"

VOCABULARY = (
    "identify",
    "page_viewed",
    "product_viewed",
    "add_to_cart",
    "remove_from_cart",
    "checkout_viewed",
    "purchase",
    "whitepaper_downloaded",
    "trial_started",
    "onboarding_viewed",
    "upgraded",
    "payment_failed",
    "payment_succeeded",
)
"""The one event vocabulary of the examples, docs and tests."""
_ids = itertools.count(1)


def at(clock: str, day: str = DAY) -> int:
    """Epoch ms of ``HH:MM`` (or ``HH:MM:SS``) on ``day`` (UTC); ``+1d 10:00`` adds days."""
    days = 0
    if clock.startswith("+"):
        offset, clock = clock[1:].split(" ", 1)
        days = int(offset.rstrip("d"))
    parts = [int(p) for p in clock.split(":")]
    hour, minute, second = [*parts, 0, 0][:3]
    base = datetime.fromisoformat(day).replace(tzinfo=UTC, hour=hour, minute=minute, second=second)
    return int(base.timestamp() * 1000) + days * 86_400_000


def ev(
    event_name: str,
    when: str | int,
    /,
    customer: str = "c-1",
    event_id: str | None = None,
    traits: dict[str, Any] | None = None,
    **properties: Any,
) -> Event:
    ts = at(when) if isinstance(when, str) else when
    return Event(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer,
        name=event_name,
        ts=ts,
        properties=properties,
        traits=traits or {},
    )


def rule(text: str) -> Rule:
    return Rule.model_validate(yaml.load(text, Loader=Yaml12Loader))


EVERY_CHANNEL_OPT_OUT = Policy.model_validate(
    {"consent": {"email": "opt_out", "sms": "opt_out", "push": "opt_out", "tracking": "opt_out"}}
)
"""For tests of conditions and timing: a firing on any channel is sent unless the customer refused it
(the shipped defaults make SMS and push opt-in; the consent tests use them)."""


def plan(*texts: str, policy: Policy = EVERY_CHANNEL_OPT_OUT) -> Plan:
    return compile_rules([rule(text) for text in texts], policy)


def run(compiled: Plan, events: list[Event], until: int | None = None) -> list[Firing]:
    return list(replay(compiled, events, until))


def fired(compiled: Plan, events: list[Event], until: int | None = None) -> list[tuple[str, str, str | None, int]]:
    """(rule, customer, key, fired_at) of every firing, in order."""
    return [(f.rule, f.customer_id, f.key, f.fired_at) for f in run(compiled, events, until)]
