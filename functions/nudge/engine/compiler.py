"""Rules compiled once into an evaluation plan indexed by event name.

The plan answers, in a dict lookup, the questions the hot path asks of every event: may this
event arm a rule, cancel a wait, or be needed later? Events whose name no rule references cost
one lookup and nothing else. It also derives what state must be kept: per event name, the
properties read, how far back they are needed (horizon) and how many of the newest (cap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .conditions import (
    AllNode,
    AnyNode,
    AttributeNode,
    FilterNode,
    Matcher,
    Node,
    NotNode,
    SequenceNode,
    TrendNode,
)
from .operators import compile_count, compile_test, count_capacity
from .rules import (
    AllCondition,
    AttributeCondition,
    ConditionModel,
    EventFilter,
    NotCondition,
    Rule,
    SequenceCondition,
    TrendCondition,
    unless_filters,
)

DEFAULT_HISTORY = 50
"""How many of the newest events of one name a customer's state keeps (raised by larger counts)."""

MAX_MATCHED_EVENTS = 50
"""How many matched events a firing carries (the newest), which bounds a pending wait's size."""


@dataclass(frozen=True)
class Retention:
    """What is kept of events with one name: properties read, how long, and how many."""

    paths: tuple[str, ...]
    horizon: int
    cap: int


@dataclass(eq=False)
class CompiledRule:
    """One rule, ready to run; ``index`` is its position in the plan (firings of one event follow it)."""

    rule: Rule
    index: int
    when: Node
    audience: Node | None
    triggers: dict[str, list[Matcher]]
    unless: dict[str, list[Matcher]]
    window: int

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def key_path(self) -> str | None:
        return self.rule.key

    @property
    def wait(self) -> int | None:
        return self.rule.wait

    @property
    def cooldown(self) -> int | None:
        return self.rule.cooldown


@dataclass
class _Uses:
    """Accumulates, per event name, every matcher and the needs that decide retention."""

    matchers: dict[str, list[Matcher]] = field(default_factory=dict)
    paths: dict[str, set[str]] = field(default_factory=dict)
    horizon: dict[str, int] = field(default_factory=dict)
    cap: dict[str, int] = field(default_factory=dict)

    def add(self, matcher: Matcher, horizon: int, cap: int = DEFAULT_HISTORY, extra: Iterable[str] = ()) -> None:
        name = matcher.name
        self.matchers.setdefault(name, []).append(matcher)
        self.paths.setdefault(name, set()).update(matcher.paths, extra)
        self.horizon[name] = max(self.horizon.get(name, 0), horizon)
        self.cap[name] = max(self.cap.get(name, DEFAULT_HISTORY), cap)


def _matcher(name: str, where: dict[str, dict[str, object]]) -> Matcher:
    return Matcher(name, [(path, compile_test(test)) for path, test in where.items()])


class _RuleCompiler:
    def __init__(self, rule: Rule, uses: _Uses) -> None:
        self.rule = rule
        self.uses = uses
        self.triggers: dict[str, list[Matcher]] = {}
        self.extra = [p for p in (rule.key, *rule.action.properties) if p]

    def node(self, cond: ConditionModel, negated: bool = False) -> Node:
        if isinstance(cond, EventFilter):
            matcher = _matcher(cond.event, cond.where)
            count = compile_count(cond.count) if cond.count is not None else None
            cap = count_capacity(cond.count) if cond.count is not None else 1
            self.uses.add(matcher, cond.within or 0, cap, self.extra)
            if not negated:
                self.triggers.setdefault(matcher.name, []).append(matcher)
            return FilterNode(matcher, cond.within, count)
        if isinstance(cond, SequenceCondition):
            within = cond.within or 0
            steps = [_matcher(step.event, step.where) for step in cond.sequence]
            for step in steps:
                self.uses.add(step, within, extra=self.extra)
                if not negated:
                    self.triggers.setdefault(step.name, []).append(step)
            return SequenceNode(steps, within)
        if isinstance(cond, TrendCondition):
            spec = cond.trend
            matcher = _matcher(spec.event, spec.where)
            self.uses.add(matcher, spec.period * spec.periods, extra=self.extra)
            if not negated:
                self.triggers.setdefault(matcher.name, []).append(matcher)
            return TrendNode(matcher, spec.period, spec.periods, spec.direction == "increasing")
        if isinstance(cond, AttributeCondition):
            return AttributeNode(cond.attribute, compile_test(cond.test))
        if isinstance(cond, NotCondition):
            return NotNode(self.node(cond.not_, not negated))
        if isinstance(cond, AllCondition):
            return AllNode([self.node(child, negated) for child in cond.all])
        return AnyNode([self.node(child, negated) for child in cond.any])


class Plan:
    """The compiled form of a rule set; build it once per process (``compile_rules``)."""

    def __init__(self, rules: list[CompiledRule], uses: _Uses) -> None:
        self.rules = tuple(rules)
        self.by_id = {rule.id: rule for rule in rules}
        self.matchers = {name: tuple(items) for name, items in uses.matchers.items()}
        self.retention = {
            name: Retention(tuple(sorted(uses.paths[name])), uses.horizon[name], uses.cap[name])
            for name in uses.matchers
        }
        triggers: dict[str, list[tuple[CompiledRule, tuple[Matcher, ...]]]] = {}
        unless: dict[str, list[tuple[CompiledRule, tuple[Matcher, ...]]]] = {}
        for rule in rules:
            for name, matchers in rule.triggers.items():
                triggers.setdefault(name, []).append((rule, tuple(matchers)))
            for name, matchers in rule.unless.items():
                unless.setdefault(name, []).append((rule, tuple(matchers)))
        self.triggers = triggers
        self.unless = unless

    def referenced_events(self) -> list[str]:
        """Every event name some rule reads: what the event source mapping lets through."""
        return sorted(self.retention)

    def longest_horizon(self) -> int:
        """The longest time (ms) any event is kept: the base of the state's time-to-live."""
        return max((r.horizon for r in self.retention.values()), default=0)


def compile_rules(rules: Iterable[Rule]) -> Plan:
    """Compile enabled rules, in the order given, into one ``Plan``."""
    uses = _Uses()
    compiled: list[CompiledRule] = []
    for rule in rules:
        if not rule.enabled:
            continue
        compiler = _RuleCompiler(rule, uses)
        when = compiler.node(rule.when)
        window = when.window()
        audience = compiler.node(rule.audience) if rule.audience is not None else None
        unless: dict[str, list[Matcher]] = {}
        for item in unless_filters(rule):
            matcher = _matcher(item.event, item.where)
            # Unless events must be remembered for as long as an arming may still look at them:
            # from the arm time (at most `window` before now) to the end of the wait.
            uses.add(matcher, max(window, rule.wait or 0), extra=[rule.key] if rule.key else [])
            unless.setdefault(matcher.name, []).append(matcher)
        compiled.append(
            CompiledRule(
                rule=rule,
                index=len(compiled),
                when=when,
                audience=audience,
                triggers=compiler.triggers,
                unless=unless,
                window=window,
            )
        )
    return Plan(compiled, uses)
