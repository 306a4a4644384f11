"""The compiled plan: rules, and per event name every distinct filter and what the rules do with its matches.

Everything here is immutable once built (by ``_builder.compile_rules``, the only constructor), so
one plan can be shared by every customer and every thread of a process.

Everything the engine does with an arriving event follows from one question, *which filters match
it?*: whether it is stored and for how long (the longest window among the filters it matches),
which rules it may arm, and which waits it cancels. ``Route.match`` answers that in one pass.

Most filters are never tested. A filter that pins a property to strings (``sku: SKU-1``,
``plan: {in: [pro, team]}``) is filed under those strings, and an event only meets the filters
filed under its own values plus the few that pin nothing. So a shop with a rule per product pays
for the rules about the product viewed, not for the catalogue: matching cost follows the number of
filters that *could* match, not the number of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...contracts import MESSAGE_CHANNELS
from .conditions import Matcher, Node
from .operators import MISSING, resolve

DEFAULT_CONSENT = {"email": True, "sms": False, "push": False, "tracking": True}
"""Whether each consent channel is allowed before the customer said anything: the policy's defaults."""

if TYPE_CHECKING:
    from ..language.rules import Rule


@dataclass(frozen=True)
class Cap:
    """One sliding window over a customer's sends: at most ``max`` in any ``(t - per, t]``.

    ``scope`` is a channel (``email``, ``sms``, ``push``), ``any`` (those three together), or
    ``rule``: the sends of one rule for one customer and key (a rule's own ``frequency_cap``).
    """

    scope: str
    max: int
    per: int
    label: str
    """How a decision names it: ``any: 3 per 7d``, ``sms: 1 per 1d``, ``rule: 1 per 7d``."""

    def counts(self, entry: Sequence[Any], rule: str, key: str | None) -> bool:
        """Whether a send ``[send_at, channel(, rule, key)]`` counts in this cap for (``rule``, ``key``).

        A send carries its rule and key only when its rule has a cap of its own (``Guardrails.send``).
        """
        if self.scope == "rule":
            return len(entry) > 2 and bool(entry[2] == rule and entry[3] == key)
        if self.scope == "any":
            return entry[1] in MESSAGE_CHANNELS
        return bool(entry[1] == self.scope)


@dataclass(frozen=True)
class QuietPlan:
    """The policy's quiet hours, compiled: minutes after local midnight, ``[start, end)``. (Which
    channels they hold is compiled into each rule: ``CompiledRule.quiet``.)"""

    start: int
    end: int
    default_timezone: str
    label: str
    """``21:00-09:00``, for reasons."""


@dataclass(frozen=True, eq=False)
class CompiledStep:
    """One message of a rule: its action (step 0) or an ``escalate`` step, with what guards its send.

    A step after the first is decided ``after`` the previous one was sent, unless ``unless`` (by
    default an open or a click of the previous step) happened since; each step has its own channel,
    so its own caps and quiet hours.
    """

    index: int
    channel: str
    template: str | None
    destination: str | None
    after: int
    caps: tuple[Cap, ...]
    quiet: bool
    unless: Mapping[str, tuple[Matcher, ...]]
    """What calls this step off since the previous one (empty for step 0): message events are
    matched to the previous step (``Engine._refers``), other events by the rule's key."""


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """One rule, ready to run; ``index`` is its position in the plan (firings of one event follow it).

    ``id``, ``key_path``, ``wait`` and ``cooldown`` are copied from the model: they are read on
    every evaluation, where an attribute lookup through the pydantic model shows.
    """

    rule: Rule
    index: int
    when: Node
    audience: Node | None
    unless: Mapping[str, tuple[Matcher, ...]]
    window: int
    id: str
    key_path: str | None
    wait: int | None
    cooldown: int | None
    priority: int = 0
    caps: tuple[Cap, ...] = ()
    """Every cap a firing of this rule must fit (none for a transactional rule): the channel's, ``any``
    for a message to the customer, and the rule's own."""
    quiet: bool = False
    """Whether the policy's quiet hours hold this rule's firings (its channel is listed, the rule did
    not say ``quiet_hours: false``, and it is not transactional)."""
    steps: tuple[CompiledStep, ...] = ()
    """The action (step 0, whose ``caps`` and ``quiet`` are the two above) and each escalation step."""
    marketing: bool = True
    """Not ``category: transactional``: caps count it and disengagement can stop it."""


class Filter:
    """One distinct ``event`` + ``where`` of the plan and its uses across every rule.

    ``horizon`` is how long (ms) an event matching it must be kept, ``cap`` how many of the newest
    events it matches must be kept (the largest any condition on it sees); ``triggers`` the rules whose
    condition it is part of (so a match may arm them), ``cancels`` the rules whose ``unless`` it is.
    Both are in plan order, which is the order firings of one event follow.
    """

    __slots__ = ("cancels", "cap", "horizon", "matcher", "triggers")

    def __init__(
        self,
        matcher: Matcher,
        horizon: int,
        cap: int,
        triggers: tuple[CompiledRule, ...],
        cancels: tuple[CompiledRule, ...],
    ) -> None:
        self.matcher = matcher
        self.horizon = horizon
        self.cap = cap
        self.triggers = triggers
        self.cancels = cancels

    def __repr__(self) -> str:
        return f"Filter({self.matcher.name!r}, {self.matcher.paths!r}, horizon={self.horizon})"


class Route:
    """The filters of one event name and the properties to keep."""

    __slots__ = (
        "_dotted",
        "_indexed",
        "_plain",
        "_scan",
        "_uses",
        "cap_floor",
        "cap_total",
        "filters",
        "floor",
        "horizon",
        "name",
        "paths",
    )

    def __init__(
        self,
        name: str,
        filters: Sequence[tuple[Filter, tuple[str, tuple[str, ...]] | None]],
        paths: Iterable[str],
    ) -> None:
        self.name = name
        self.filters = tuple(item for item, _ in filters)
        self.paths = tuple(sorted(paths))
        self._plain = tuple(path for path in self.paths if "." not in path)
        self._dotted = tuple(path for path in self.paths if "." in path)
        self.cap_floor = min(item.cap for item in self.filters)
        """Fewer events of this name than this are all kept by the caps (the smallest filter cap)."""
        self.cap_total = sum(item.cap for item in self.filters)
        """No more events of this name than this are ever kept (every filter's cap, added up)."""
        self.horizon = max(item.horizon for item in self.filters)
        """Nothing of this name is kept longer than this."""
        self.floor = min(item.horizon for item in self.filters)
        """Anything of this name that is stored at all is kept at least this long."""
        scan: list[Filter] = []
        indexed: dict[str, dict[str, list[Filter]]] = {}
        for item, pinned in filters:
            if pinned is None:
                scan.append(item)
                continue
            path, values = pinned
            by_value = indexed.setdefault(path, {})
            for value in values:
                by_value.setdefault(value, []).append(item)
        self._scan = tuple(scan)
        self._uses: dict[tuple[int, ...], tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]] = {}
        self._indexed = tuple(
            (path, {value: tuple(items) for value, items in by_value.items()}) for path, by_value in indexed.items()
        )

    def project(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The properties the rules read from an event of this name, as flat dotted paths."""
        props = {path: value for path in self._plain if (value := properties.get(path, MISSING)) is not MISSING}
        for path in self._dotted:
            value = resolve(properties, path)
            if value is not MISSING:
                props[path] = value
        return props

    def may_match(self, properties: Mapping[str, Any]) -> bool:
        """False when no filter can match an event with these (raw) properties, decided cheaply.

        When every filter of the name pins a property to strings, an event whose values are none
        of those strings is dropped before it is projected: most page views are not about the
        ``services`` section a rule asks for.
        """
        if self._scan:
            return True
        for path, by_value in self._indexed:
            value = resolve(properties, path)
            if type(value) is str and value in by_value:
                return True
        return False

    def match(self, props: Mapping[str, Any]) -> list[Filter]:
        """Every filter of this name that an event with these (projected) properties matches."""
        found = [item for item in self._scan if item.matcher.matches(props)]
        for path, by_value in self._indexed:
            value = props.get(path)
            if type(value) is str:
                for item in by_value.get(value, ()):
                    if item.matcher.matches(props):
                        found.append(item)
        return found

    def single(self) -> bool:
        """Whether the name has one filter, so its cap is a plain count of its newest events."""
        return len(self.filters) == 1

    def horizon_of(self, props: Mapping[str, Any]) -> int:
        """How long an event with these properties is kept (-1 when no filter wants it any more)."""
        return max((item.horizon for item in self.match(props)), default=-1)

    def uses(self, filters: Sequence[Filter]) -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]:
        """The rules whose waits these matched filters cancel and those they may arm, each once, in plan order."""
        if len(filters) == 1:
            return filters[0].cancels, filters[0].triggers
        combination = tuple(sorted(id(item) for item in filters))
        found = self._uses.get(combination)
        if found is None:
            found = self._uses[combination] = (
                _in_plan_order(item.cancels for item in filters),
                _in_plan_order(item.triggers for item in filters),
            )
        return found


def _in_plan_order(groups: Iterable[tuple[CompiledRule, ...]]) -> tuple[CompiledRule, ...]:
    unique = {rule.index: rule for group in groups for rule in group}
    return tuple(unique[index] for index in sorted(unique))


class Plan:
    """The compiled form of a rule set; build it once per process (``compile_rules``).

    ``routes`` maps each event name some rule reads to its ``Route``: the one lookup the hot path
    makes per event, which is all an event no rule references costs.
    """

    __slots__ = (
        "allowed_lateness",
        "by_id",
        "consent",
        "decision_log",
        "dedupe_window",
        "disengaged",
        "fingerprint",
        "longest_cap",
        "max_future_skew",
        "quiet",
        "routes",
        "rules",
    )

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        routes: Mapping[str, Route],
        allowed_lateness: int,
        dedupe_window: int,
        max_future_skew: int = 3_600_000,
        consent: Mapping[str, bool] | None = None,
        quiet: QuietPlan | None = None,
        disengaged: Mapping[str, tuple[int, int]] | None = None,
        decision_log: int = 0,
        fingerprint: int = 0,
    ) -> None:
        self.fingerprint = fingerprint
        """32 bits of a digest of the enabled rules and the policy (``compile_rules``): what a state's
        persisted prune memo was reckoned under, so a deploy with other rules never trusts it."""
        self.allowed_lateness = allowed_lateness
        """How late (ms) an event may arrive and still be judged as if it had come in order (the policy's)."""
        self.dedupe_window = dedupe_window
        """How long (ms) after its timestamp an event id is remembered (the policy's)."""
        self.max_future_skew = max_future_skew
        """How far (ms) ahead of the receiving clock an event may be stamped (the policy's)."""
        self.consent: Mapping[str, bool] = dict(consent or DEFAULT_CONSENT)
        """Per consent channel, whether it is allowed before the customer said anything (``opt_out``)."""
        self.quiet = quiet
        """The quiet hours (``None``: none)."""
        self.disengaged: Mapping[str, tuple[int, int]] = dict(disengaged or {})
        """Per channel, (unanswered sends, for how long in ms) after which marketing on it rests."""
        self.decision_log = decision_log
        """How many of its latest decisions each customer's state keeps (0: none; the policy's)."""
        self.rules = tuple(rules)
        self.longest_cap = max((cap.per for rule in self.rules for cap in rule.caps), default=0)
        """How long (ms) a send is remembered for the caps (0: no rule is capped, none is)."""
        self.by_id: Mapping[str, CompiledRule] = {rule.id: rule for rule in self.rules}
        self.routes: Mapping[str, Route] = dict(routes)

    def referenced_events(self) -> list[str]:
        """Every event name some rule reads: what the event source mapping lets through."""
        return sorted(self.routes)

    def longest_horizon(self) -> int:
        """The longest time (ms) any event is kept: the base of the state's time-to-live."""
        return max((route.horizon for route in self.routes.values()), default=0)
