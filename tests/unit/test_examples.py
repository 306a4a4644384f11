"""The example scenarios (examples/scenarios): every example rule fires on its ``.fires.jsonl`` file, exactly as
documented, and stays quiet on its ``.quiet.jsonl`` near miss.

The tests are parametrized over the rules in ``rules/``, so a new rule without a pair of scenario files (and an
entry in ``EXPECTED`` below) fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nudge.contracts import CONSENT_EVENTS, FEEDBACK_EVENTS, Event, Firing, parse_event
from nudge.engine import Engine, Replayer, compile_rules, load_rules_or_raise, replay
from nudge.timefmt import iso
from tests.support import VOCABULARY as SHARED_VOCABULARY

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "rules"
SCENARIOS = ROOT / "examples" / "scenarios"

PLAN = compile_rules(load_rules_or_raise(RULES_DIR))
RULE_IDS = [rule.id for rule in PLAN.rules]

VOCABULARY = set(SHARED_VOCABULARY)
PRODUCT_EVENTS = {"product_viewed", "add_to_cart", "remove_from_cart", "purchase"}
KINDS = ("fires", "quiet")


@dataclass(frozen=True)
class Expected:
    """One firing a scenario must produce."""

    customer_id: str
    key: str | None
    fired_at: str
    channel: str
    events: tuple[str, ...]
    """The event ids the firing lists, in order."""
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per event id, properties the listed event must carry (e.g. a cart line's name and price)."""
    email: str = ""


@dataclass(frozen=True)
class Scenario:
    fires: tuple[Expected, ...]
    fires_tally: dict[str, int]
    quiet_tally: dict[str, int]
    """What the near miss reaches for its rule (armed then cancelled, or never armed)."""


SHOES = {"sku": "SKU-TRAIL-42", "name": "Trailblazer GTX Trail Running Shoe", "price": 129.0, "quantity": 1}
SOCKS = {"sku": "SKU-SOCK-MERINO", "name": "Merino Trail Socks (2-pack)", "price": 24.0, "quantity": 2}
KETTLE = {"sku": "SKU-KETTLE-GN", "name": "Gooseneck Pour-Over Kettle", "price": 59.9, "quantity": 1}
GRINDER = {"sku": "SKU-GRINDER-HB", "name": "Hand Burr Coffee Grinder", "price": 45.0, "quantity": 1}
MAT = {"sku": "SKU-YOGA-MAT", "name": "Cork Yoga Mat 5mm", "price": 68.0}
BLOCKS = {"sku": "SKU-YOGA-BLOCKS", "name": "Cork Yoga Blocks (pair)", "price": 34.0}
THROW = {"sku": "SKU-THROW-GRY", "name": "Nordic Wool Throw Blanket, Grey", "price": 89.0}
ESPRESSO = {"sku": "SKU-ESPRESSO-PRO", "name": "Barista Pro Espresso Machine", "price": 449.0}
PLAYBOOK = {"title": "Cold-Chain Logistics Playbook 2027", "path": "/resources/cold-chain-playbook.pdf"}


def _services(title: str, path: str) -> dict[str, Any]:
    return {"section": "services", "title": title, "path": path}


EXPECTED: dict[str, Scenario] = {
    "cart_abandonment": Scenario(
        fires=(
            Expected(
                "c-1001",
                None,
                "2026-11-21T11:12:00Z",
                "email",
                ("cart-fires-004", "cart-fires-006", "cart-fires-007"),
                {"cart-fires-004": SHOES, "cart-fires-006": SOCKS},
                email="maya.fernandes@example.com",
            ),
            Expected(
                "c-1002",
                None,
                "2026-11-21T15:33:00Z",
                "email",
                ("cart-fires-010", "cart-fires-011", "cart-fires-013", "cart-fires-014"),
                {"cart-fires-010": KETTLE, "cart-fires-013": GRINDER},
                email="tom.becker@example.com",
            ),
        ),
        fires_tally={"armed": 3, "fired": 2, "superseded": 1, "cancelled": 0},
        quiet_tally={"armed": 1, "fired": 0, "cancelled": 1},
    ),
    "yoga_mat_then_blocks": Scenario(
        fires=(
            Expected(
                "c-2001",
                None,
                "2026-11-07T08:15:00Z",
                "email",
                ("yoga-fires-003", "yoga-fires-006"),
                {"yoga-fires-003": MAT, "yoga-fires-006": BLOCKS},
                email="aiko.tanaka@example.com",
            ),
        ),
        fires_tally={"armed": 1, "fired": 1},
        quiet_tally={"armed": 0, "fired": 0},
    ),
    "repeated_product_views": Scenario(
        fires=(
            Expected(
                "c-3001",
                "SKU-THROW-GRY",
                "2026-11-12T10:30:00Z",
                "push",
                ("views-fires-003", "views-fires-006", "views-fires-007"),
                {"views-fires-003": THROW, "views-fires-006": THROW, "views-fires-007": THROW},
                email="sofia.rossi@example.com",
            ),
            Expected(  # the push went unopened for a day: the email follows, listing the same views
                "c-3001",
                "SKU-THROW-GRY",
                "2026-11-13T10:30:00Z",
                "email",
                ("views-fires-003", "views-fires-006", "views-fires-007"),
                {"views-fires-003": THROW},
                email="sofia.rossi@example.com",
            ),
            Expected(  # opened the push (held overnight in Dubai) at 06:10: no email
                "c-3002",
                "SKU-ESPRESSO-PRO",
                "2026-11-13T23:30:00Z",
                "push",
                ("views-fires-011", "views-fires-012", "views-fires-014"),
                {"views-fires-014": ESPRESSO},
                email="omar.haddad@example.com",
            ),
        ),
        fires_tally={"armed": 2, "fired": 3, "steps": 1, "cancelled": 1},
        quiet_tally={"armed": 1, "fired": 0, "cancelled": 1},
    ),
    "trial_engaged_no_upgrade": Scenario(
        fires=(
            Expected(
                "c-4001",
                None,
                "2026-11-11T14:00:00Z",
                "email",
                ("trial-fires-003", "trial-fires-004", "trial-fires-005"),
                email="daniel.okoye@brightline-analytics.example",
            ),
        ),
        fires_tally={"armed": 2, "fired": 1, "superseded": 1},
        quiet_tally={"armed": 1, "fired": 0, "cancelled": 1},
    ),
    "payment_failed_no_retry": Scenario(
        fires=(
            Expected(
                "c-7001",
                None,
                "2026-11-24T08:30:00Z",
                "email",
                ("pay-fires-003",),
                {"pay-fires-003": {"amount": 19.9, "currency": "EUR", "plan": "Yoga Club monthly"}},
                email="ines.moreira@example.com",
            ),
        ),
        fires_tally={"armed": 1, "fired": 1},
        quiet_tally={"armed": 1, "fired": 0, "cancelled": 1},
    ),
    "whitepaper_engaged_lead": Scenario(
        fires=(
            Expected(
                "c-5001",
                None,
                "2026-11-18T09:05:00Z",
                "webhook",
                ("lead-fires-003", "lead-fires-004", "lead-fires-006", "lead-fires-008"),
                {
                    "lead-fires-003": PLAYBOOK,
                    "lead-fires-004": _services("Cold storage", "/services/cold-storage"),
                    "lead-fires-006": _services("Last-mile delivery", "/services/last-mile"),
                    "lead-fires-008": _services("Refrigerated transport", "/services/reefer-transport"),
                },
                email="hannah.okafor@northwind-foods.example",
            ),
        ),
        fires_tally={"armed": 2, "fired": 1, "suppressed_cooldown": 1},
        quiet_tally={"armed": 0, "fired": 0},
    ),
    "purchase_frequency_rising": Scenario(
        fires=(
            Expected(
                "c-6001",
                None,
                "2026-11-20T18:45:00Z",
                "sms",
                tuple(f"rising-fires-{n:03d}" for n in (3, 4, 6, 7, 9, 10)),
                email="emma.johansson@example.com",
            ),
        ),
        fires_tally={"armed": 1, "fired": 1},
        quiet_tally={"armed": 0, "fired": 0},
    ),
}


def scenario_path(rule_id: str, kind: str) -> Path:
    return SCENARIOS / f"{rule_id}.{kind}.jsonl"


def read_scenario(path: Path) -> list[Event]:
    return [parse_event(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def replay_scenario(path: Path) -> tuple[list[Firing], Replayer]:
    replayer = Replayer(PLAN)
    firings: list[Firing] = []
    for event in read_scenario(path):
        firings.extend(replayer.feed(event))
    firings.extend(replayer.finish())
    return firings, replayer


def summary(firing: Firing) -> tuple[str, str, str | None, str, str]:
    return (firing.rule, firing.customer_id, firing.key, iso(firing.fired_at), firing.channel)


def check_tally(replayer: Replayer, rule_id: str, expected: dict[str, int]) -> None:
    tally = replayer.stats.rules[rule_id]
    assert {name: getattr(tally, name) for name in expected} == expected


# -- every rule has its scenarios ---------------------------------------------------------------------------------


def test_the_example_rules_are_loaded():
    assert len(RULE_IDS) >= 6


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_has_a_fires_and_a_quiet_scenario(rule_id):
    for kind in KINDS:
        assert scenario_path(rule_id, kind).is_file(), f"write examples/scenarios/{rule_id}.{kind}.jsonl"
    assert rule_id in EXPECTED, f"add the expected firings of {rule_id}'s scenarios to EXPECTED"


def test_every_scenario_file_belongs_to_a_rule():
    pattern = re.compile(r"^(?P<rule>[a-z0-9_]+)\.(?P<kind>fires|quiet)\.jsonl$")
    for path in sorted(SCENARIOS.iterdir()):
        if path.name == "README.md" or path.is_dir():
            continue  # guardrails/: the policy's scenarios, tested in test_guardrail_scenarios.py
        match = pattern.match(path.name)
        assert match is not None, f"{path.name}: name scenarios <rule_id>.fires.jsonl or <rule_id>.quiet.jsonl"
        assert match["rule"] in RULE_IDS, f"{path.name}: no rule {match['rule']!r} in rules/"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_the_readme_lists_both_scenarios(rule_id):
    readme = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f"`{rule_id}.{kind}.jsonl`" in readme


# -- the files are realistic and hand-readable ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_scenario_file_is_well_formed(rule_id, kind):
    path = scenario_path(rule_id, kind)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    raw = [json.loads(line) for line in lines]
    events = [parse_event(line) for line in lines]  # every line is a valid envelope

    ids = [item["event_id"] for item in raw]
    assert len(set(ids)) == len(ids), "event ids must be unique"
    prefix = ids[0].rsplit("-", 1)[0]
    assert prefix.endswith(f"-{kind}")
    assert ids == [f"{prefix}-{n:03d}" for n in range(1, len(ids) + 1)], "ids count up: cart-fires-001, -002..."

    for item in raw:
        assert item["event"] in VOCABULARY or item["event"] in CONSENT_EVENTS | FEEDBACK_EVENTS, item
        assert re.fullmatch(r"2026-11-\d\dT\d\d:\d\d:\d\dZ", item["timestamp"]), item
        if item["event"] in PRODUCT_EVENTS:
            assert {"sku", "name", "price", "category"} <= item["properties"].keys(), item
        if item["event"] == "page_viewed":
            assert "section" in item["properties"], item
    stamps = [event.ts for event in events]
    assert stamps == sorted(stamps), "events are in time order"

    customers = {event.customer_id for event in events}
    for customer in customers:
        identified = [e for e in events if e.customer_id == customer and e.name == "identify"]
        assert identified, f"{customer} has no identify event"
        assert {"email", "first_name", "phone"} <= identified[0].traits.keys()
    # Some noise that no rule reads (page views outside the services section, for instance).
    engine = Engine(PLAN)
    assert any(not engine.needs(event) for event in events if event.name != "identify")


# -- the scenarios fire exactly as documented ---------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_fires_scenario_fires_exactly_the_expected_firings(rule_id):
    expected = EXPECTED[rule_id]
    firings, replayer = replay_scenario(scenario_path(rule_id, "fires"))

    assert [summary(f) for f in firings] == [
        (rule_id, e.customer_id, e.key, e.fired_at, e.channel) for e in expected.fires
    ]
    for firing, want in zip(firings, expected.fires, strict=True):
        assert [m.event_id for m in firing.events] == list(want.events)
        listed = {m.event_id: m for m in firing.events}
        for event_id, properties in want.properties.items():
            carried = listed[event_id].properties
            assert {name: carried.get(name) for name in properties} == properties, event_id
        assert firing.profile["email"] == want.email
        assert {"first_name", "phone"} <= firing.profile.keys()
    check_tally(replayer, rule_id, expected.fires_tally)
    assert replayer.pending_timers() == 0


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_quiet_scenario_does_not_fire(rule_id):
    firings, replayer = replay_scenario(scenario_path(rule_id, "quiet"))

    assert [f for f in firings if f.rule == rule_id] == []
    assert firings == [], "a near miss of one rule fires no other rule either"
    check_tally(replayer, rule_id, EXPECTED[rule_id].quiet_tally)
    assert replayer.pending_timers() == 0


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_replay_function_agrees_with_replayer(rule_id):
    path = scenario_path(rule_id, "fires")
    assert [f.to_json() for f in replay(PLAN, read_scenario(path))] == [f.to_json() for f in replay_scenario(path)[0]]


def test_cart_reminder_lists_cart_lines_with_name_and_price():
    firings, _ = replay_scenario(scenario_path("cart_abandonment", "fires"))
    maya = firings[0].to_json()
    lines = [(e["properties"]["name"], e["properties"]["price"]) for e in maya["events"] if e["event"] == "add_to_cart"]
    assert lines == [("Trailblazer GTX Trail Running Shoe", 129.0), ("Merino Trail Socks (2-pack)", 24.0)]
    assert maya["armed_at"] == "2026-11-21T10:12:00Z"
    assert maya["template"] == "cart_reminder"


def test_all_fires_scenarios_together_fire_the_union():
    """The customers of different scenarios do not disturb each other when replayed as one stream."""
    events = sorted(
        (event for rule_id in RULE_IDS for event in read_scenario(scenario_path(rule_id, "fires"))),
        key=lambda event: event.ts,
    )
    together = sorted(summary(f) for f in replay(PLAN, events))
    expected = sorted(
        (rule_id, e.customer_id, e.key, e.fired_at, e.channel) for rule_id in RULE_IDS for e in EXPECTED[rule_id].fires
    )
    assert together == expected
