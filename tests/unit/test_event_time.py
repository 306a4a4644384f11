"""Results depend only on event time: allowed lateness, when waits are decided, rule isolation.

The README's Semantics section states the contract; each test pins one clause, and the
properties at the end check it over random histories, arrival orders and timer delays:

- a wait due at D is decided at D + L on everything known by then, and fires with ``fired_at`` D;
- an arming at T' <= D restarts the wait, one at T' > D starts a wait of its own;
- before anything new, every wait whose decision time the caller's clock has passed is decided;
- a late event is judged at its own time and at every later instant it could change;
- each rule sees only what it would have kept alone, so adding a rule never changes another's firings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.contracts import Event, Firing, Timer
from nudge.engine import (
    CustomerState,
    Engine,
    Plan,
    TimerCancel,
    TimerSet,
    compile_rules,
    future_problem,
    load_rules_or_raise,
)
from nudge.engine.replay import Replayer
from tests.support import at, ev, fired, plan, rule, run
from tests.unit.test_semantics import CART

L = 2 * 60_000
MINUTE = 60_000

PING = """
id: ping_later
when: {event: ping}
wait: 30s
action: {channel: event}
"""


def _ms(clock: str, ms: int) -> int:
    return at(clock) + ms


# -- defect 7: due times, rounding and late timers --------------------------------------------------


def test_an_arming_after_a_due_time_starts_a_second_wait_and_both_fire():
    """Pings at 10:00:00.250 and 10:00:30.500 under a 30 s wait: two firings, whatever the timers do."""
    pings = [ev("ping", _ms("10:00:00", 250)), ev("ping", _ms("10:00:30", 500))]
    assert fired(plan(PING), pings) == [
        ("ping_later", "c-1", None, _ms("10:00:30", 250)),
        ("ping_later", "c-1", None, _ms("10:01:00", 500)),
    ]


def test_an_arming_inside_the_wait_restarts_it():
    pings = [ev("ping", _ms("10:00:00", 250)), ev("ping", _ms("10:00:30", 250))]  # exactly at D
    assert fired(plan(PING), pings) == [("ping_later", "c-1", None, _ms("10:01:00", 250))]


def test_two_waits_of_one_key_share_one_timer_which_moves_to_the_younger_when_the_older_is_decided():
    engine = Engine(plan(PING))
    state = CustomerState("c-1")
    first = engine.process(state, ev("ping", at("10:00:00")), wall=at("10:00:00"))
    second = engine.process(state, ev("ping", at("10:00:40")), wall=at("10:00:40"))
    assert [type(t) for t in first.timers] == [TimerSet]
    assert second.timers == []  # the timer stays on the older wait
    [request] = first.timers
    assert isinstance(request, TimerSet)
    assert request.at == at("10:00:30") + L and request.timer.due == at("10:00:30")
    outcome = engine.on_timer(state, request.timer, wall=request.at)
    assert [f.fired_at for f in outcome.firings] == [at("10:00:30")]
    [moved] = outcome.timers
    assert isinstance(moved, TimerSet) and not moved.replaces  # the fired schedule deleted itself
    assert (moved.timer.arm, moved.at) == (at("10:00:40"), at("10:01:10") + L)


def _cart_armed_at_10_05() -> tuple[Engine, CustomerState, TimerSet]:
    """The cart rule armed at 10:05 (due 11:05, decided at 11:07), and the timer request it made."""
    engine = Engine(plan(CART))
    state = CustomerState("c-1")
    engine.process(state, ev("add_to_cart", "10:00"), wall=at("10:00"))
    [request] = engine.process(state, ev("checkout_viewed", "10:05"), wall=at("10:05")).timers
    assert isinstance(request, TimerSet) and request.at == at("11:07")
    return engine, state, request


def test_a_wait_is_decided_at_due_plus_lateness_and_a_straggler_before_it_still_cancels():
    """A purchase stamped inside the wait that arrives 90 s after the due time still counts."""
    engine, state, _ = _cart_armed_at_10_05()
    late_purchase = engine.process(state, ev("purchase", "11:04"), wall=at("11:06:30"))
    assert late_purchase.firings == []
    assert [d.kind for d in late_purchase.decisions] == ["cancelled"]
    assert [type(t) for t in late_purchase.timers] == [TimerCancel]


def test_a_straggler_after_the_decision_time_is_late_and_changes_nothing():
    engine, state, _ = _cart_armed_at_10_05()
    outcome = engine.process(state, ev("purchase", "11:04"), wall=at("11:08"))
    assert outcome.late
    assert [f.fired_at for f in outcome.firings] == [at("11:05")]  # decided first, as of 11:05


def test_a_late_timer_in_a_batch_with_newer_events_is_decided_as_of_its_decision_time():
    """Scheduler delivers 10 min late, behind a purchase stamped after the due time: the cart still fires."""
    engine, state, request = _cart_armed_at_10_05()
    batch_wall = at("11:17")
    newer = engine.process(state, ev("purchase", "11:06"), wall=batch_wall)
    timer = engine.on_timer(state, request.timer, wall=batch_wall)
    assert [f.fired_at for f in newer.firings] == [at("11:05")]
    assert [d.kind for d in timer.decisions] == ["stale_timer"]  # already decided, as of 11:05


def test_a_timer_that_comes_late_on_its_own_decides_as_of_the_due_time():
    engine, state, request = _cart_armed_at_10_05()
    outcome = engine.on_timer(state, request.timer, wall=at("13:00"))
    assert [f.fired_at for f in outcome.firings] == [at("11:05")]


def test_replay_decides_waits_at_due_plus_lateness():
    """An unless event stamped before the due time and arriving within L of it cancels in replay too."""
    events = [
        ev("add_to_cart", "10:00"),
        ev("checkout_viewed", "10:05"),
        ev("page_viewed", "11:06"),  # moves the virtual clock past the due time, not past D + L
        ev("purchase", "11:04"),
    ]
    assert fired(plan(CART), events) == []
    assert fired(plan(CART), events[:3]) == [("cart", "c-1", None, at("11:05"))]


# -- events from the future -------------------------------------------------------------------------

HOUR = 3_600_000
YEAR_2036 = at("10:02", day="2036-01-01")


def test_an_event_up_to_max_future_skew_ahead_of_its_clock_is_accepted_and_one_ms_more_is_refused():
    clock = at("10:00")
    assert future_problem(clock + HOUR, clock, HOUR) is None
    assert future_problem(clock + HOUR + 1, clock, HOUR) == (
        "from the future: timestamp 2026-11-22T11:00:00.001Z is 1h 0m ahead of the clock "
        "(2026-11-22T10:00:00Z); max_future_skew is 1h (policy.yaml)"
    )
    assert "3327d 0h ahead" in (future_problem(YEAR_2036, at("10:02"), HOUR) or "")


def test_a_2036_event_is_refused_on_arrival_and_the_customer_still_gets_the_cart_email():
    """The field report: one event from a phone set to 2036 moved its customer's clock ten years
    ahead, and every later event was too late to count. Refused on arrival, it changes nothing."""
    history = [
        (ev("add_to_cart", YEAR_2036, sku="SKU-9"), at("09:58")),  # from a phone set to 2036
        (ev("add_to_cart", "10:00"), at("10:00")),
        (ev("checkout_viewed", "10:05"), at("10:05")),
    ]
    replayer = Replayer(plan(CART))
    firings = [f for event, arrival in history for f in replayer.feed(event, arrival)]
    firings += replayer.finish()
    assert [(f.rule, f.fired_at) for f in firings] == [("cart", at("11:05"))]
    assert replayer.stats.future == 1
    assert replayer.states["c-1"].now == at("10:05")

    # Without an arrival to judge it by, the same event would have silenced the customer.
    accepted = Replayer(plan(CART))
    assert [f for event, _ in history for f in accepted.feed(event)] + accepted.finish() == []
    assert accepted.stats.late == 2


# -- late events are judged at their own instants ---------------------------------------------------


def test_a_late_first_step_completes_a_sequence_whose_last_step_already_came():
    p = plan(CART)
    in_order = [ev("add_to_cart", "10:00"), ev("checkout_viewed", "10:05")]
    reversed_ = [in_order[1], in_order[0]]
    assert fired(p, reversed_) == fired(p, in_order) == [("cart", "c-1", None, at("11:05"))]


def test_a_late_event_is_judged_at_its_own_time_not_at_the_newest_event():
    """The 10:09 checkout view arrives after a 10:20 page view; its window is [09:09, 10:09] still."""
    x_then_checkout = """
id: view_then_checkout
when:
  sequence: [{event: product_viewed}, {event: checkout_viewed}]
  within: 10m
action: {channel: event}
"""
    p = plan(x_then_checkout, "id: pages\nwhen: {event: page_viewed}\naction: {channel: event}\n")
    events = [ev("product_viewed", "10:00"), ev("page_viewed", "10:10"), ev("checkout_viewed", "10:09")]
    assert [f[0] for f in fired(p, events)] == ["pages", "view_then_checkout"]


# -- defect 6: a rule's firings do not depend on the other rules --------------------------------------

SHIPPED_RULES = load_rules_or_raise("rules")


def _firings(compiled: Plan, events: list[Event], rule_id: str | None = None) -> set[tuple[Any, ...]]:
    return {_identity(f) for f in run(compiled, events) if rule_id is None or f.rule == rule_id}


def _identity(f: Firing) -> tuple[Any, ...]:
    return (f.rule, f.step, f.customer_id, f.key, f.armed_at, f.fired_at, tuple(e.event_id for e in f.events))


def test_a_heavy_viewer_still_gets_the_yoga_bundle_with_every_shipped_rule_loaded():
    """60 other product views between the mat and the blocks: stored for repeated_product_views, which
    used to share the 50 newest product views with yoga_mat_then_blocks and pushed the mat view out."""
    events = [ev("product_viewed", "10:00", sku="SKU-YOGA-MAT", name="Mat", price=30)]
    events += [ev("product_viewed", f"10:{1 + i // 2:02d}:{30 * (i % 2):02d}", sku=f"SKU-{i}") for i in range(60)]
    events.append(ev("product_viewed", "11:00", sku="SKU-YOGA-BLOCKS", name="Blocks", price=10))
    alone = compile_rules([r for r in SHIPPED_RULES if r.id == "yoga_mat_then_blocks"])
    together = compile_rules(SHIPPED_RULES)
    expected = _firings(alone, events)
    assert [f[0] for f in expected] == ["yoga_mat_then_blocks"]
    assert _firings(together, events, "yoga_mat_then_blocks") == expected


def test_a_condition_sees_only_its_own_share_of_a_filter_another_rule_keeps_more_of():
    """Both count product views; the second keeps 80, but the first still sees only the newest 50."""
    few = "id: few\nwhen: {event: product_viewed, count: {lte: 50}, within: 1d}\naction: {channel: event}\n"
    many = "id: many\nwhen: {event: product_viewed, count: {gte: 80}, within: 1d}\naction: {channel: event}\n"
    events = [ev("product_viewed", at("10:00") + i * MINUTE) for i in range(81)]
    assert _firings(plan(few), events) == _firings(plan(few, many), events, "few")


# -- properties ------------------------------------------------------------------------------------

KEYS: list[Any] = [1, "1", "x"]


@st.composite
def wait_rules(draw: st.DrawFn, index: int) -> str:
    """A rule with a wait no shorter than the allowed lateness, from the monotonic forms."""
    kind = draw(st.sampled_from(["lone", "sequence", "count"]))
    if kind == "lone":
        when = "{event: " + draw(st.sampled_from(["a", "b"])) + "}"
    elif kind == "sequence":
        first, second = draw(st.sampled_from([("a", "b"), ("b", "a"), ("a", "c")]))
        within = draw(st.sampled_from(["5m", "20m"]))
        when = f"{{sequence: [{{event: {first}}}, {{event: {second}}}], within: {within}}}"
    else:
        name = draw(st.sampled_from(["a", "c"]))
        when = f"{{event: {name}, count: {{gte: {draw(st.integers(2, 3))}}}, within: 10m}}"
    lines = [f"id: r{index}", f"when: {when}", f"wait: {draw(st.sampled_from(['2m', '3m', '10m']))}"]
    if draw(st.booleans()):
        lines.append("key: k")
    if draw(st.booleans()):
        lines.append("unless: {event: u}")
    if draw(st.booleans()):
        lines.append(f"cooldown: {draw(st.sampled_from(['5m', '30m']))}")
    if draw(st.booleans()):
        # A push, then an email unless the push was opened (histories open some), maybe an sms after.
        lines.append("action: {channel: push, template: t}")
        lines.append("escalate:")
        lines.append(f"  - {{after: {draw(st.sampled_from(['3m', '10m']))}, channel: email, template: t}}")
        if draw(st.booleans()):
            lines.append("  - {after: 5m, channel: sms, template: t, unless: {event: u}}")
    else:
        lines.append("action: {channel: event}")
    return "\n".join(lines) + "\n"


@st.composite
def rule_sets(draw: st.DrawFn) -> list[str]:
    return [draw(wait_rules(index)) for index in range(draw(st.integers(1, 3)))]


ADDRESSES = {"email": "a@example.com", "phone": "+351910000000", "push_tokens": [{"token": "t", "platform": "ios"}]}


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    events = []
    for customer in ("c-1", "c-2"):
        if draw(st.booleans()):  # reachable on every channel; else escalations pass over each step
            events.append(
                Event(event_id=f"i-{customer}", customer_id=customer, name="identify", ts=at("10:00"), traits=ADDRESSES)
            )
    for index in range(draw(st.integers(1, 30))):
        name = draw(st.sampled_from(["a", "b", "c", "u", "a", "b", "message_opened"]))
        ts = at("10:00") + draw(st.integers(0, 90)) * 20_000
        customer = draw(st.sampled_from(["c-1", "c-2"]))
        props: dict[str, Any] = {"k": draw(st.sampled_from(KEYS))}
        if name == "message_opened":  # an app that knows which rule's push it opened, not the firing
            props = {"channel": "push", "rule": f"r{draw(st.integers(0, 2))}"}
        events.append(Event(event_id=f"e{index}", customer_id=customer, name=name, ts=ts, properties=props))
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def _arrivals(events: list[Event], rng: random.Random) -> list[tuple[int, Event]]:
    """Each event arrives up to L after its own time (in replay: when the clock is no further on)."""
    arrivals = [(e.ts + rng.randint(0, L), e) for e in events]
    return sorted(arrivals, key=lambda item: (item[0], item[1].event_id))


def _in_order(compiled: Plan, events: list[Event]) -> set[tuple[Any, ...]]:
    return {_identity(f) for f in run(compiled, events)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=rule_sets(), events=histories(), seed=st.integers(0, 2**32 - 1))
def test_any_arrival_order_within_the_lateness_gives_the_in_order_firings_in_replay(
    texts: list[str], events: list[Event], seed: int
):
    compiled = plan(*texts)
    shuffled = [e for _, e in _arrivals(events, random.Random(seed))]
    replayer = Replayer(compiled)
    got: set[tuple[Any, ...]] = set()
    for event in shuffled:
        got |= {_identity(f) for f in replayer.feed(event)}
    got |= {_identity(f) for f in replayer.finish()}
    assert replayer.stats.late == 0
    assert got == _in_order(compiled, events)


@dataclass
class _Driver:
    """The evaluator's loop without the I/O: batches, states decoded and encoded between them, timers
    that come late by as much as the Scheduler likes, and per-event clocks."""

    engine: Engine
    rng: random.Random
    states: dict[str, bytes] = field(default_factory=dict)
    timers: dict[tuple[str, str, str | None], tuple[int, Timer]] = field(default_factory=dict)
    firings: set[tuple[Any, ...]] = field(default_factory=set)

    def run(self, arrivals: list[tuple[int, Event]]) -> set[tuple[Any, ...]]:
        queue = list(arrivals)
        while queue or self.timers:
            batch: list[tuple[int, Event | Timer]] = []
            for _ in range(self.rng.randint(1, 6)):
                item = self._next(queue)
                if item is None:
                    break
                batch.append(item)
            self._evaluate(batch)
        return self.firings

    def _next(self, queue: list[tuple[int, Event]]) -> tuple[int, Event | Timer] | None:
        due = min(self.timers.items(), key=lambda item: item[1][0], default=None)
        if due is not None and (not queue or due[1][0] <= queue[0][0]):
            del self.timers[due[0]]
            return due[1]
        return queue.pop(0) if queue else None

    def _evaluate(self, batch: list[tuple[int, Event | Timer]]) -> None:
        by_customer: dict[str, list[tuple[int, Event | Timer]]] = {}
        for wall, item in batch:
            by_customer.setdefault(item.customer_id, []).append((wall, item))
        for customer_id, items in by_customer.items():
            raw = self.states.get(customer_id)
            state = CustomerState.decode(raw) if raw is not None else CustomerState(customer_id)
            for wall, item in items:
                if isinstance(item, Timer):
                    outcome = self.engine.on_timer(state, item, wall)
                else:
                    outcome = self.engine.process(state, item, wall)
                self.firings |= {_identity(f) for f in outcome.firings}
                for request in outcome.timers:
                    if isinstance(request, TimerSet):
                        timer = request.timer
                        delay = self.rng.choice([0, 0, 1_000, 60_000, 15 * 60_000])
                        self.timers[(timer.customer_id, timer.rule, timer.key)] = (request.at + delay, timer)
                    else:
                        self.timers.pop((request.customer_id, request.rule, request.key), None)
            self.states[customer_id] = state.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=rule_sets(), events=histories(), seed=st.integers(0, 2**32 - 1))
def test_late_timers_batches_and_arrival_order_within_the_lateness_give_the_in_order_firings(
    texts: list[str], events: list[Event], seed: int
):
    compiled = plan(*texts)
    rng = random.Random(seed)
    got = _Driver(Engine(compiled), rng).run(_arrivals(events, rng))
    assert got == _in_order(compiled, events)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=rule_sets(), events=histories(), seed=st.integers(0, 2**32 - 1))
def test_each_rule_fires_with_the_others_loaded_exactly_as_alone(texts: list[str], events: list[Event], seed: int):
    rules = [rule(text) for text in texts] + SHIPPED_RULES
    shuffled = [e for _, e in _arrivals(events, random.Random(seed))]
    together = _firings(compile_rules(rules), shuffled)
    for one in rules:
        alone = _firings(compile_rules([one]), shuffled)
        assert {f for f in together if f[0] == one.id} == alone
