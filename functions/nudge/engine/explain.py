"""Why a rule did or did not fire for a customer, in words, from the engine's own decisions.

Two questions, both answered by the engine's own code, never by a second interpreter:

- ``explain_customer``: what a customer's state says about each rule (``nudge explain``): its
  pending waits and held sends, its latest decisions with their reasons (the state's decision
  log), and, for a rule with nothing pending, its ``when`` judged condition by condition at the
  customer's latest event (``Node.explain``, whose verdicts are the nodes' own ``evaluate``).
- ``why_not_fired``: the events are replayed with the real engine (``Replayer``, every wait
  decided at the end) and the rule's decisions are read back: never armed, armed but cancelled by
  its ``unless``, outside its ``audience``, held back by its cooldown. ``nudge preview`` uses it to
  flag a sample that would never make the firing it shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..contracts import IDENTIFY, MESSAGE_CHANNELS, Event, key_text
from ..timefmt import iso
from .language.rules import (
    AllCondition,
    AnyCondition,
    Condition,
    EventFilter,
    NotCondition,
    SequenceCondition,
    TrendCondition,
    UnlessAny,
)
from .plan.compiled import CompiledRule, Plan
from .plan.conditions import Context, Explanation
from .replay import Replayer
from .runtime.engine import Engine
from .runtime.eventlog import StoredEvent
from .runtime.state import CustomerState


def why_not_fired(plan: Plan, rule_id: str, events: Iterable[Event]) -> str | None:
    """``None`` when replaying ``events`` fires ``rule_id`` of ``plan``; else the reason it does not."""
    given = list(events)
    replayer = Replayer(plan)
    for event in given:
        replayer.feed(event)
    replayer.finish()
    tally = replayer.stats.rules[rule_id]
    if tally.fired:
        return None
    rule = plan.by_id[rule_id].rule
    if not tally.armed:
        return "its `when` was never met by these events" + _missing(rule.when, given)
    reasons = []
    if tally.cancelled:
        unless = rule.unless.any if isinstance(rule.unless, UnlessAny) else [rule.unless] if rule.unless else []
        names = ", ".join(sorted({f.event for f in unless}))
        reasons.append(f"cancelled {tally.cancelled} time(s) by its `unless` ({names}) within the wait")
    if tally.suppressed_audience:
        reasons.append("the customer is outside its `audience` when it would fire")
    if tally.suppressed_cooldown:
        reasons.append("held back by its cooldown")
    if tally.superseded:
        reasons.append(f"{tally.superseded} arming(s) superseded by a later one (debounce)")
    return f"it was armed {tally.armed} time(s) but " + ("; ".join(reasons) or "never fired")


def _filters(condition: Condition) -> Iterator[str]:
    """The event names a ``when`` needs to see (not those under ``not``)."""
    if isinstance(condition, EventFilter):
        yield condition.event
    elif isinstance(condition, SequenceCondition):
        yield from (step.event for step in condition.sequence)
    elif isinstance(condition, AllCondition):
        for part in condition.all:
            yield from _filters(part)
    elif isinstance(condition, TrendCondition):
        yield condition.trend.event
    elif isinstance(condition, (AnyCondition, NotCondition)):
        return  # any one part may do, or a part must be absent: nothing certain to name


def _missing(when: Condition, events: list[Event]) -> str:
    seen = Counter(event.name for event in events if event.name != IDENTIFY)
    needed = list(dict.fromkeys(_filters(when)))
    missing = [name for name in needed if name not in seen]
    if not seen:
        return ": there are no events"
    if not needed:
        return ""
    if not missing:
        return f" (it needs {' and '.join(needed)} event(s) with the `where`, order and timing it asks for)"
    has = ", ".join(f"{name} x{count}" for name, count in seen.items())
    return f": it needs {' and '.join(missing)} event(s), and there are none (the events: {has})"


KEYS_EXPLAINED = 5
"""How many of a keyed rule's keys (the newest) an explanation judges the ``when`` of."""


@dataclass(frozen=True)
class WhenVerdict:
    """A rule's ``when`` judged at one instant, for one key: the tree, and whether it would arm.

    ``arms``: the ``when`` holds and the arriving event is part of the match, which is exactly when
    the engine arms a rule on an event that came in order.
    """

    key: str | None
    at: int
    arriving: str | None
    """The event judged as the arriving one (its name and time), or ``None``: there is none."""
    arriving_at: int | None
    tree: Explanation
    arms: bool

    def summary(self) -> str:
        """The verdict in a phrase: met and armed, met without the arriving event, or not met."""
        if self.arriving_at is not None and self.arriving_at != self.at:
            # Judged at another instant than its arriving event's (``--at``): a what-if, not a decision.
            return f"{'met' if self.tree.holds else 'not met'} as of {iso(self.at)} (the newest event: {self.arriving})"
        if self.arms:
            return f"met, and {self.arriving} is part of the match: the engine arms the rule on it"
        if self.tree.holds:
            return f"met, but {self.arriving or 'no arriving event'} is not part of the match: no new arming"
        return "not met: the rule does not arm"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": iso(self.at),
            "arriving": self.arriving,
            "arms": self.arms,
            "summary": self.summary(),
            **self.tree.as_dict(),
        }


@dataclass(frozen=True)
class RuleExplanation:
    rule: str
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Waits armed and not yet decided: key, armed_at, due, decided_at (due + the allowed lateness)."""
    held: list[dict[str, Any]] = field(default_factory=list)
    """Firings (or escalation steps) waiting for their send time."""
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """The rule's entries in the state's decision log, oldest first."""
    when: list[WhenVerdict] = field(default_factory=list)
    """For a rule with nothing pending: its ``when`` at the customer's latest event, per key."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "pending": self.pending,
            "held": self.held,
            "decisions": self.decisions,
            "when": [verdict.as_dict() for verdict in self.when],
        }


@dataclass(frozen=True)
class CustomerExplanation:
    customer_id: str
    at: int | None
    """The instant the ``when`` trees are judged at: the customer's latest stored event."""
    consent: dict[str, dict[str, Any]]
    """Per message channel, whether a send would be allowed as of ``at``, and why."""
    rules: list[RuleExplanation]
    erased_at: int | None = None
    log_size: int = 0
    """How many decisions the policy keeps per customer (0: none, so ``decisions`` are empty)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "at": iso(self.at) if self.at is not None else None,
            "erased_at": iso(self.erased_at) if self.erased_at is not None else None,
            "consent": self.consent,
            "decision_log": self.log_size,
            "rules": [rule.as_dict() for rule in self.rules],
        }

    def lines(self) -> list[str]:
        """The printed tree ``nudge explain`` shows."""
        when = iso(self.at) if self.at is not None else "no stored events"
        out = [f"customer {self.customer_id} (judged at {when})"]
        if self.erased_at is not None:
            out.append(f"  erased at {iso(self.erased_at)}: only what came after is held")
        for channel, said in self.consent.items():
            out.append(f"  {channel}: {'allowed' if said['allowed'] else 'not allowed'}: {said['why']}")
        for rule in self.rules:
            out.append(f"rule {rule.rule}")
            for wait in rule.pending:
                out.append(f"  pending{_keyed(wait['key'])}: armed {wait['armed_at']}, due {wait['due']}")
            for item in rule.held:
                out.append(f"  held{_keyed(item['key'])}: step {item['step']}, send time {item['send_at']}")
            if rule.decisions:
                out.append("  decisions (oldest first):")
                for entry in rule.decisions:
                    reason = f": {entry['reason']}" if entry["reason"] else ""
                    out.append(f"    {entry['at']} {entry['kind']}{_keyed(entry['key'])}{reason}")
            elif not self.log_size:
                out.append("  decisions: none kept (policy decision_log: 0)")
            for verdict in rule.when:
                out.append(f"  when{_keyed(verdict.key)} at {iso(verdict.at)}: {verdict.summary()}")
                out += ["    " + line for line in verdict.tree.lines()]
        return out


def _keyed(key: str | None) -> str:
    return "" if key is None else f" [key {key}]"


def logged_decisions(state: CustomerState, rule_id: str | None = None) -> list[dict[str, Any]]:
    """The state's decision log as data (``at`` in ISO 8601), oldest first; only ``rule_id``'s if given."""
    return [
        {
            "at": iso(entry[0]),
            "rule": entry[1],
            "kind": entry[2],
            "key": entry[3] if len(entry) > 3 else None,
            "reason": entry[4] if len(entry) > 4 else "",
        }
        for entry in state.log
        if rule_id is None or entry[1] == rule_id
    ]


def judge_when(
    engine: Engine, state: CustomerState, rule: CompiledRule, arriving: StoredEvent | None, key: str | None, at: int
) -> WhenVerdict:
    """``rule``'s ``when`` at ``at`` with ``arriving`` as the event that came, as the engine judges it.

    The same context the engine builds (``Engine._evaluate``), the same nodes: ``arms`` is the
    engine's own test, that the ``when`` holds and ``arriving`` is part of its evidence.
    """
    ctx = Context(state.events_of, at, state.traits, arriving, rule.key_path, key)  # one context: its hits are shared
    evidence = rule.when.evaluate(ctx)
    arms = evidence is not None and arriving is not None and any(e is arriving for e in evidence)
    tree = rule.when.explain(ctx)
    shown = f"{arriving.name} at {iso(arriving.ts)}" if arriving is not None else None
    return WhenVerdict(key, at, shown, arriving.ts if arriving is not None else None, tree, arms)


def explain_customer(
    engine: Engine, state: CustomerState, rule_id: str | None = None, at: int | None = None
) -> CustomerExplanation:
    """What ``state`` says about each rule of the engine's plan (or only ``rule_id``).

    The ``when`` of a rule with nothing pending is judged at the customer's latest stored event
    that could arm it, as the engine judged it then (for a keyed rule: at the newest event of each
    of its newest keys). With ``at`` (``nudge explain --at now``) it is judged at that instant
    instead, its windows ending there, with the newest such event before it as the arriving one:
    what the rule would say if that event came now.
    """
    plan = engine.plan
    rules = [plan.by_id[rule_id]] if rule_id is not None else list(plan.rules)
    instant = at
    at = state.now if at is None else at
    lateness = plan.allowed_lateness
    explained: list[RuleExplanation] = []
    for rule in rules:
        pending = [
            {"key": key, "armed_at": iso(wait.arm), "due": iso(wait.due), "decided_at": iso(wait.due + lateness)}
            for (rid, key), rule_state in state.rules.items()
            if rid == rule.id
            for wait in rule_state.waits
        ]
        held = [
            {"key": h.key, "step": h.step, "fired_at": iso(h.fired_at), "send_at": iso(h.send_at)}
            for h in state.held
            if h.rule == rule.id
        ]
        decisions = [{k: v for k, v in logged.items() if k != "rule"} for logged in logged_decisions(state, rule.id)]
        when = [] if pending or held or at is None else _whens(engine, state, rule, at, instant)
        explained.append(RuleExplanation(rule.id, pending, held, decisions, when))
    consent = {}
    if at is not None:
        for channel in MESSAGE_CHANNELS:
            allowed, why, _ = engine.consent(state, channel, at)
            consent[channel] = {"allowed": allowed, "why": why}
    return CustomerExplanation(state.customer_id, at, consent, explained, state.erased_at, plan.decision_log)


def _whens(engine: Engine, state: CustomerState, rule: CompiledRule, at: int, instant: int | None) -> list[WhenVerdict]:
    """The ``when`` at the newest event that could arm the rule (or at ``instant``), per key, newest keys first."""
    names = [name for name, route in engine.plan.routes.items() for item in route.filters if rule in item.triggers]
    candidates = sorted(
        (e for name in dict.fromkeys(names) for e in state.events_of(name) or () if e.ts <= at),
        key=StoredEvent.sort_key,
        reverse=True,
    )
    if rule.key_path is None:
        arriving = candidates[0] if candidates else None
        judged = instant if instant is not None else arriving.ts if arriving else at
        return [judge_when(engine, state, rule, arriving, None, judged)]
    verdicts: list[WhenVerdict] = []
    keys: set[str] = set()
    if not any(key_text(e.props.get(rule.key_path)) is not None for e in candidates):
        says = f"no stored event that could arm it carries its key `{rule.key_path}`: nothing to judge"
        return [WhenVerdict(None, at, None, None, Explanation(False, says), False)]
    for e in candidates:
        key = key_text(e.props.get(rule.key_path))
        if key is None or key in keys:
            continue
        keys.add(key)
        verdicts.append(judge_when(engine, state, rule, e, key, e.ts if instant is None else instant))
        if len(verdicts) == KEYS_EXPLAINED:
            break
    return verdicts
