"""`nudge bench --peers`: every system decides the same firings from the same file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nudge.bench import peers
from nudge.bench.workload import WorkloadSpec
from nudge.engine import load_plan, replay

SPEC = WorkloadSpec(events=12_000, customers=800, seed=5)


@pytest.fixture(scope="module")
def events() -> list:  # type: ignore[type-arg]
    return peers.peer_workload(SPEC)


@pytest.fixture(scope="module")
def path(events: list, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("peers") / "events.jsonl"
    peers.write_file(events, path)
    return path


def _reference(events: list) -> set[peers.Fired]:  # type: ignore[type-arg]
    return {(f.rule, f.customer_id, f.armed_at, f.fired_at) for f in replay(load_plan(peers.PEER_RULES), events)}


def test_the_hand_written_loop_fires_what_the_engine_fires(events: list, path: Path) -> None:  # type: ignore[type-arg]
    expected = _reference(events)
    assert {rule for rule, *_ in expected} == {peers.CART, peers.X_THEN_Y}  # both rules fire on this workload
    fired = peers.hand_written(path)
    assert set(fired) == expected and len(fired) == len(expected)


def test_the_engine_alone_and_end_to_end_fire_the_same(events: list, path: Path) -> None:  # type: ignore[type-arg]
    expected = _reference(events)
    assert set(peers.engine_alone(events)()) == expected
    assert set(peers.nudge_end_to_end(path)) == expected


def test_bytewax_fires_the_same(events: list, path: Path) -> None:  # type: ignore[type-arg]
    pytest.importorskip("bytewax", reason="nudge[bench] (Bytewax has wheels up to CPython 3.12)")
    assert set(peers.bytewax_flow(path)) == _reference(events)


def test_the_comparison_reports_medians_and_checks_agreement(events: list, path: Path) -> None:  # type: ignore[type-arg]
    document = peers.compare(path, events, runs=1, rules=Path("rules"))
    assert document["all_agree"] and document["systems"][0]["vs_nudge"] == 1.0
    shipped = document["replay_vs_engine"]
    assert shipped["same_firings"] and shipped["firings"] > 0  # replay and the bench loop agree on the shipped rules
    out = io.StringIO()
    peers.print_table(document, out)
    assert "a hand-written Python loop for the two rules" in out.getvalue()
    assert "nudge replay from the file" in out.getvalue()
    # Every other #17 target is measured in the same run, with its goal and verdict.
    targets = {row["target"]: row for row in document["targets"]}
    expected = {"200 rules vs the 6 (engine alone)", "evaluator cold start (import and compile)", "state p99"}
    assert expected <= set(targets)
    assert targets["the 6 shipped rules vs the 2 (engine alone)"]["value"] == round(
        shipped["engine_events_per_s"] / document["systems"][1]["events_per_s"], 2
    )
    assert all(isinstance(row["met"], bool) and row["value"] > 0 for row in targets.values())
    assert "#17 target, in this run" in out.getvalue()


def test_a_rule_the_peers_decide_differently_is_caught(
    events: list,  # type: ignore[type-arg]
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check is real: a hand-written loop that forgets the purchase does not agree."""
    original = peers.TwoRules.on_event

    def forgetful(self, customer, name, ts, event_id, sku, out):  # type: ignore[no-untyped-def]
        return original(self, customer, "page_viewed" if name == "purchase" else name, ts, event_id, sku, out)

    monkeypatch.setattr(peers.TwoRules, "on_event", forgetful)
    assert set(peers.hand_written(path)) != _reference(events)
    document = peers.compare(path, events, runs=1)
    assert not document["all_agree"]


def test_history_cost_files_every_event_the_rules_read_under_its_customer_s_stored_events() -> None:
    from nudge.bench.history import history_cost
    from nudge.bench.workload import generate
    from nudge.engine import Engine

    workload = generate(WorkloadSpec(events=3_000, customers=100, seed=9)).events
    plan = load_plan("rules")
    rows = history_cost(plan, workload, repeat=1)
    engine = Engine(plan)
    assert sum(row["events"] for row in rows) == sum(1 for e in workload if engine.read(e) is not None)
    assert rows[0]["events"] > 0 and rows[0]["us_per_event"] > 0
    assert sum(row["events"] for row in rows[2:]) > 0  # a hundred customers: some hold 30 events or more
