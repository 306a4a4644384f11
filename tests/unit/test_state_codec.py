"""Customer state schema v2, byte for byte: what DynamoDB holds today must decode and re-encode unchanged,
and what earlier releases wrote (v1) must decode to the same state."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from nudge.contracts import Event
from nudge.engine import CustomerState, Engine, compile_rules, load_rules_or_raise
from nudge.engine.runtime.state import RuleState

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_795_000_000_000

# (event, minutes / 7 after T0, properties, traits): a trial customer who browses yoga gear, buys,
# then leaves a cart: profile, eight event names, keyed and unkeyed rules, three pending waits.
STEPS = [
    ("identify", 0, {}, {"email": "ana@example.com", "first_name": "Ana", "plan": "trial"}),
    ("trial_started", 1, {}, {}),
    ("onboarding_viewed", 2, {"step": "welcome"}, {}),
    ("product_viewed", 3, {"sku": "SKU-YOGA-MAT", "category": "yoga", "price": 39.5}, {}),
    ("product_viewed", 4, {"sku": "SKU-YOGA-MAT", "category": "yoga", "price": 39.5}, {}),
    ("product_viewed", 5, {"sku": "SKU-YOGA-MAT", "category": "yoga", "price": 39.5}, {}),
    ("page_viewed", 6, {"section": "services", "path": "/services/a"}, {}),
    ("whitepaper_downloaded", 7, {"title": "Guide"}, {}),
    ("purchase", 8, {"order_id": "o-1", "total": 12}, {}),
    ("add_to_cart", 30, {"sku": "SKU-YOGA-MAT", "name": "Yoga mat", "price": 39.5, "qty": 1}, {}),
    ("checkout_viewed", 31, {}, {}),
    ("product_viewed", 32, {"sku": "SKU-YOGA-BLOCKS", "category": "yoga", "price": 15}, {}),
]


def shipped_rules_state() -> CustomerState:
    engine = Engine(compile_rules(load_rules_or_raise("rules")))
    state = CustomerState("c-golden")
    for index, (name, sevenths, props, traits) in enumerate(STEPS):
        ts = T0 + sevenths * 7 * 60_000
        event = Event(
            event_id=f"g{index:02d}", customer_id="c-golden", name=name, ts=ts, properties=props, traits=traits
        )
        # The clock stays at the first event, so every wait is still pending at the end (the golden
        # state shows pending waits); events ahead of the clock are not late.
        engine.process(state, event, wall=T0)
    return state


def test_the_engine_writes_schema_v2_byte_for_byte():
    """The layout must not move: a change here is a schema change, and needs a reader for the old one."""
    assert shipped_rules_state().encode() == (GOLDEN / "state_v2.json").read_bytes()


def test_a_v1_state_decodes_to_the_same_state_and_is_written_back_as_v2():
    """v1 stored each event's time whole; v2 the difference from the event before it, nothing else."""
    v1, v2 = (GOLDEN / "state_v1.json").read_bytes(), (GOLDEN / "state_v2.json").read_bytes()
    old, new = orjson.loads(v1), orjson.loads(v2)
    new.pop("m")  # v1 writers kept no prune memo: a decoded v1 state has none until it is pruned
    assert orjson.loads(CustomerState.decode(v1).encode()) == new
    for name, items in new["e"].items():
        assert [item[1] for item in old["e"][name]] == list(itertools.accumulate(item[1] for item in items))
    assert {**old, "v": 2, "e": None} == {**new, "e": None}
    assert len(orjson.dumps(new)) < len(v1)  # (the memo aside)


def test_a_state_of_an_unknown_schema_is_refused_with_the_versions_read():
    with pytest.raises(ValueError, match="schema v3 is not supported \\(expected v1 or v2\\)"):
        CustomerState.decode(b'{"v":3,"c":"c-1","n":null,"e":{},"p":{},"r":{}}')


def test_the_state_differs_from_the_previous_release_only_by_the_ids_seen_and_the_decision_log():
    """``state_v1_before_seen_ids.json`` is what the release before the restructure wrote (less its prune memo)."""
    now = orjson.loads((GOLDEN / "state_v1.json").read_bytes())
    before = orjson.loads((GOLDEN / "state_v1_before_seen_ids.json").read_bytes())
    # The ids of events no longer stored: here only the identify's, which is never stored (the ids of
    # stored events are the events' own).
    assert len(now.pop("d")[2]) == len(STEPS) - sum(len(items) for items in now["e"].values())
    # The decision log came later still ("l"), and only adds: older readers ignore it.
    assert [entry[2] for entry in now.pop("l")[1]] == ["a", "a", "a", "a", "f"]  # armed x4, fired
    assert now == before


def test_v2_carries_the_prune_memo_bound_to_the_plan():
    """The prune memo ("m") came with v2; readers of v1 would ignore it too."""
    state = orjson.loads((GOLDEN / "state_v2.json").read_bytes())
    fingerprint, due = state["m"]
    assert fingerprint == compile_rules(load_rules_or_raise("rules")).fingerprint
    assert due > state["n"]


def test_a_decoded_state_encodes_to_the_same_bytes():
    golden = (GOLDEN / "state_v2.json").read_bytes()
    assert CustomerState.decode(golden).encode() == golden


@pytest.mark.parametrize("name", ["state_v1.json", "state_v1_before_seen_ids.json"])
def test_a_decoded_v1_state_encodes_as_v2_and_back_to_the_same_bytes(name: str):
    once = CustomerState.decode((GOLDEN / name).read_bytes()).encode()
    assert orjson.loads(once)["v"] == 2
    assert CustomerState.decode(once).encode() == once


def test_a_state_with_the_old_persisted_prune_memo_is_read_and_the_memo_dropped():
    """Earlier releases stored the engine's prune memo as "x"; it is not the customer's data."""
    old = (GOLDEN / "state_v1_with_prune_memo.json").read_bytes()
    assert b'"x":' in old
    without = CustomerState.decode((GOLDEN / "state_v1_before_seen_ids.json").read_bytes()).encode()
    assert CustomerState.decode(old).encode() == without


def test_a_decoded_state_decides_as_the_state_kept_in_memory():
    engine = Engine(compile_rules(load_rules_or_raise("rules")))
    kept = shipped_rules_state()
    decoded = CustomerState.decode(kept.encode())
    later = Event(event_id="g99", customer_id="c-golden", name="purchase", ts=T0 + 240 * 60_000, properties={})
    first, second = engine.process(kept, later, later.ts), engine.process(decoded, later, later.ts)
    assert first.decisions == second.decisions
    assert kept.encode() == decoded.encode()


def test_the_prune_memo_is_trusted_under_the_same_rules_and_not_under_others():
    """The memo says nothing is due before its time, under one plan: another plan prunes in full."""
    rules = load_rules_or_raise("rules")
    raw = shipped_rules_state().encode()
    same = CustomerState.decode(raw)
    assert same.prune_due == tuple(orjson.loads(raw)["m"])
    # A full look forgets the state of a rule the plan does not have; a trusted memo does not look.
    same.rules[("not_a_rule", None)] = RuleState(last_arm=T0)
    Engine(compile_rules(rules)).prune(same)
    assert ("not_a_rule", None) in same.rules
    fewer = [rule for rule in rules if rule.id != "repeated_product_views"]
    other = Engine(compile_rules(fewer))
    assert other.plan.fingerprint != compile_rules(rules).fingerprint
    decoded = CustomerState.decode(raw)
    decoded.rules[("not_a_rule", None)] = RuleState(last_arm=T0)
    other.prune(decoded)
    assert ("not_a_rule", None) not in decoded.rules
    # and the keyed rule's state is gone, as a state without a memo would lose it
    assert not any(rule_id == "repeated_product_views" for rule_id, _ in decoded.rules)
    assert decoded.prune_due is not None and decoded.prune_due[0] == other.plan.fingerprint


def test_the_plan_fingerprint_follows_the_rules_and_the_policy_not_the_process():
    rules = load_rules_or_raise("rules")
    first, second = compile_rules(rules), compile_rules(load_rules_or_raise("rules"))
    assert first.fingerprint == second.fingerprint
    changed = [rule.model_copy(update={"cooldown": 1}) if rule.id == "cart_abandonment" else rule for rule in rules]
    assert compile_rules(changed).fingerprint != first.fingerprint
