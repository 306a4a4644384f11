"""`nudge explain`'s engine side: the decision log, and `when` judged part by part by the engine's own nodes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nudge.contracts import Event, key_text
from nudge.engine import CustomerState, Engine, Policy
from nudge.engine.explain import explain_customer, judge_when
from nudge.engine.language.rules import Rule
from nudge.engine.plan.conditions import AllNode, AnyNode, Explanation, Node, NotNode
from nudge.engine.runtime.codec import LOG_WITHIN
from tests.support import at, ev, plan, rule

CART = """
id: cart
when:
  sequence: [{event: add_to_cart}, {event: checkout_viewed}]
  within: 1h
wait: 1h
unless: {event: purchase}
action: {channel: event}
"""
SERVICES = """
id: services
when: {event: page_viewed, where: {section: services}, count: {gte: 3}, within: 3d}
action: {channel: event}
"""


def _engine(*texts: str, policy: Policy | None = None) -> Engine:
    return Engine(plan(*texts) if policy is None else plan(*texts, policy=policy))


def _feed(engine: Engine, events: list[Event], wall: int | None = None) -> CustomerState:
    state = CustomerState("c-1")
    for event in events:
        engine.process(state, event, wall=event.ts if wall is None else wall)
    return state


# -- the decision log ---------------------------------------------------------------------------


def test_a_cancelled_wait_is_logged_with_the_unless_event_that_cancelled_it():
    engine = _engine(CART)
    state = _feed(engine, [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05"), ev("purchase", "10:30")])
    assert [entry[1:] for entry in state.log] == [
        ["cart", "armed"],
        ["cart", "cancelled", None, "by purchase at 2026-11-22T10:30:00Z"],
    ]


def test_the_log_keeps_only_the_policy_s_number_of_latest_decisions():
    engine = _engine(SERVICES, policy=Policy(decision_log=3))
    views = [ev("page_viewed", f"10:{minute:02d}", section="services") for minute in range(10)]
    state = _feed(engine, views)
    assert len(state.log) == 3
    assert state.log[-1][0] == at("10:09")


def test_a_decision_log_of_zero_keeps_nothing_and_costs_no_bytes():
    with_log = _feed(_engine(CART), [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")])
    without = _feed(
        _engine(CART, policy=Policy(decision_log=0)), [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]
    )
    assert without.log == [] and b'"l"' not in without.encode()
    assert with_log.size() > without.size()


def test_the_log_survives_encoding():
    state = _feed(_engine(CART), [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")])
    assert CustomerState.decode(state.encode()).log == state.log


@settings(max_examples=300, deadline=None)
@given(
    logged=st.integers(min_value=0, max_value=50),
    padding=st.integers(min_value=0, max_value=5000),
    reason=st.text(alphabet="abc xyz:", max_size=80),
)
def test_the_log_gives_way_oldest_first_where_the_state_would_pass_4_kib(logged: int, padding: int, reason: str):
    """Only the log is trimmed for the size, only as far as it must, and what stays is its newest part."""
    state = CustomerState("c-1")
    state.profile = {"note": ["x" * padding, at("09:00")]}
    state.log = [[at("10:00") + index, "views", "suppressed_cap", f"SKU-{index}", reason] for index in range(logged)]
    whole = [list(entry) for entry in state.log]
    raw = state.encode()
    kept = CustomerState.decode(raw)
    assert kept.profile == state.profile  # nothing but the log gives way
    assert kept.log == state.log == whole[len(whole) - len(kept.log) :]
    if len(kept.log) < logged:
        assert len(raw) <= LOG_WITHIN or not kept.log
        one_more = CustomerState.decode(raw)
        one_more.log = whole[len(whole) - len(kept.log) - 1 :]
        one_more.encode()
        assert len(one_more.log) == len(kept.log)  # as far as it must: one more entry does not fit
    else:
        assert len(raw) <= LOG_WITHIN or not logged


# -- explanations -------------------------------------------------------------------------------


def test_a_count_short_of_its_threshold_says_how_many_and_how_many_it_needs():
    engine = _engine(SERVICES)
    state = _feed(
        engine, [ev("page_viewed", "10:00", section="services"), ev("page_viewed", "11:00", section="services")]
    )
    [rule_explained] = explain_customer(engine, state).rules
    [verdict] = rule_explained.when
    assert not verdict.arms
    assert verdict.tree.says == "count of `page_viewed` where section = services in 3d: 2, needs ≥ 3"


def test_a_broken_sequence_names_the_step_with_no_match_and_its_window():
    engine = _engine(CART)
    state = _feed(engine, [ev("checkout_viewed", "10:00"), ev("add_to_cart", "10:05")])
    [verdict] = explain_customer(engine, state).rules[0].when
    assert [part.says for part in verdict.tree.parts] == [
        "step 1 `add_to_cart`: first match after the step before at 2026-11-22T10:05:00Z",
        "step 2 `checkout_viewed`: no matching event after the step before, in "
        "(2026-11-22T10:05:00Z, 2026-11-22T10:05:00Z]",
    ]


def test_an_armed_rule_shows_its_pending_wait_and_not_a_when_tree():
    engine = _engine(CART)
    state = _feed(engine, [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")])
    [explained] = explain_customer(engine, state).rules
    assert explained.pending == [
        {
            "key": None,
            "armed_at": "2026-11-22T10:05:00Z",
            "due": "2026-11-22T11:05:00Z",
            "decided_at": "2026-11-22T11:07:00Z",
        }
    ]
    assert explained.when == []


def test_an_address_trait_is_never_shown_in_an_explanation():
    text = "id: pro\nwhen: {all: [{event: a}, {attribute: email, exists: true}]}\naction: {channel: event}\n"
    engine = _engine(text)
    state = _feed(engine, [ev("identify", "09:00", traits={"email": "ana@example.com"}), ev("a", "10:00")])
    lines = "\n".join(explain_customer(engine, state).lines())
    assert "ana@example.com" not in lines
    assert "set (an address: not shown)" in lines
    tokens = "id: app\nwhen: {all: [{event: a}, {attribute: push_tokens, exists: true}]}\naction: {channel: event}\n"
    engine = _engine(tokens)
    state = _feed(engine, [ev("identify", "09:00", traits={"push_tokens": [{"token": "tok-1"}]}), ev("a", "10:00")])
    assert "tok-1" not in "\n".join(explain_customer(engine, state).lines())


# -- the property: the explanation's verdict is the engine's ------------------------------------

NAMES = ["a", "b", "c"]


@st.composite
def event_filters(draw: st.DrawFn, counted: bool = True) -> str:
    name = draw(st.sampled_from(NAMES))
    parts = [f"event: {name}"]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["where: {v: 1}", "where: {v: {gte: 2}}", "where: {v: {ne: 1}}"])))
    if draw(st.booleans()):
        parts.append(f"within: {draw(st.sampled_from(['5m', '30m']))}")
        if counted and draw(st.booleans()):
            parts.append(f"count: {{{draw(st.sampled_from(['gte', 'lte', 'eq']))}: {draw(st.integers(1, 3))}}}")
    return "{" + ", ".join(parts) + "}"


@st.composite
def conditions(draw: st.DrawFn, depth: int = 2) -> str:
    kinds = ["event", "sequence", "trend", "attribute"] + (["all", "any", "not"] if depth else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "event":
        return draw(event_filters())
    if kind == "sequence":
        steps = [f"{{event: {draw(st.sampled_from(NAMES))}}}" for _ in range(draw(st.integers(2, 3)))]
        return f"{{sequence: [{', '.join(steps)}], within: {draw(st.sampled_from(['10m', '1h']))}}}"
    if kind == "trend":
        name = draw(st.sampled_from(NAMES))
        return f"{{trend: {{event: {name}, period: 10m, periods: {draw(st.integers(2, 3))}, direction: increasing}}}}"
    if kind == "attribute":
        return "{attribute: plan, eq: pro}"
    if kind == "not":
        return f"{{not: {draw(conditions(depth - 1))}}}"
    parts = [draw(conditions(depth - 1)) for _ in range(draw(st.integers(2, 3)))]
    return f"{{{kind}: [{', '.join(parts)}]}}"


@st.composite
def rule_texts(draw: st.DrawFn) -> str:
    lines = [f"id: r{draw(st.integers(0, 99))}", f"when: {draw(conditions())}", "action: {channel: event}"]
    if draw(st.booleans()):
        lines.append("key: k")
    if draw(st.booleans()):
        lines.append("wait: 5m")
    return "\n".join(lines) + "\n"


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    events = []
    if draw(st.booleans()):
        events.append(ev("identify", "09:00", event_id="i0", traits={"plan": draw(st.sampled_from(["pro", "free"]))}))
    ts = at("10:00")
    for index in range(draw(st.integers(1, 25))):
        ts += draw(st.integers(1, 8)) * 60_000  # strictly increasing: every event is judged in order
        props: dict[str, Any] = {"v": draw(st.integers(0, 3))}
        if draw(st.booleans()):
            props["k"] = draw(st.sampled_from(["x", "y", 1]))
        events.append(ev(draw(st.sampled_from(NAMES)), ts, event_id=f"e{index}", **props))
    return events


def _parts_agree(tree: Explanation, node: Node) -> None:
    """What a composite says follows from its parts, which is what a reader of the tree trusts."""
    if isinstance(node, AnyNode):
        assert tree.holds == any(part.holds for part in tree.parts)
    elif isinstance(node, AllNode):
        assert tree.holds == all(part.holds for part in tree.parts)
    elif isinstance(node, NotNode):
        assert tree.holds == (not tree.parts[0].holds)
    for part, child in zip(tree.parts, getattr(node, "children", [getattr(node, "child", None)]), strict=False):
        if isinstance(child, Node):
            _parts_agree(part, child)


def _compiles(text: str) -> Rule | None:
    try:
        candidate = rule(text)
        plan(text)
    except ValueError:
        return None
    return candidate


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=rule_texts(), events=histories())
def test_the_explanation_s_verdict_is_the_engine_s_decision_on_every_event(text: str, events: list[Event]):
    """After each event, judged at it as the arriving one: `arms` is true exactly when the engine armed."""
    assume(_compiles(text) is not None)
    engine = _engine(text)
    compiled = engine.plan.rules[0]
    state = CustomerState("c-1")
    for event in events:
        outcome = engine.process(state, event, wall=event.ts)
        armed = any(d.kind == "armed" and d.rule == compiled.id for d in outcome.decisions)
        stored = next((e for e in state.events_of(event.name) or () if e.id == event.event_id), None)
        key = key_text(stored.props.get(compiled.key_path)) if stored is not None and compiled.key_path else None
        if stored is None or (compiled.key_path is not None and key is None):
            assert not armed  # neither stored nor keyed: the engine judged nothing
            continue
        verdict = judge_when(engine, state, compiled, stored, key, event.ts)
        assert verdict.arms == armed, "\n".join(verdict.tree.lines())
        _parts_agree(verdict.tree, compiled.when)


def test_the_log_s_compact_encoding_gives_back_every_entry_shape():
    state = CustomerState("c-1")
    state.log = [
        [at("10:00"), "cart", "armed"],
        [at("10:05"), "views", "armed", "SKU-1"],
        [at("09:59"), "cart", "suppressed_cap", None, "cap any 3/7d"],  # decisions need not be in time order
        [at("10:06"), "views", "fired", "SKU-1", "step 1"],
        [at("10:06"), "cart", "a_kind_of_later_releases", None, "cap any 3/7d"],
    ]
    assert CustomerState.decode(state.encode()).log == state.log


def test_explain_at_another_instant_judges_the_windows_there_as_a_what_if():
    engine = _engine(SERVICES)
    views = [ev("page_viewed", clock, section="services") for clock in ("10:00", "11:00", "12:00")]
    state = _feed(engine, views)
    [then] = explain_customer(engine, state).rules[0].when
    assert then.arms and then.summary().startswith("met, and page_viewed")
    [later] = explain_customer(engine, state, at=at("+3d 11:30")).rules[0].when  # two of the views are out of 3d
    assert not later.tree.holds
    assert later.tree.says == "count of `page_viewed` where section = services in 3d: 1, needs ≥ 3"
    assert later.summary() == (
        "not met as of 2026-11-25T11:30:00Z (the newest event: page_viewed at 2026-11-22T12:00:00Z)"
    )


_ENTRIES = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**12),
        st.sampled_from(["cart", "views", "trial"]),
        st.sampled_from(["armed", "fired", "cancelled", "suppressed_cap", "a_kind_of_later_releases"]),
        st.one_of(st.none(), st.sampled_from(["SKU-1", "SKU-2"])),
        st.one_of(st.none(), st.sampled_from(["cap any 3/7d", "by purchase at 10:00"])),
    ).map(lambda t: [t[0], t[1], t[2], *([t[3], t[4]] if t[4] else [t[3]] if t[3] else [])]),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(first=_ENTRIES, batches=st.lists(_ENTRIES, max_size=5), size=st.integers(min_value=1, max_value=12))
def test_a_log_appended_to_while_packed_encodes_as_the_log_kept_unpacked(
    first: list[list[Any]], batches: list[list[list[Any]]], size: int
):
    """``extend_log`` leaves a decoded log packed while it has room: its bytes must not show it."""
    kept = CustomerState("c-1")
    kept.extend_log(first, size) if first else None
    raw = kept.encode()
    for entries in batches:
        decoded = CustomerState.decode(raw)
        if entries:
            decoded.extend_log([list(e) for e in entries], size)
            kept.extend_log([list(e) for e in entries], size)
        raw = decoded.encode()
        assert raw == kept.encode()
        assert CustomerState.decode(raw).log == kept.log
