"""The one builder of a ``Plan``: rules in, an immutable plan indexed by event name out.

The plan answers, in a dict lookup and one ``Route.match``, the questions the hot path asks of
every event: may this event arm a rule, cancel a wait, or be needed later? Events whose name no
rule references cost one lookup and nothing else. The builder also derives what state must be
kept: per event name the properties read, and per filter how far back its events are needed
(horizon) and how many of its newest matches (cap), so an event is kept only as long as a filter it
matches needs it: a product view is not kept for a week because one rule wants yoga-mat views
that long.

Everything is collected in the builder's own mutable records first, and the plan's objects are
made once, at the end, when every use of every filter is known.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...contracts import MESSAGE_CHANNELS, MESSAGE_CLICKED, MESSAGE_OPENED, MESSAGE_SENT
from ..language.durations import format_duration
from ..language.policy import DEFAULT_POLICY, Policy
from ..language.rules import (
    Action,
    AllCondition,
    AttributeCondition,
    ConditionModel,
    EventFilter,
    NotCondition,
    Rule,
    SequenceCondition,
    TrendCondition,
    unless_events,
)
from .compiled import Cap, CompiledRule, CompiledStep, Filter, Plan, QuietPlan, Route
from .conditions import AllNode, AnyNode, AttributeNode, EventNode, Matcher, Node, NotNode, SequenceNode, TrendNode
from .operators import compile_count, compile_test, count_capacity, describe_count, describe_test

DAY = 86_400_000

MESSAGE_REFERENCES = ("firing_id", "rule", "channel", "step")
"""What a message event says about the message it reports: kept where an escalation step reads it."""

_ENGAGED = [EventFilter(event=MESSAGE_OPENED), EventFilter(event=MESSAGE_CLICKED)]
"""A step's default ``unless``: the customer opened or clicked the previous step."""

RETENTION_VERSION = 1
"""Raised whenever what the runtime forgets, or when, changes for the same rules: part of every
plan's ``fingerprint``, so no state keeps a prune memo reckoned by older code."""

DEFAULT_HISTORY = 50
"""How many of the newest events one filter keeps, and one condition sees (raised by larger counts).

Per filter, not per name: a rule that stores every product view cannot push out the yoga-mat
views another rule is waiting on, so adding or removing a rule never changes another's firings."""


Pinned = tuple[str, tuple[str, ...]]


def pinned_strings(where: Mapping[str, Mapping[str, Any]]) -> Pinned | None:
    """The first property ``where`` requires to be one of some strings, with those strings.

    ``eq`` with a string operand and ``in`` with only strings qualify: the test can only hold for
    an event whose value is one of them, whatever the other operators of the test say.
    """
    for path, test in where.items():
        operand = test.get("eq")
        if type(operand) is str:
            return path, (operand,)
        options = test.get("in")
        if isinstance(options, list) and options and all(type(option) is str for option in options):
            return path, tuple(dict.fromkeys(options))  # each once: a filter is filed once per value
    return None


@dataclass
class _Use:
    """A distinct filter while the rules are compiled: the rules that use it, by index."""

    matcher: Matcher
    pinned: Pinned | None
    horizon: int = 0
    cap: int = DEFAULT_HISTORY
    triggers: set[int] = field(default_factory=set)
    cancels: set[int] = field(default_factory=set)


@dataclass
class _Uses:
    """Every distinct filter of the rule set, and per event name the properties read.

    Filters are shared: ``purchase`` as the ``unless`` of three rules and the ``trend`` of a
    fourth is one filter, matched once per event, kept for the longest of its four needs. Two
    filters are the same when their event and their (normalized) ``where``, as canonical JSON, are equal.
    """

    filters: dict[tuple[str, str], _Use] = field(default_factory=dict)
    paths: dict[str, set[str]] = field(default_factory=dict)

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
        identity = (name, orjson.dumps(where, option=orjson.OPT_SORT_KEYS).decode())
        use = self.filters.get(identity)
        if use is None:
            label = f"`{name}`" + (
                " where " + ", ".join(f"{path} {describe_test(test)}" for path, test in where.items()) if where else ""
            )
            matcher = Matcher(name, [(path, compile_test(test)) for path, test in where.items()], label)
            use = self.filters[identity] = _Use(matcher, pinned_strings(where))
        use.horizon = max(use.horizon, horizon)
        use.cap = max(use.cap, cap)
        if trigger_of is not None:
            use.triggers.add(trigger_of)
        if cancels is not None:
            use.cancels.add(cancels)
        self.paths.setdefault(name, set()).update(where, extra)
        return use.matcher

    def routes(self, rules: list[CompiledRule], lateness: int) -> dict[str, Route]:
        grouped: dict[str, list[tuple[Filter, Pinned | None]]] = {}
        for use in self.filters.values():
            item = Filter(
                use.matcher,
                use.horizon + lateness,
                use.cap,
                triggers=tuple(rules[index] for index in sorted(use.triggers)),
                cancels=tuple(rules[index] for index in sorted(use.cancels)),
            )
            grouped.setdefault(use.matcher.name, []).append((item, use.pinned))
        return {name: Route(name, filters, self.paths[name]) for name, filters in grouped.items()}


class _RuleCompiler:
    def __init__(self, rule: Rule, index: int, uses: _Uses) -> None:
        self.rule = rule
        self.index = index
        self.uses = uses
        self.extra = [p for p in (rule.key, *rule.action.properties) if p]

    def _use(
        self, name: str, where: dict[str, dict[str, Any]], horizon: int, arms: bool, cap: int = DEFAULT_HISTORY
    ) -> Matcher:
        # The engine records message_sent as it sends: it is read, and never starts an evaluation.
        trigger_of = self.index if arms and name != MESSAGE_SENT else None
        return self.uses.add(name, where, horizon, cap=cap, extra=self.extra, trigger_of=trigger_of)

    def node(self, cond: ConditionModel, arms: bool = True) -> Node:
        """The compiled condition; ``arms`` says whether an event it matches may arm the rule.

        Events under a ``not`` or in the audience never arm: only ``when``'s positive parts do.
        """
        if isinstance(cond, EventFilter):
            count = compile_count(cond.count) if cond.count is not None else None
            cap = max(DEFAULT_HISTORY, count_capacity(cond.count)) if cond.count is not None else DEFAULT_HISTORY
            matcher = self._use(cond.event, cond.where, cond.within or 0, arms, cap)
            return EventNode(matcher, cond.within, count, cap, describe_count(cond.count) if cond.count else "")
        if isinstance(cond, SequenceCondition):
            within = cond.within or 0
            steps = [self._use(step.event, step.where, within, arms) for step in cond.sequence]
            return SequenceNode(steps, within, DEFAULT_HISTORY)
        if isinstance(cond, TrendCondition):
            spec = cond.trend
            matcher = self._use(spec.event, spec.where, spec.period * spec.periods, arms)
            return TrendNode(matcher, spec.period, spec.periods, spec.direction == "increasing", DEFAULT_HISTORY)
        if isinstance(cond, AttributeCondition):
            return AttributeNode(cond.attribute, compile_test(cond.test), describe_test(cond.test))
        if isinstance(cond, NotCondition):
            return NotNode(self.node(cond.not_, arms=False))
        if isinstance(cond, AllCondition):
            return AllNode([self.node(child, arms) for child in cond.all])
        return AnyNode([self.node(child, arms) for child in cond.any])


def compile_rules(rules: Iterable[Rule], policy: Policy = DEFAULT_POLICY) -> Plan:
    """Compile enabled rules, in the order given, into one ``Plan`` under ``policy``.

    The policy's allowed lateness is how long every filter keeps its events beyond its own window
    (so a lone ``when: {event: X}`` keeps X that long, for a straggler) and how long after its due
    time a wait is decided.
    """
    allowed_lateness = policy.allowed_lateness
    uses = _Uses()
    compiled: list[CompiledRule] = []
    source = hashlib.blake2b(policy.model_dump_json(warnings=False).encode(), digest_size=4)
    source.update(str(RETENTION_VERSION).encode())
    for rule in rules:
        if not rule.enabled:
            continue
        source.update(rule.model_dump_json(warnings=False).encode())  # every field, as the files say it
        index = len(compiled)
        compiler = _RuleCompiler(rule, index, uses)
        when = compiler.node(rule.when)
        window = when.window()
        audience = compiler.node(rule.audience, arms=False) if rule.audience is not None else None
        # Quiet hours may hold each step up to a day, which the next step's time counts from.
        slack = DAY if policy.quiet_hours is not None else 0
        chain = sum(step.after + slack for step in rule.escalate)
        unless: dict[str, list[Matcher]] = {}
        for item in unless_events(rule):
            # Unless events must be remembered for as long as an arming may still look at them:
            # from the arm time (at most `window` before now) to the end of the wait, and of the
            # escalation after it (a purchase ends the whole chain).
            matcher = uses.add(
                item.event,
                item.where,
                max(window, (rule.wait or 0) + chain),
                extra=[rule.key] if rule.key else [],
                cancels=index,
            )
            unless.setdefault(matcher.name, []).append(matcher)
        steps = [_step(rule, 0, rule.action, 0, {}, policy)]
        for number, step in enumerate(rule.escalate, start=1):
            calls_off: dict[str, list[Matcher]] = {}
            for item in unless_events(step) or _ENGAGED:
                extra = [*([rule.key] if rule.key else []), *MESSAGE_REFERENCES]
                matcher = uses.add(item.event, item.where, step.after + slack, extra=extra)
                calls_off.setdefault(matcher.name, []).append(matcher)
            steps.append(_step(rule, number, step, step.after, calls_off, policy))
        compiled.append(
            CompiledRule(
                rule=rule,
                index=index,
                when=when,
                audience=audience,
                unless={name: tuple(matchers) for name, matchers in unless.items()},
                window=window,
                id=rule.id,
                key_path=rule.key,
                wait=rule.wait,
                cooldown=rule.cooldown,
                priority=rule.priority,
                caps=steps[0].caps,
                quiet=steps[0].quiet,
                steps=tuple(steps),
                marketing=rule.category == "marketing",
            )
        )
    hours = policy.quiet_hours
    quiet_plan = None
    if hours is not None:
        start, end = hours.minutes()
        quiet_plan = QuietPlan(start, end, hours.default_timezone, f"{hours.start}-{hours.end}")
    return Plan(
        compiled,
        uses.routes(compiled, allowed_lateness),
        allowed_lateness,
        policy.dedupe_window,
        policy.max_future_skew,
        {channel: mode == "opt_out" for channel, mode in policy.consent.model_dump().items()},
        quiet_plan,
        {item.channel: (item.after_unengaged, item.rest) for item in policy.disengaged},
        policy.decision_log,
        int.from_bytes(source.digest(), "big"),
    )


def _step(
    rule: Rule, number: int, action: Action, after: int, calls_off: dict[str, list[Matcher]], policy: Policy
) -> CompiledStep:
    """One message of ``rule``: its caps and quiet hours follow its own channel.

    The rule's own ``frequency_cap`` counts its armings' first messages, so it guards step 0 only:
    an escalation is one conversation, whose later steps only the channel caps limit.
    """
    caps: list[Cap] = []
    channel = action.channel
    if rule.category == "marketing":
        if channel in MESSAGE_CHANNELS:
            caps += [
                Cap(cap.channel, cap.max, cap.per, f"{cap.channel}: {cap.max} per {format_duration(cap.per)}")
                for cap in policy.frequency_caps
                if cap.channel in ("any", channel)
            ]
        if rule.frequency_cap is not None and number == 0:
            own = rule.frequency_cap
            caps.append(Cap("rule", own.max, own.per, f"rule: {own.max} per {format_duration(own.per)}"))
    quiet = (
        policy.quiet_hours is not None
        and rule.category == "marketing"
        and rule.quiet_hours
        and channel in policy.quiet_hours.channels
    )
    return CompiledStep(
        index=number,
        channel=channel,
        template=action.template,
        destination=action.destination,
        after=after,
        caps=tuple(caps),
        quiet=quiet,
        unless={name: tuple(matchers) for name, matchers in calls_off.items()},
    )
