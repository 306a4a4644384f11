"""Rules compiled once into an evaluation plan indexed by event name.

The plan answers, in a dict lookup and one ``Route.match``, the questions the hot path asks of
every event: may this event arm a rule, cancel a wait, or be needed later? Events whose name no
rule references cost one lookup and nothing else. It also derives what state must be kept: per
event name the properties read and how many of the newest events (cap), and per filter how far
back its events are needed (horizon), so an event is kept only as long as a filter it matches
needs it: a product view is not kept for a week because one rule wants yoga-mat views that long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
from .routing import Filter, Route, pinned_strings
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


@dataclass(eq=False)
class CompiledRule:
    """One rule, ready to run; ``index`` is its position in the plan (firings of one event follow it)."""

    rule: Rule
    index: int
    when: Node
    audience: Node | None
    unless: dict[str, list[Matcher]]
    window: int

    id: str = field(init=False)
    key_path: str | None = field(init=False)
    wait: int | None = field(init=False)
    cooldown: int | None = field(init=False)

    def __post_init__(self) -> None:
        # Copied from the model: read on every evaluation, where a property lookup shows.
        self.id = self.rule.id
        self.key_path = self.rule.key
        self.wait = self.rule.wait
        self.cooldown = self.rule.cooldown


@dataclass
class _Use:
    """A distinct filter while the rules are compiled: the rules that use it refer to it by index."""

    filter: Filter
    pinned: tuple[str, tuple[str, ...]] | None
    triggers: set[int] = field(default_factory=set)
    cancels: set[int] = field(default_factory=set)


@dataclass
class _Uses:
    """Every distinct filter of the rule set, and per event name the properties read and the cap.

    Filters are shared: ``purchase`` as the ``unless`` of three rules and the ``trend`` of a
    fourth is one filter, matched once per event, kept for the longest of its four needs.
    """

    filters: dict[tuple[str, str], _Use] = field(default_factory=dict)
    paths: dict[str, set[str]] = field(default_factory=dict)
    cap: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        name: str,
        where: dict[str, dict[str, Any]],
        horizon: int,
        *,
        cap: int = DEFAULT_HISTORY,
        extra: Iterable[str] = (),
        trigger_of: int | None = None,
        cancels: int | None = None,
    ) -> Matcher:
        identity = (name, repr(sorted(where.items())))
        use = self.filters.get(identity)
        if use is None:
            matcher = Matcher(name, [(path, compile_test(test)) for path, test in where.items()])
            use = self.filters[identity] = _Use(Filter(matcher), pinned_strings(where))
        use.filter.horizon = max(use.filter.horizon, horizon)
        if trigger_of is not None:
            use.triggers.add(trigger_of)
        if cancels is not None:
            use.cancels.add(cancels)
        self.paths.setdefault(name, set()).update(where, extra)
        self.cap[name] = max(self.cap.get(name, DEFAULT_HISTORY), cap)
        return use.filter.matcher


class _RuleCompiler:
    def __init__(self, rule: Rule, index: int, uses: _Uses) -> None:
        self.rule = rule
        self.index = index
        self.uses = uses
        self.extra = [p for p in (rule.key, *rule.action.properties) if p]

    def _use(self, name: str, where: dict[str, dict[str, Any]], horizon: int, arms: bool, cap: int = 1) -> Matcher:
        trigger_of = self.index if arms else None
        return self.uses.add(name, where, horizon, cap=cap, extra=self.extra, trigger_of=trigger_of)

    def node(self, cond: ConditionModel, arms: bool = True) -> Node:
        """The compiled condition; ``arms`` says whether an event it matches may arm the rule.

        Events under a ``not`` or in the audience never arm: only ``when``'s positive parts do.
        """
        if isinstance(cond, EventFilter):
            count = compile_count(cond.count) if cond.count is not None else None
            cap = count_capacity(cond.count) if cond.count is not None else 1
            matcher = self._use(cond.event, cond.where, cond.within or 0, arms, cap)
            return FilterNode(matcher, cond.within, count)
        if isinstance(cond, SequenceCondition):
            within = cond.within or 0
            steps = [self._use(step.event, step.where, within, arms) for step in cond.sequence]
            return SequenceNode(steps, within)
        if isinstance(cond, TrendCondition):
            spec = cond.trend
            matcher = self._use(spec.event, spec.where, spec.period * spec.periods, arms)
            return TrendNode(matcher, spec.period, spec.periods, spec.direction == "increasing")
        if isinstance(cond, AttributeCondition):
            return AttributeNode(cond.attribute, compile_test(cond.test))
        if isinstance(cond, NotCondition):
            return NotNode(self.node(cond.not_, arms=False))
        if isinstance(cond, AllCondition):
            return AllNode([self.node(child, arms) for child in cond.all])
        return AnyNode([self.node(child, arms) for child in cond.any])


class Plan:
    """The compiled form of a rule set; build it once per process (``compile_rules``).

    ``routes`` maps each event name some rule reads to its ``Route``: the one lookup the hot path
    makes per event, which is all an event no rule references costs.
    """

    def __init__(self, rules: list[CompiledRule], uses: _Uses) -> None:
        self.rules = tuple(rules)
        self.by_id = {rule.id: rule for rule in rules}
        digest = hashlib.sha256()
        for compiled in rules:
            digest.update(repr(compiled.rule).encode())
        self.fingerprint = digest.hexdigest()[:16]
        """Identifies the rule set: a state's prune memo is only trusted by the plan that made it."""
        grouped: dict[str, list[tuple[Filter, tuple[str, tuple[str, ...]] | None]]] = {}
        for use in uses.filters.values():
            item = use.filter
            item.triggers = tuple(rules[index] for index in sorted(use.triggers))
            item.cancels = tuple(rules[index] for index in sorted(use.cancels))
            grouped.setdefault(item.matcher.name, []).append((item, use.pinned))
        self.routes = {
            name: Route(name, filters, uses.paths[name], uses.cap[name]) for name, filters in grouped.items()
        }

    def referenced_events(self) -> list[str]:
        """Every event name some rule reads: what the event source mapping lets through."""
        return sorted(self.routes)

    def longest_horizon(self) -> int:
        """The longest time (ms) any event is kept: the base of the state's time-to-live."""
        return max((route.horizon for route in self.routes.values()), default=0)


def compile_rules(rules: Iterable[Rule]) -> Plan:
    """Compile enabled rules, in the order given, into one ``Plan``."""
    uses = _Uses()
    compiled: list[CompiledRule] = []
    for rule in rules:
        if not rule.enabled:
            continue
        index = len(compiled)
        compiler = _RuleCompiler(rule, index, uses)
        when = compiler.node(rule.when)
        window = when.window()
        audience = compiler.node(rule.audience, arms=False) if rule.audience is not None else None
        unless: dict[str, list[Matcher]] = {}
        for item in unless_filters(rule):
            # Unless events must be remembered for as long as an arming may still look at them:
            # from the arm time (at most `window` before now) to the end of the wait.
            matcher = uses.add(
                item.event,
                item.where,
                max(window, rule.wait or 0),
                extra=[rule.key] if rule.key else [],
                cancels=index,
            )
            unless.setdefault(matcher.name, []).append(matcher)
        compiled.append(
            CompiledRule(rule=rule, index=index, when=when, audience=audience, unless=unless, window=window)
        )
    return Plan(compiled, uses)
