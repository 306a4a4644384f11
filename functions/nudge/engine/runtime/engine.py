"""The per-customer evaluation engine: events and timers in, firings and timer requests out.

The engine is pure: it changes the ``CustomerState`` it is handed and returns what should happen
(``Outcome``); callers do the I/O. Replay, the Lambda evaluator, the local stack and the
benchmark all drive this one class.

Timeline of the cart example (``wait: 1h``, ``unless: purchase``)::

    10:00 add_to_cart      stored
    10:05 checkout_viewed  sequence complete -> arms, T = 10:05; TimerSet(due 11:05)
    10:40 add_to_cart      stored (no new complete sequence ends with it)
    10:50 checkout_viewed  arms again, T = 10:50 > 10:05 -> debounce: TimerSet(due 11:50)
    11:52 timer            (due 11:50, decided once the allowed lateness of 2 min has passed)
                           no purchase in [10:50, 11:50] -> Firing(fired_at 11:50)

Results depend on event time only. A wait due at D is decided at D + L (``plan.allowed_lateness``)
on what is known by then, and before the engine looks at anything new it decides every wait whose
decision time the caller's clock has passed (``_settle``), so a late timer or a batch that carries
a timer with newer events cannot change an outcome. An event older than the customer's newest
(``_late_armings``) is judged at its own time, and every later instant it could change is judged
again, so a rule arms as if its events had come in order.

A firing is then the guardrails' to send (``guardrails.py``): at once, or held until its
``send_at`` by a cap's lateness or quiet hours, and decided then by consent and caps.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ...contracts import (
    ADDRESS_TRAITS,
    ALL_CHANNELS,
    CONSENT_CHANNELS,
    CONSENT_EVENTS,
    CONSENT_UPDATED,
    ENGAGEMENT_EVENTS,
    ERASURE_REQUESTED,
    FEEDBACK_EVENTS,
    HOLD_RULE,
    IDENTIFY,
    MESSAGE_BOUNCED,
    MESSAGE_COMPLAINED,
    MESSAGE_SENT,
    SUPPRESSION_EVENTS,
    Event,
    Firing,
    MatchedEvent,
    Timer,
    key_text,
)
from ...timefmt import iso
from ..plan.compiled import CompiledRule, Filter, Plan
from ..plan.conditions import Context
from .eventlog import EventLog, StoredEvent, unflatten
from .guardrails import Guardrails
from .outcome import Decision, DecisionKind, Outcome, TimerCancel, TimerSet, firing_id
from .seen import SeenIds, digest, expiry
from .state import CustomerState, Held, Pending, RuleState, Trim

if TYPE_CHECKING:
    from ..plan.conditions import Matcher

MAX_MATCHED_EVENTS = 50
"""How many matched events a firing carries (the newest), which bounds a pending wait's size."""

Reading = tuple[dict[str, Any], list[Filter]]
"""What the plan makes of an event: its projection (the properties rules read) and the filters it matches."""

_PROFILE_ONLY: Reading = ({}, [])
"""The reading of an ``identify`` or a consent event no filter matches: it changes the profile or
the consent record, nothing else."""

CONSENT_HISTORY = 20
"""How many changes per consent channel a state keeps (time, granted, source), newest last: the
audit trail, and what a decision looks back through to find the consent as of a firing's time."""


_SUPPRESSED = {MESSAGE_BOUNCED: "bounced", MESSAGE_COMPLAINED: "complained"}
"""The mark a suppression leaves on its consent entry (its fourth element)."""

ALWAYS, NEVER = -(1 << 62), 1 << 62
"""Bounds of event time: tracking allowed from the beginning, or not at all."""


_UNLOGGED: frozenset[DecisionKind] = frozenset({"stale_timer"})
"""Decisions the decision log leaves out: a timer for a wait already decided says nothing about the customer."""

MESSAGE_EVENTS = FEEDBACK_EVENTS | {MESSAGE_SENT}
"""Events about one message: in a step's ``unless`` they count only for the step before it."""


def _refers(props: dict[str, Any], answered: str, rule: str, channel: str) -> bool:
    """Whether a message event is about the firing ``answered`` (of ``rule``, on ``channel``)."""
    sent = props.get("firing_id")
    if sent is not None:
        return bool(sent == answered)
    return props.get("rule") == rule and props.get("channel") == channel


def _time_then_id(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


def _consent_order(entry: list[Any]) -> tuple[int, bool]:
    """Event time, then a refusal after a grant at the same instant."""
    return entry[0], not entry[1]


def _by(event: StoredEvent) -> str:
    """A cancellation's reason: the ``unless`` event that called the wait off (its name and time)."""
    return f"by {event.name} at {iso(event.ts)}"


def _arm_of(wait: Pending) -> int:
    return wait.arm


def _tiebreak(value: Any) -> str:
    return repr(value)


def _json(value: Any) -> bytes:
    """A trait's size as stored (integers beyond 64 bits, which orjson refuses, measured by their text)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()


def _released_at(rule: CompiledRule, rule_state: RuleState, lateness: int) -> int | None:
    """The first ``now`` at which an idle (rule, key) state is of no more use (None: already).

    ``last_arm`` guards against re-arming on events still inside the rule's window, and on the
    instants a late event has the engine judge again (none older than ``now - window - lateness``);
    ``last_fired`` is needed while a cooldown could still suppress a future firing.
    """
    last_arm, last_fired, cooldown = rule_state.last_arm, rule_state.last_fired, rule.cooldown
    released = None if last_arm is None else last_arm + rule.window + lateness + 1
    if cooldown is not None and last_fired is not None:
        until = last_fired + cooldown + rule.window + lateness
        released = until if released is None or until > released else released
    return released


class Engine:
    """Runs a compiled ``Plan`` over one customer's state at a time.

    ``wall`` is the caller's clock (wall clock in production, the virtual clock in replay); it
    only decides whether a wait is already over when it is armed. Conditions use event time.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.lateness = plan.allowed_lateness
        self.dedupe_window = max(plan.dedupe_window, plan.allowed_lateness)
        """How long (ms) after its timestamp an event id is remembered, so that a re-sent copy is a
        no-op: never less than the allowed lateness, or a straggler's copy could count twice."""
        self._tracks_by_default = plan.consent["tracking"]
        """Whether a customer who has said nothing about tracking is tracked (``tracking: opt_out``)."""
        self._retention = self.retention()
        self._rests = bool(plan.disengaged)
        """Whether opens and clicks matter to the policy (``disengaged``), whatever the rules read."""
        self._records_sends = MESSAGE_SENT in plan.routes
        """Whether some rule reads ``message_sent``: only then is a send kept among the customer's events."""
        self._log_size = plan.decision_log
        """How many decisions each state keeps (``_log``); 0: none, and no cost."""
        self.guardrails = Guardrails(plan, self.consent, self.judge_step, self.record_sent)
        """What decides a firing's send: consent, caps with priority, quiet hours (``guardrails.py``)."""
        self._arming: dict[str, list[tuple[str, Matcher]]] = {}
        """Per rule, the (name, matcher) of every filter that may arm it: where a late event looks
        for the later instants it may change (filled on first use; late events are rare)."""

    def retention(self) -> int:
        """The longest time (ms) a state holds anything after its last event: the base of its TTL."""
        return max(self.plan.longest_horizon(), self.dedupe_window, self.plan.longest_cap)

    def kept_until(self, state: CustomerState, wall: int) -> int:
        """The last instant (ms) ``state`` is of use if nothing more comes: what its TTL counts from.

        Its retention after the latest of ``wall`` and its newest event, and never before a pending
        wait is decided or a held firing's send time has come.
        """
        until = max(wall, state.now or wall) + self._retention
        for _, pending in state.pending():
            until = max(until, pending.due + self.lateness)
        for held in state.held:
            until = max(until, held.send_at)
        return until

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
        if (event.name == IDENTIFY and event.traits) or event.name in CONSENT_EVENTS or event.name == ERASURE_REQUESTED:
            return _PROFILE_ONLY
        if self._rests and event.name in ENGAGEMENT_EVENTS:
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
        return MatchedEvent(event.name, event.event_id, event.ts, unflatten(props)), key if has_key else None

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
        if state.erased_at is not None and event.ts <= state.erased_at:
            outcome.dropped_erased = True  # from before the erasure: a retried send must not bring it back
            return outcome
        if event.name == ERASURE_REQUESTED:
            return self.erase(state, event.ts)
        consent_event = event.name in CONSENT_EVENTS
        profile_event = consent_event or event.name == IDENTIFY or (self._rests and event.name in ENGAGEMENT_EVENTS)
        seen_as = digest(event.event_id) if state.seen or profile_event else ""
        if state.events.has_id(event.event_id) or seen_as in state.seen:
            return outcome  # a duplicate: the first copy decided everything, whatever this one says
        # The hold timer as it stands before this call: settling a wait may hold its firing (a cap, quiet
        # hours, an escalation's next step), and that one needs a timer too.
        head = state.held[0] if state.held else None
        if state.rules:
            self._settle(state, wall, outcome)
        if state.held:
            self.guardrails.release(state, wall - 1, outcome)  # due before this event: decided without it
        self._take(state, event, wall, reading, consent_event, profile_event, seen_as, outcome)
        if state.held:
            self.guardrails.release(state, wall - 1, outcome)  # a late event's firings may be overdue already
        if state.held or head is not None:
            self.guardrails.rehold(state, head, outcome)
        if outcome.decisions and self._log_size:
            self._log(state, outcome)
        return outcome

    def erase(self, state: CustomerState, at: int) -> Outcome:
        """Forget everything about the customer, as of the erasure stamped ``at``; keep only when.

        Every pending wait's timer and the hold timer are cancelled (the caller deletes the
        schedules), and the state keeps nothing but its erasure time: the latest of ``at`` and every
        event time it held, so no copy of an erased event (an SDK retry, a redrive) is taken again.
        An event stamped later starts a new customer. Erasing an erased customer changes nothing.
        """
        outcome = Outcome(changed=True, erased=True)
        customer_id = state.customer_id
        for (rule_id, key), rule_state in state.rules.items():
            if rule_state.waits:
                outcome.timers.append(TimerCancel(customer_id, rule_id, key, rule_state.waits[0].arm))
        if state.held:
            outcome.timers.append(TimerCancel(customer_id, HOLD_RULE, None, state.held[0].send_at))
        erased_at = max(at, state.now if state.now is not None else at, state.erased_at or at)
        fresh = CustomerState(customer_id)
        for slot in CustomerState.__slots__:
            setattr(state, slot, getattr(fresh, slot))
        state.erased_at = erased_at
        return outcome

    def _log(self, state: CustomerState, outcome: Outcome) -> None:
        """Keep the latest decisions in the state (``policy.decision_log`` of them), for ``nudge explain``.

        Each entry is ``[at, rule, kind]``, then the key and the reason when there are any. Stale
        timers are not decisions about the customer, and are left out.
        """
        entries: list[list[Any]] = []
        for d in outcome.decisions:
            if d.kind in _UNLOGGED:
                continue
            entry: list[Any] = [d.at, d.rule, d.kind]
            if d.key is not None or d.reason:
                entry.append(d.key)
            if d.reason:
                entry.append(d.reason)
            entries.append(entry)
        if entries:
            state.extend_log(entries, self._log_size)
            outcome.changed = True

    def _take(
        self,
        state: CustomerState,
        event: Event,
        wall: int,
        reading: Reading,
        consent_event: bool,
        profile_event: bool,
        seen_as: str,
        outcome: Outcome,
    ) -> None:
        """``process`` once the event is known to be new and every overdue wait is decided."""
        outcome.late = event.ts < wall - self.lateness
        engaged = profile_event and event.name in ENGAGEMENT_EVENTS
        if consent_event or engaged or (profile_event and event.traits):
            if consent_event:
                self._apply_consent(state, event, outcome)
            elif engaged:
                self._apply_engagement(state, event)
            else:
                self._apply_traits(state, event)
            self._remember(state, seen_as, event.ts)
            # A profile event is never stored, so it never prunes: its own time sweeps the id memory,
            # or a customer who only ever identifies would remember every id for good.
            state.seen.prune(max(event.ts, state.now or event.ts), self.dedupe_window)
            outcome.changed = True
        newest = state.now
        tracked = self._tracks_by_default if not state.consent else self._tracks(state, event.ts)
        stored = self._accept(state, event, reading) if reading[1] and tracked else None
        if state.events.forgotten:
            self._keep_forgotten_ids(state)
        if stored is None:
            return
        filters = reading[1]
        outcome.accepted = outcome.changed = True
        cancels, triggers = self.plan.routes[event.name].uses(filters)
        for rule in cancels:
            self._cancel_wait(rule, state, stored, outcome)
        if newest is None or stored.ts > newest:
            # In order (the common case): judged at its own time, which is the customer's now.
            contexts: dict[str | None, Context] = {}  # by key path: shared by the rules this event may arm
            for rule in triggers:
                has_key, key = self._key(rule, stored)
                if has_key:
                    self._evaluate(rule, state, stored, stored.ts, key, wall, outcome, contexts)
        else:
            for rule in triggers:
                self._late_armings(rule, state, stored, wall, outcome)
        if outcome.decisions:
            state.prune_due = None  # every change to a rule's state comes with a decision
        self.prune(state)

    def _keep_forgotten_ids(self, state: CustomerState) -> None:
        """The ids of events the log just forgot go into the id memory, while the window still holds them.

        A stored event's id needs no second copy (``EventLog.has_id`` answers for it); only once the
        log lets the event go must the memory take over, which keeps ``"d"`` to the ids of events
        no longer stored.
        """
        now = state.now or 0
        window = self.dedupe_window
        # In event-time order: the log forgets name by name, in an order that differs between a state
        # kept in memory and a decoded one, and the memory's bytes follow the order ids came in.
        for event_id, ts in sorted(state.events.forgotten, key=_time_then_id):
            if expiry(ts, window) > now:
                self._remember(state, digest(event_id), ts)
        state.events.forgotten.clear()

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

    def _apply_engagement(self, state: CustomerState, event: Event) -> None:
        """An open or a click answers every earlier send on its channel: a resting channel wakes up.

        By event time: a late open answers the sends before its own time, not those after it.
        """
        channel = event.properties.get("channel")
        if not isinstance(channel, str) or channel not in self.plan.disengaged:
            return
        entry = state.engagement.setdefault(channel, [None, []])
        if entry[0] is None or event.ts > entry[0]:
            entry[0] = event.ts
            entry[1] = [sent for sent in entry[1] if sent > event.ts]

    # -- escalation -----------------------------------------------------------------------------

    def judge_step(self, rule: CompiledRule, state: CustomerState, item: Held) -> tuple[DecisionKind, str] | None:
        """Whether a later escalation step is called off as of its time, and why (``None``: it goes on).

        The rule's ``unless`` happened since the arming (a purchase ends the whole chain), or the
        step's own ``unless`` (by default an open or a click) happened since the previous step went
        out. A later arming of the rule does not end an older chain: which armings are known when a
        step is judged depends on arrival, and the step must not (a rule that re-arms within its
        chain wants a ``cooldown``, which stops the second chain at its first step). A message
        event counts only for the previous step: by its ``firing_id``, or, when it carries none, by
        the rule and the previous step's channel.
        """
        key, fired_at = item.key, item.fired_at
        if (unless := self._unless_known(rule, state, key, item.arm, fired_at)) is not None:
            return "cancelled", f"the rule's unless: {_by(unless)}"
        step = rule.steps[item.step]
        previous = rule.steps[item.prev] if item.prev >= 0 else None
        answered = firing_id(rule.id, state.customer_id, key, item.arm, item.prev) if previous is not None else ""
        for name, matchers in step.unless.items():
            message = name in MESSAGE_EVENTS
            for e in state.events_of(name) or ():
                if not item.since <= e.ts <= fired_at or not any(m.matches(e.props) for m in matchers):
                    continue
                if message:
                    if previous is None or not _refers(e.props, answered, rule.id, previous.channel):
                        continue
                elif rule.key_path is not None and key_text(e.props.get(rule.key_path)) != key:
                    continue
                return "cancelled", f"by {name} at {iso(e.ts)}"
        return None

    def record_sent(self, state: CustomerState, firing: Firing) -> None:
        """Keep a send among the customer's events, as ``message_sent`` at its send time.

        Only when some rule reads it, and only as stored behaviour (tracking consent applies): it is
        read by the conditions evaluated later, and never itself starts an evaluation.
        """
        if not self._records_sends:
            return
        at = firing.send_at if firing.send_at is not None else firing.fired_at
        properties = {
            "rule": firing.rule,
            "channel": firing.channel,
            "firing_id": firing.firing_id,
            "step": firing.step,
        }
        event = Event(
            event_id=f"sent-{firing.firing_id}",
            customer_id=state.customer_id,
            name=MESSAGE_SENT,
            ts=at,
            properties=properties,
        )
        reading = self.read(event)
        tracked = self._tracks_by_default if not state.consent else self._tracks(state, at)
        if reading is not None and reading[1] and tracked:
            self._accept(state, event, reading)

    # -- consent --------------------------------------------------------------------------------

    def _apply_consent(self, state: CustomerState, event: Event, outcome: Outcome) -> None:
        """Record a consent change in each channel it names, in event-time order.

        Each channel keeps its last ``CONSENT_HISTORY`` changes; at equal times a refusal sorts last,
        so it wins whatever order the two arrived in. Withdrawing tracking forgets the behaviour.
        """
        props = event.properties
        granted = props.get("granted") is True if event.name == CONSENT_UPDATED else False
        source = props.get("source") if isinstance(props.get("source"), str) else event.name
        channel = props["channel"]
        entry: list[Any] = [event.ts, granted, source]
        if event.name in SUPPRESSION_EVENTS:
            if event.name == MESSAGE_BOUNCED and props.get("bounce_type") != "permanent":
                return  # a transient bounce stops nothing: the next send may well arrive
            entry.append(_SUPPRESSED[event.name])  # a refusal the customer did not say: named apart
        for name in CONSENT_CHANNELS if channel == ALL_CHANNELS else (channel,):
            entries = state.consent.setdefault(name, [])
            bisect.insort(entries, list(entry), key=_consent_order)
            del entries[:-CONSENT_HISTORY]
        if channel in ("tracking", ALL_CHANNELS):
            self._forget_untracked(state, event.ts, outcome)

    def consent(self, state: CustomerState, channel: str, at: int) -> tuple[bool, str, DecisionKind]:
        """Whether ``channel`` is allowed as of ``at`` (ms), a reason that says why (or why not), and
        the decision a refusal makes: ``suppressed_consent``, or, after a permanent bounce or a
        complaint that no later grant has answered, ``suppressed_bounced`` / ``suppressed_complaint``."""
        latest = None
        for entry in reversed(state.consent.get(channel, ())):
            if entry[0] <= at:
                latest = entry
                break
        if latest is None:
            allowed = self.plan.consent[channel]
            mode = "opt_out" if allowed else "opt_in"
            why = f"{channel} is {mode} and the customer has said nothing" + ("" if allowed else " yet")
            return allowed, why, "suppressed_consent"
        if len(latest) > 3:
            kind: DecisionKind = "suppressed_bounced" if latest[3] == "bounced" else "suppressed_complaint"
            what = "a permanent bounce" if latest[3] == "bounced" else "a complaint"
            return False, f"{channel} suppressed after {what} at {iso(latest[0])} ({latest[2]})", kind
        granted = bool(latest[1])
        why = f"{channel} consent {'given' if granted else 'withdrawn'} at {iso(latest[0])} ({latest[2]})"
        return granted, why, "suppressed_consent"

    def _tracks(self, state: CustomerState, ts: int) -> bool:
        """Whether an event stamped ``ts`` may be stored: tracking is on as of ``ts`` and never
        withdrawn after it (``_tracking_start``)."""
        return ts >= self._tracking_start(state)

    def _tracking_start(self, state: CustomerState) -> int:
        """The earliest event time behaviour may be kept from, by event time only.

        A refusal of tracking at T forgets everything stamped up to T, whenever it arrives; a later
        grant starts afresh from its own time; while the latest change is a refusal nothing is kept
        (``NEVER``). Under ``tracking: opt_in``, nothing is kept before the first yes.
        """
        entries = state.consent.get("tracking")
        allowed = self.plan.consent["tracking"]
        if not entries:
            return ALWAYS if allowed else NEVER
        if not entries[-1][1]:
            return NEVER
        start = ALWAYS if allowed else NEVER
        refused = not allowed
        for when, granted, _ in entries:
            if not granted:
                refused, start = True, NEVER
            elif refused:
                refused, start = False, when
        return start

    def _forget_untracked(self, state: CustomerState, at: int, outcome: Outcome) -> None:
        """After a change of tracking consent: drop every stored event the customer no longer lets
        Nudge keep, and the rule states and pending waits that came from them."""
        start = self._tracking_start(state)
        if start == ALWAYS:
            return
        events = state.events.all()
        gone = sorted(((e.id, e.ts) for items in events.values() for e in items if e.ts < start), key=_time_then_id)
        # Their ids stay in the id memory while the dedupe window holds them: a re-sent copy of an
        # event from before the refusal must not be taken for a new one once tracking is back.
        for event_id, ts in gone:
            if expiry(ts, self.dedupe_window) > at:
                self._remember(state, digest(event_id), ts)
        if gone:
            state.events = EventLog.of_events(
                {name: [e for e in items if e.ts >= start] for name, items in events.items()}
            )
        for rule_key in list(state.rules):
            rule_state = state.rules[rule_key]
            if rule_state.last_arm is not None and rule_state.last_arm >= start:
                continue  # armed from behaviour that is still kept
            rule_id, key = rule_key
            if rule_state.waits:
                outcome.timers.append(TimerCancel(state.customer_id, rule_id, key, rule_state.waits[0].arm))
                for _ in rule_state.waits:
                    outcome.decisions.append(Decision(rule_id, key, "cancelled", at, "tracking consent withdrawn"))
            del state.rules[rule_key]
        if state.held:
            # Firings held for their send time list the behaviour that armed them: they go with it.
            for item in state.held:
                outcome.decisions.append(Decision(item.rule, item.key, "cancelled", at, "tracking consent withdrawn"))
            state.held = []
            outcome.changed = True
        newest = [e.ts for items in state.events.all().values() for e in items]
        state.now = max(newest) if newest else None
        state.prune_due = None

    def _accept(self, state: CustomerState, event: Event, reading: Reading) -> StoredEvent | None:
        """Store the event unless the retention rule would forget it at once.

        A copy is recognized while the event is stored (``EventLog.has_id``) and, once the log has
        forgotten it, while the dedupe window holds its id (``state.seen``): whichever is longer.
        """
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
        if rule_state is None or not rule_state.waits:
            return
        waits = rule_state.waits
        for index, wait in enumerate(waits):
            if wait.arm <= stored.ts <= wait.due:
                head = waits[0]
                del waits[index]
                outcome.decisions.append(Decision(rule.id, key, "cancelled", stored.ts, _by(stored)))
                self._retime(state, rule.id, key, rule_state, head, outcome)
                return

    def _late_armings(
        self, rule: CompiledRule, state: CustomerState, stored: StoredEvent, wall: int, outcome: Outcome
    ) -> None:
        """Judge a late event at its own time, then every later instant of the rule it may change.

        In order, the rule would have been evaluated at each of its arming events' times with this
        event already known; so it is now, at those instants (an arriving event of the rule at or
        after this one's time, with the same key), oldest first. A rule without a wait skips the
        instants before its latest arming (its arm times only move forward); a wait rule is judged
        at every one (a late arming within the lateness debounces as in order, and a late event of
        a pending arming joins what its firing lists). Instants older than
        ``now - window - lateness`` are not judged again: what the rule did there may be forgotten
        (``_released_at``), and only an event later than the allowed lateness reaches them.
        """
        has_key, key = self._key(rule, stored)
        assert state.now is not None
        oldest = state.now - rule.window - self.lateness
        if not has_key or stored.ts < oldest:
            return
        self._evaluate(rule, state, stored, stored.ts, key, wall, outcome, None)
        rule_state = state.rules.get((rule.id, key))
        floor = stored.ts
        if rule.wait is None and rule_state is not None and rule_state.last_arm is not None:
            floor = max(floor, rule_state.last_arm)  # without a wait, arm times only move forward
        arming = self._arming.get(rule.id)
        if arming is None:
            arming = self._arming[rule.id] = [
                (name, item.matcher)
                for name, route in self.plan.routes.items()
                for item in route.filters
                if rule in item.triggers
            ]
        instants: dict[str, StoredEvent] = {}
        for name, matcher in arming:
            for e in state.events_of(name) or ():
                if (
                    e.ts >= floor
                    and e is not stored
                    and e.id not in instants
                    and matcher.matches(e.props)
                    and self._key(rule, e) == (True, key)
                ):
                    instants[e.id] = e
        for later in sorted(instants.values(), key=StoredEvent.sort_key):
            self._evaluate(rule, state, later, later.ts, key, wall, outcome, None)

    def _evaluate(
        self,
        rule: CompiledRule,
        state: CustomerState,
        arriving: StoredEvent,
        now: int,
        key: str | None,
        wall: int,
        outcome: Outcome,
        contexts: dict[str | None, Context] | None,
    ) -> None:
        """Evaluate ``rule`` at ``now`` with ``arriving`` as the event that came; arm it if it holds."""
        ctx = contexts.get(rule.key_path) if contexts is not None else None
        if ctx is None:
            ctx = Context(state.events_of, now, state.traits, arriving, rule.key_path, key)
            if contexts is not None:
                contexts[rule.key_path] = ctx
        evidence = rule.when.evaluate(ctx)
        if evidence is None or not any(e is arriving for e in evidence):
            return
        arm = max(e.ts for e in evidence)
        rule_state = state.rules.get((rule.id, key))
        if rule_state is None:
            rule_state = state.rules[(rule.id, key)] = RuleState()
        last_arm = rule_state.last_arm
        in_order = last_arm is None or arm > last_arm
        if not in_order:
            assert last_arm is not None and state.now is not None
            if rule.wait is None or arm == last_arm or arm in rule_state.recent or arm < state.now - self.lateness:
                # Seen already (a re-delivery, a second look at an instant), or a late arming of a rule
                # without a wait, or later than the lateness: arm times only move forward. A late event
                # of a pending arming itself joins what its firing will list.
                for wait in rule_state.waits:
                    if wait.arm == arm:
                        self._join(wait, evidence)
                return
            bisect.insort(rule_state.recent, arm)  # a late arming of a wait rule, within the lateness
        else:
            newest = state.now
            if (
                last_arm is not None
                and rule.wait is not None
                and newest is not None
                and last_arm >= newest - self.lateness
            ):
                rule_state.recent.append(last_arm)  # a late arming before it must still see it
            rule_state.last_arm = arm
        outcome.decisions.append(Decision(rule.id, key, "armed", arm))
        matched = sorted(evidence, key=StoredEvent.sort_key)[-MAX_MATCHED_EVENTS:]
        if rule.wait is None:
            self._fire(rule, state, rule_state, key, arm, arm, matched, outcome)
            return
        due = arm + rule.wait
        waits = rule_state.waits
        head = waits[0] if waits else None
        # Debounce, as if in event-time order: an arming fires ``wait`` after itself unless another
        # arming comes in (arm, due] (or an unless event in [arm, due]). So it stops the pending wait
        # it falls inside, and a late one that has a later arming within its own wait never starts.
        for index, wait in enumerate(waits):
            if wait.arm < arm <= wait.due:
                del waits[index]
                outcome.decisions.append(Decision(rule.id, key, "superseded", wait.arm))
                break
        if not in_order and any(arm < other <= due for other in (*rule_state.recent, rule_state.last_arm or arm)):
            outcome.decisions.append(Decision(rule.id, key, "superseded", arm))
            self._retime(state, rule.id, key, rule_state, head, outcome)
            return
        kind: DecisionKind | None = None
        reason = ""
        if (unless := self._unless_known(rule, state, key, arm, due)) is not None:
            kind, reason = "cancelled", _by(unless)
        elif (
            rule.cooldown is not None
            and rule_state.last_fired is not None
            and due < rule_state.last_fired + rule.cooldown
        ):
            kind = "suppressed_cooldown"  # it would be suppressed when due whatever happens: no timer
        elif due + self.lateness < wall:
            # Armed by an event so late that the decision time has passed: decide now on what is known.
            self._fire(rule, state, rule_state, key, arm, due, matched, outcome)
        else:
            bisect.insort(waits, Pending(arm, due, [e.copy() for e in matched]), key=_arm_of)
        if kind is not None:
            outcome.decisions.append(Decision(rule.id, key, kind, due, reason))
        self._retime(state, rule.id, key, rule_state, head, outcome)

    def _retime(
        self,
        state: CustomerState,
        rule_id: str,
        key: str | None,
        rule_state: RuleState,
        head: Pending | None,
        outcome: Outcome,
        came: bool = False,
    ) -> None:
        """Keep the one timer of (rule, key) on its oldest pending wait, which was ``head``.

        ``came``: ``head``'s timer has just come, so there is no timer to move or cancel.
        """
        waits = rule_state.waits
        first = waits[0] if waits else None
        if first is head:
            return
        if first is None:
            if not came and head is not None:
                outcome.timers.append(TimerCancel(state.customer_id, rule_id, key, head.arm))
            return
        timer = Timer(state.customer_id, rule_id, key, first.arm, first.due)
        replaced = head.arm if head is not None and not came else None
        outcome.timers.append(TimerSet(timer, first.due + self.lateness, replaced_arm=replaced))

    @staticmethod
    def _join(pending: Pending, evidence: list[StoredEvent]) -> None:
        known = {e.id for e in pending.matched}
        late = [e.copy() for e in evidence if e.id not in known]
        if late:
            pending.matched = sorted(pending.matched + late, key=StoredEvent.sort_key)[-MAX_MATCHED_EVENTS:]

    def _unless_known(
        self, rule: CompiledRule, state: CustomerState, key: str | None, arm: int, due: int
    ) -> StoredEvent | None:
        """The first stored ``unless`` event of (rule, key) in ``[arm, due]``, which calls the wait off."""
        for name, matchers in rule.unless.items():
            for e in state.events_of(name) or ():
                if (
                    arm <= e.ts <= due
                    and any(m.matches(e.props) for m in matchers)
                    and (rule.key_path is None or key_text(e.props.get(rule.key_path)) == key)
                ):
                    return e
        return None

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
        """The rule fires, unless its audience or cooldown says no; then the guardrails decide the send.

        The cooldown counts from the rule's firing, whether or not the guardrails then let it be
        sent: the rule's own meaning does not depend on the policy (``guardrails.py``).
        """
        if rule.audience is not None:
            # As of the firing's own time: events after it, known or not yet, cannot change it.
            ctx = Context(state.events_of, fired_at, state.traits, None)
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
        self.guardrails.fire(rule, state, Held(rule.id, key, arm, fired_at, fired_at, fired_at, matched), outcome)

    # -- timers ---------------------------------------------------------------------------------

    def on_timer(self, state: CustomerState, timer: Timer, wall: int | None = None) -> Outcome:
        """A wait's decision time came: decide it (and any older wait of its key) as of its due time.

        ``wall`` is the caller's clock (the timer's decision time when not given). Every other wait
        of the customer whose decision time it has passed is decided too. A timer for a wait that was
        cancelled, restarted or already decided is a no-op (``stale_timer``). The customer's hold
        timer (rule ``HOLD_RULE``) has no wait: it comes for the held firings due by then.
        """
        outcome = Outcome()
        hold = state.held[0] if state.held else None
        came = False  # whether this is the earliest held firing's own hold timer: none to move
        if timer.rule == HOLD_RULE:
            wall = timer.due if wall is None else wall
            came = hold is not None and hold.send_at == timer.arm
            if not came:
                outcome.decisions.append(Decision(HOLD_RULE, None, "stale_timer", timer.due))
        else:
            if wall is None:
                wall = timer.due + self.lateness
            self._decide_timer(state, timer, outcome)
        if state.rules:
            # Waits of other rules due at the same instant are decided with this one, so that firings
            # with the same send time meet in one decision, in priority order.
            self._settle(state, wall + 1, outcome)
        if state.held:
            self.guardrails.release(state, wall, outcome)
        if state.held or hold is not None:
            self.guardrails.rehold(state, hold, outcome, came=came)
        if outcome.changed:
            self.prune(state)
        if outcome.decisions and self._log_size:
            self._log(state, outcome)
        return outcome

    def _decide_timer(self, state: CustomerState, timer: Timer, outcome: Outcome) -> None:
        """A wait's timer came: decide its wait (and any older wait of its key), or note it is stale."""
        rule = self.plan.by_id.get(timer.rule)
        rule_state = state.rules.get((timer.rule, timer.key))
        waits = rule_state.waits if rule_state is not None else []
        own = next((wait for wait in waits if wait.arm == timer.arm), None)
        if rule is None or rule_state is None or own is None:
            outcome.decisions.append(Decision(timer.rule, timer.key, "stale_timer", timer.due))
            return
        head = waits[0]
        while waits:
            wait = waits.pop(0)
            self._decide(rule, state, rule_state, timer.key, wait, outcome)
            if wait is own:
                break
        self._retime(state, rule.id, timer.key, rule_state, head, outcome, came=head is own)

    def _settle(self, state: CustomerState, wall: int, outcome: Outcome) -> None:
        """Decide every pending wait whose decision time (due + lateness) is before ``wall``."""
        limit = wall - self.lateness
        for (rule_id, key), rule_state in state.rules.items():
            waits = rule_state.waits
            if not waits or waits[0].due >= limit:
                continue
            rule = self.plan.by_id.get(rule_id)
            if rule is None:
                continue  # the rule was removed: prune forgets its state
            head = waits[0]
            while waits and waits[0].due < limit:
                self._decide(rule, state, rule_state, key, waits.pop(0), outcome)
            self._retime(state, rule_id, key, rule_state, head, outcome)

    def _decide(
        self,
        rule: CompiledRule,
        state: CustomerState,
        rule_state: RuleState,
        key: str | None,
        wait: Pending,
        outcome: Outcome,
    ) -> None:
        """Decide ``wait`` as of its due time: cancelled if an ``unless`` event is known in it, else fire."""
        state.prune_due = None
        outcome.changed = True
        if (unless := self._unless_known(rule, state, key, wait.arm, wait.due)) is not None:
            outcome.decisions.append(Decision(rule.id, key, "cancelled", wait.due, _by(unless)))
        else:
            self._fire(rule, state, rule_state, key, wait.arm, wait.due, wait.matched, outcome)

    # -- bounds ---------------------------------------------------------------------------------

    def fit(self, state: CustomerState, size_of: Callable[[CustomerState], int], budget: int) -> Trim:
        """Trim ``state`` until ``size_of(state) <= budget``: a customer must never become unwritable.

        The order, from what matters least: the decision log (it explains, it decides nothing); the
        oldest stored events, a quarter at a time (their ids stay in the id memory while the dedupe
        window holds them); then the largest traits, except the
        addresses (``email``, ``phone``); then the properties of the events pending waits hold (the
        firing keeps the events, not their details); then the id memory. Only a customer whose state
        exceeds the budget is touched, and what was dropped is returned, for a metric. Replay keeps
        no item and never trims: such a customer may differ from replay, as the README says.
        """
        trim = Trim()
        size = size_of(state)
        if size <= budget:
            return trim
        trim.before = size
        if state.log:
            state.log = []  # the decision log explains; it decides nothing
            size = size_of(state)
        while size > budget and state.events:
            stored = sum(len(state.events.of(name) or ()) for name in state.events.names())
            trim.events += state.events.discard_oldest(max(1, stored // 4))
            self._keep_forgotten_ids(state)
            size = size_of(state)
        while size > budget:
            sizes = [
                (len(_json(entry[0])), name)
                for name, entry in state.profile.items()
                if entry[0] is not None and name not in ADDRESS_TRAITS
            ]
            if not sizes:
                break
            _, name = max(sizes)
            state.profile[name] = [None, state.profile[name][1]]  # a tombstone: an older identify cannot bring it back
            trim.traits += 1
            size = size_of(state)
        if size > budget:
            waiting: list[Pending | Held] = [pending for _, pending in state.pending()]
            for wait in waiting + state.held:
                for event in wait.matched:
                    if event.props:
                        event.props = {}
                        trim.details += 1
            size = size_of(state)
        if size > budget and state.seen:
            state.seen = SeenIds()
            trim.ids = True
            size = size_of(state)
        state.prune_due = None
        trim.after = size
        return trim

    def prune(self, state: CustomerState) -> None:
        """Forget what no loaded rule can use any more: old events, unknown names, idle rule state."""
        now = state.now
        if now is None:
            return
        memo = state.prune_due
        if memo is not None and now < memo[1] and memo[0] == self.plan.fingerprint:
            return
        next_due = state.events.prune(self.plan.routes, now)
        if state.events.forgotten:
            self._keep_forgotten_ids(state)
        next_due = min(next_due, state.seen.prune(now, self.dedupe_window))
        if state.sent:
            # A send counts while some cap's window could still hold it, seen from ``now`` or later.
            keep = now - self.plan.longest_cap
            state.sent = [entry for entry in state.sent if entry[0] > keep]
            if state.sent:
                next_due = min(next_due, state.sent[0][0] + self.plan.longest_cap + 1)
        by_id = self.plan.by_id
        for rule_key in list(state.rules):
            rule = by_id.get(rule_key[0])
            rule_state = state.rules[rule_key]
            if rule is None:
                del state.rules[rule_key]
                continue
            if rule_state.recent:
                # Earlier armings matter to late armings only, and those are at most the lateness old.
                rule_state.recent = [r for r in rule_state.recent if r >= now - self.lateness]
                if rule_state.recent:
                    next_due = min(next_due, rule_state.recent[0] + self.lateness + 1)
            if not rule_state.waits:
                released = _released_at(rule, rule_state, self.lateness)
                if released is None or released <= now:
                    del state.rules[rule_key]
                else:
                    next_due = min(next_due, released)
        state.prune_due = (self.plan.fingerprint, next_due)
