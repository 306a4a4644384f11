"""The per-customer evaluation engine: events and timers in, firings and timer requests out.

The engine is pure: it changes the ``CustomerState`` it is handed and returns what should happen
(``Outcome``); callers do the I/O. Replay, the Lambda evaluator, the local stack and the
benchmark all drive this one class.

Timeline of the cart example (``wait: 1h``, ``unless: purchase``)::

    10:00 add_to_cart      stored
    10:05 checkout_viewed  sequence complete -> arms, T = 10:05; TimerSet(due 11:05)
    10:40 add_to_cart      stored (no new complete sequence ends with it)
    10:50 checkout_viewed  arms again, T = 10:50 > 10:05 -> debounce: TimerSet(due 11:50)
    11:50 timer            no purchase in [10:50, 11:50] -> Firing(fired_at 11:50)
"""

from __future__ import annotations

from typing import Any

from ...contracts import IDENTIFY, Event, Firing, MatchedEvent, Timer, key_text
from ..plan.compiled import CompiledRule, Filter, Plan
from ..plan.conditions import Context
from .eventlog import StoredEvent
from .outcome import Decision, DecisionKind, Outcome, TimerCancel, TimerSet, firing_id
from .seen import digest
from .state import CustomerState, Pending, RuleState

DEDUPE_WINDOW = 24 * 3_600_000
"""Default time (ms) an event id is remembered after its timestamp."""

MAX_MATCHED_EVENTS = 50
"""How many matched events a firing carries (the newest), which bounds a pending wait's size."""

Reading = tuple[dict[str, Any], list[Filter]]
"""What the plan makes of an event: its projection (the properties rules read) and the filters it matches."""

_PROFILE_ONLY: Reading = ({}, [])
"""The reading of an ``identify`` no filter matches: its traits change the profile, nothing else."""


def _unflatten(props: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in props.items():
        target = nested
        *parents, leaf = path.split(".")
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target.setdefault(leaf, value)
    return nested


def _tiebreak(value: Any) -> str:
    return repr(value)


def _released_at(rule: CompiledRule, rule_state: RuleState) -> int | None:
    """The first ``now`` at which an idle (rule, key) state is of no more use (None: already).

    ``last_arm`` guards against re-arming on events still inside the rule's window;
    ``last_fired`` is needed while a cooldown could still suppress a future firing.
    """
    last_arm, last_fired, cooldown = rule_state.last_arm, rule_state.last_fired, rule.cooldown
    released = None if last_arm is None else last_arm + rule.window + 1
    if cooldown is not None and last_fired is not None:
        until = last_fired + cooldown + rule.window
        released = until if released is None or until > released else released
    return released


class Engine:
    """Runs a compiled ``Plan`` over one customer's state at a time.

    ``wall`` is the caller's clock (wall clock in production, the virtual clock in replay); it
    only decides whether a wait is already over when it is armed. Conditions use event time.
    """

    def __init__(self, plan: Plan, dedupe_window: int = DEDUPE_WINDOW) -> None:
        self.plan = plan
        self.dedupe_window = dedupe_window
        """How long (ms) after its timestamp an event id is remembered, so that a re-sent copy is a no-op."""

    def retention(self) -> int:
        """The longest time (ms) a state holds anything after its last event: the base of its TTL."""
        return max(self.plan.longest_horizon(), self.dedupe_window)

    # -- events ---------------------------------------------------------------------------------

    def read(self, event: Event) -> Reading | None:
        """What the plan makes of ``event``, or ``None`` when it can change no state (the common case).

        An ``identify`` with traits always matters (the profile); any other event matters when a
        filter matches it. A caller that asks this of a whole batch first (the evaluator, to skip
        all I/O for the rest) hands each answer back to ``process``, so the event is read once.
        """
        route = self.plan.routes.get(event.name)
        if route is not None and route.may_match(event.properties):
            props = route.project(event.properties)
            filters = route.match(props)
            if filters:
                return props, filters
        if event.name == IDENTIFY and event.traits:
            return _PROFILE_ONLY
        return None

    def carried(self, event: Event, rule_id: str) -> tuple[MatchedEvent, str | None] | None:
        """How a firing of ``rule_id`` would carry ``event``, and the key it would read from it.

        The properties are those the plan keeps of the event, nested again as in every firing;
        ``None`` when no filter of the plan matches the event. ``nudge preview`` shows firings
        made from sample events with this, so they are exactly what the engine would make.
        """
        reading = self.read(event)
        if reading is None or not reading[1]:
            return None
        props = reading[0]
        stored = StoredEvent(event.event_id, event.name, event.ts, props)
        has_key, key = self._key(self.plan.by_id[rule_id], stored)
        return MatchedEvent(event.name, event.event_id, event.ts, _unflatten(props)), key if has_key else None

    def needs(self, event: Event) -> bool:
        """Whether ``event`` can change any customer's state: callers skip all I/O for the rest."""
        return self.read(event) is not None

    def process(self, state: CustomerState, event: Event, wall: int, reading: Reading | None = None) -> Outcome:
        """Apply one event to its customer's state at the caller's clock ``wall``.

        ``reading`` is what ``read(event)`` returned, when the caller already asked.
        """
        outcome = Outcome()
        if reading is None:
            reading = self.read(event)
            if reading is None:
                return outcome
        seen_as = digest(event.event_id)
        if seen_as in state.seen:
            return outcome  # a duplicate: the first copy decided everything, whatever this one says
        outcome.late = event.ts < wall - self.plan.allowed_lateness
        if event.name == IDENTIFY and event.traits:
            self._apply_traits(state, event)
            self._remember(state, seen_as, event.ts)
            # An identify is never stored, so it never prunes: its own time sweeps the id memory, or
            # a customer who only ever identifies would remember every id for good.
            state.seen.prune(max(event.ts, state.now or event.ts), self.dedupe_window)
            outcome.changed = True
        stored = self._accept(state, event, reading) if reading[1] else None
        if stored is None:
            return outcome
        self._remember(state, seen_as, event.ts)
        filters = reading[1]
        outcome.accepted = outcome.changed = True
        cancels, triggers = self.plan.routes[event.name].uses(filters)
        for rule in cancels:
            self._cancel_wait(rule, state, stored, outcome)
        contexts: dict[str | None, Context] = {}  # by key path: shared by the rules this event may arm
        for rule in triggers:
            self._evaluate(rule, state, stored, wall, outcome, contexts)
        if outcome.decisions:
            state.prune_due = None  # every change to a rule's state comes with a decision
        self.prune(state)
        return outcome

    def _remember(self, state: CustomerState, seen_as: str, ts: int) -> None:
        """An event's id, for the dedupe window; the prune memo learns when it is due to be forgotten."""
        due = state.seen.add(seen_as, ts, self.dedupe_window)
        memo = state.prune_due
        if memo is not None and due < memo[1]:
            state.prune_due = (memo[0], due)

    def _apply_traits(self, state: CustomerState, event: Event) -> None:
        """Per-trait last-writer-wins by event time, so a late identify never undoes a newer one."""
        for name, value in event.traits.items():
            current = state.profile.get(name)
            if current is not None:
                if event.ts < current[1]:
                    continue
                if event.ts == current[1] and _tiebreak(value) <= _tiebreak(current[0]):
                    continue
            state.profile[name] = [value, event.ts]

    def _accept(self, state: CustomerState, event: Event, reading: Reading) -> StoredEvent | None:
        """Store the event unless it is stored already or the retention rule would forget it at once.

        An id stays in ``state.seen`` for the dedupe window, and the event itself for its horizon:
        a copy is recognized while either holds, whichever is longer.
        """
        if state.events.contains(event.name, event.event_id):
            return None
        props, filters = reading
        now = event.ts if state.now is None else max(state.now, event.ts)
        stored = StoredEvent(event.event_id, event.name, event.ts, props)
        route = self.plan.routes[event.name]
        if not state.events.add(route, stored, filters, now):
            return None
        state.now = now
        memo = state.prune_due
        if memo is not None:
            state.prune_due = (memo[0], min(memo[1], stored.ts + route.floor + 1))
        return stored

    def _key(self, rule: CompiledRule, stored: StoredEvent) -> tuple[bool, str | None]:
        if rule.key_path is None:
            return True, None
        key = key_text(stored.props.get(rule.key_path))
        return key is not None, key

    def _cancel_wait(self, rule: CompiledRule, state: CustomerState, stored: StoredEvent, outcome: Outcome) -> None:
        has_key, key = self._key(rule, stored)
        if not has_key:
            return
        rule_state = state.rules.get((rule.id, key))
        pending = rule_state.pending if rule_state is not None else None
        if pending is not None and pending.arm <= stored.ts <= pending.due:
            rule_state.pending = None  # type: ignore[union-attr]
            outcome.timers.append(TimerCancel(state.customer_id, rule.id, key))
            outcome.decisions.append(Decision(rule.id, key, "cancelled", stored.ts))

    def _evaluate(
        self,
        rule: CompiledRule,
        state: CustomerState,
        stored: StoredEvent,
        wall: int,
        outcome: Outcome,
        contexts: dict[str | None, Context],
    ) -> None:
        has_key, key = self._key(rule, stored)
        if not has_key:
            return
        ctx = contexts.get(rule.key_path)
        if ctx is None:
            assert state.now is not None
            ctx = Context(state.events_of, state.now, state.traits, stored, rule.key_path, key)
            contexts[rule.key_path] = ctx
        evidence = rule.when.evaluate(ctx)
        if evidence is None or not any(e is stored for e in evidence):
            return
        arm = max(e.ts for e in evidence)
        rule_state = state.rules.get((rule.id, key))
        if rule_state is None:
            rule_state = state.rules[(rule.id, key)] = RuleState()
        if rule_state.last_arm is not None and arm <= rule_state.last_arm:
            # This arming (or a later one) has been seen: re-deliveries and late events are no-ops,
            # except that a late event of the pending arming itself joins what its firing will list.
            pending = rule_state.pending
            if pending is not None and pending.arm == arm:
                self._join(pending, evidence)
            return
        rule_state.last_arm = arm
        outcome.decisions.append(Decision(rule.id, key, "armed", arm))
        matched = sorted(evidence, key=StoredEvent.sort_key)[-MAX_MATCHED_EVENTS:]
        if rule.wait is None:
            self._fire(rule, state, rule_state, key, arm, arm, matched, outcome)
            return
        due = arm + rule.wait
        superseded = rule_state.pending
        if superseded is not None:
            # Debounce: the newer arming restarts the wait; its TimerSet moves the same timer.
            outcome.decisions.append(Decision(rule.id, key, "superseded", superseded.arm))
            rule_state.pending = None
        kind: DecisionKind | None = None
        if self._unless_known(rule, state, key, arm, due):
            kind = "cancelled"
        elif (
            rule.cooldown is not None
            and rule_state.last_fired is not None
            and due < rule_state.last_fired + rule.cooldown
        ):
            kind = "suppressed_cooldown"  # it would be suppressed when due whatever happens: no timer
        elif due < wall:
            # Armed by a late event after the wait was already over: decide now on what is known.
            self._fire(rule, state, rule_state, key, arm, due, matched, outcome)
        else:
            rule_state.pending = Pending(arm, due, [e.copy() for e in matched])
            timer = Timer(state.customer_id, rule.id, key, arm, due)
            outcome.timers.append(TimerSet(timer, replaces=superseded is not None))
            return
        if kind is not None:
            outcome.decisions.append(Decision(rule.id, key, kind, due))
        if superseded is not None:
            outcome.timers.append(TimerCancel(state.customer_id, rule.id, key))

    @staticmethod
    def _join(pending: Pending, evidence: list[StoredEvent]) -> None:
        known = {e.id for e in pending.matched}
        late = [e.copy() for e in evidence if e.id not in known]
        if late:
            pending.matched = sorted(pending.matched + late, key=StoredEvent.sort_key)[-MAX_MATCHED_EVENTS:]

    def _unless_known(self, rule: CompiledRule, state: CustomerState, key: str | None, arm: int, due: int) -> bool:
        for name, matchers in rule.unless.items():
            for e in state.events_of(name) or ():
                if (
                    arm <= e.ts <= due
                    and any(m.matches(e.props) for m in matchers)
                    and (rule.key_path is None or key_text(e.props.get(rule.key_path)) == key)
                ):
                    return True
        return False

    def _fire(
        self,
        rule: CompiledRule,
        state: CustomerState,
        rule_state: RuleState,
        key: str | None,
        arm: int,
        fired_at: int,
        matched: list[StoredEvent],
        outcome: Outcome,
    ) -> None:
        if rule.audience is not None:
            ctx = Context(state.events_of, state.now or fired_at, state.traits, None)
            if rule.audience.evaluate(ctx) is None:
                outcome.decisions.append(Decision(rule.id, key, "suppressed_audience", fired_at))
                return
        if (
            rule.cooldown is not None
            and rule_state.last_fired is not None
            and fired_at < rule_state.last_fired + rule.cooldown
        ):
            outcome.decisions.append(Decision(rule.id, key, "suppressed_cooldown", fired_at))
            return
        rule_state.last_fired = fired_at
        action = rule.rule.action
        outcome.firings.append(
            Firing(
                firing_id=firing_id(rule.id, state.customer_id, key, arm),
                rule=rule.id,
                customer_id=state.customer_id,
                key=key,
                armed_at=arm,
                fired_at=fired_at,
                channel=action.channel,
                template=action.template,
                events=tuple(MatchedEvent(e.name, e.id, e.ts, _unflatten(e.props)) for e in matched),
                destination=action.destination,
                profile=state.traits(),
            )
        )
        outcome.decisions.append(Decision(rule.id, key, "fired", fired_at))

    # -- timers ---------------------------------------------------------------------------------

    def on_timer(self, state: CustomerState, timer: Timer) -> Outcome:
        """A wait came due. A timer for a wait that was cancelled or moved is a no-op."""
        outcome = Outcome()
        rule = self.plan.by_id.get(timer.rule)
        rule_state = state.rules.get((timer.rule, timer.key))
        pending = rule_state.pending if rule_state is not None else None
        if rule is None or rule_state is None or pending is None or pending.arm != timer.arm:
            outcome.decisions.append(Decision(timer.rule, timer.key, "stale_timer", timer.due))
            return outcome
        rule_state.pending = None
        state.prune_due = None
        outcome.changed = True
        if self._unless_known(rule, state, timer.key, pending.arm, pending.due):
            outcome.decisions.append(Decision(rule.id, timer.key, "cancelled", pending.due))
        else:
            self._fire(rule, state, rule_state, timer.key, pending.arm, pending.due, pending.matched, outcome)
        self.prune(state)
        return outcome

    # -- bounds ---------------------------------------------------------------------------------

    def prune(self, state: CustomerState) -> None:
        """Forget what no loaded rule can use any more: old events, unknown names, idle rule state."""
        now = state.now
        if now is None:
            return
        memo = state.prune_due
        if memo is not None and now < memo[1] and memo[0] is self.plan:
            return
        next_due = min(state.events.prune(self.plan.routes, now), state.seen.prune(now, self.dedupe_window))
        by_id = self.plan.by_id
        for rule_key in list(state.rules):
            rule = by_id.get(rule_key[0])
            rule_state = state.rules[rule_key]
            if rule is None:
                del state.rules[rule_key]
            elif rule_state.pending is None:
                released = _released_at(rule, rule_state)
                if released is None or released <= now:
                    del state.rules[rule_key]
                else:
                    next_due = min(next_due, released)
        state.prune_due = (self.plan, next_due)
