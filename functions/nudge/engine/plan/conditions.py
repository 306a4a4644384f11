"""Compiled condition nodes: each evaluates at ``now`` and returns its evidence or ``None``.

Evidence is the list of events that take part in a satisfying match. A rule arms only when the
arriving event is part of the evidence, and its arm time is the latest timestamp in it, which is
what makes a pattern arm exactly once, with the same arm time, whatever order its events came in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ...contracts import CHANNEL_ADDRESSES, KEY_MARK, key_text
from ...timefmt import iso
from ..language.durations import format_duration
from .operators import MISSING, Predicate, resolve

if TYPE_CHECKING:
    # Conditions read events as the runtime's event log stores them; the plan holds no events.
    from ..runtime.eventlog import StoredEvent

Evidence = list["StoredEvent"]


def _ts(event: StoredEvent) -> int:
    return event.ts


_ADDRESSES = frozenset(CHANNEL_ADDRESSES.values())
"""The traits an explanation never prints the value of: email, phone, push tokens."""


@dataclass(frozen=True)
class Explanation:
    """One condition's verdict at an instant, in words, with its parts' (``Node.explain``).

    ``holds`` is the node's own ``evaluate`` (never recomputed from the parts), so an explanation
    cannot disagree with the decision it explains; ``says`` is why, with the numbers.
    """

    holds: bool
    says: str
    parts: tuple[Explanation, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"holds": self.holds, "says": self.says}
        if self.parts:
            data["parts"] = [part.as_dict() for part in self.parts]
        return data

    def lines(self, depth: int = 0) -> list[str]:
        """A printed tree: one line per condition, ✓ or ✗ first."""
        own = f"{'  ' * depth}{'✓' if self.holds else '✗'} {self.says}"
        return [own, *(line for part in self.parts for line in part.lines(depth + 1))]


class Context:
    """What evaluations at one instant see: the customer's events (for one key), profile, now, arrival.

    The engine makes one per arriving event and key, and every rule that event may arm is
    evaluated against it, so work the rules share is done once: the events of one key, and the
    events one filter matches inside one window (``hits``). Filters shared by several rules are one
    ``Matcher`` object, so eleven cart reminders that differ in their product category scan the
    checkout views once. Evidence lists may come from that cache: nodes never mutate them.
    """

    __slots__ = ("_events", "_floors", "_hits", "_keyed", "_profile", "_traits", "arriving", "key", "key_path", "now")

    def __init__(
        self,
        events: Callable[[str], list[StoredEvent] | None],
        now: int,
        traits: Callable[[], Mapping[str, Any]],
        arriving: StoredEvent | None,
        key_path: str | None = None,
        key: str | None = None,
    ) -> None:
        self._events = events
        self._keyed: dict[str, list[StoredEvent]] = {}
        self._hits: dict[tuple[Matcher, int, int], list[StoredEvent]] = {}
        self._floors: dict[tuple[Matcher, int], tuple[int, str] | None] = {}
        self._traits = traits
        self._profile: Mapping[str, Any] | None = None
        self.now = now
        self.arriving = arriving
        self.key_path = key_path
        self.key = key

    @property
    def profile(self) -> Mapping[str, Any]:
        """The customer's traits, built on first use: most rules never read them."""
        if self._profile is None:
            self._profile = self._traits()
        return self._profile

    def events(self, name: str) -> list[StoredEvent]:
        """Events named ``name``, oldest first; for a keyed rule only those with this key value."""
        items = self._events(name) or []
        if self.key_path is None:
            return items
        keyed = self._keyed.get(name)
        if keyed is None:
            path, key = self.key_path, self.key
            if key is not None and not key.startswith(KEY_MARK):
                # A plain string key: only that very string equals it (no number or boolean does).
                keyed = [e for e in items if e.props.get(path) == key]
            else:
                keyed = [e for e in items if key_text(e.props.get(path)) == key]
            self._keyed[name] = keyed
        return keyed

    def floor(self, matcher: Matcher, cap: int) -> tuple[int, str] | None:
        """The (ts, id) of the ``cap``-th newest stored event ``matcher`` matches, of any key; None if fewer.

        A condition sees only its filter's ``cap`` newest matches, counted over every key and
        every time, as its rule alone would have kept them: the event log may hold more, for
        another rule that asks more of the same filter or keeps the same events for another
        filter, and a rule must not see what it would not have kept (its firings would depend on
        the other rules). A name with at most ``cap`` events stored needs no count.
        """
        items = self._events(matcher.name) or []
        if len(items) <= cap:
            return None
        if (matcher, cap) in self._floors:
            return self._floors[(matcher, cap)]
        found: tuple[int, str] | None = None
        if not matcher.tests:
            newest = items[-cap]  # a filter without tests matches every event of its name
            found = (newest.ts, newest.id)
        else:
            seen, matches = 0, matcher.matches
            for e in reversed(items):
                if matches(e.props):
                    seen += 1
                    if seen == cap:
                        found = (e.ts, e.id)
                        break
        self._floors[(matcher, cap)] = found
        return found

    def hits(self, matcher: Matcher, low: int, cap: int) -> list[StoredEvent]:
        """What a condition sees of ``matcher`` in ``[low, now]``, oldest first (see ``floor``)."""
        found = self._hits.get((matcher, low, cap))
        if found is None:
            items = self.events(matcher.name)
            # Stored events are in (ts, id) order: only the window's slice is looked at.
            start = bisect_left(items, low, key=_ts)
            end = bisect_right(items, self.now, key=_ts, lo=start)
            matches = matcher.matches
            found = [e for e in items[start:end] if matches(e.props)] if matcher.tests else items[start:end]
            floor = self.floor(matcher, cap) if len(found) > 0 else None
            if floor is not None and floor[0] >= low:  # else every hit in the window is newer than it
                found = [e for e in found if e.ts > floor[0] or (e.ts == floor[0] and e.id >= floor[1])]
            self._hits[(matcher, low, cap)] = found
        return found


class Matcher:
    """An event name plus its ``where`` tests, over flat (projected) properties."""

    __slots__ = ("label", "name", "paths", "tests")

    def __init__(self, name: str, tests: Sequence[tuple[str, Predicate]], label: str | None = None) -> None:
        self.name = name
        self.tests = tuple(tests)
        self.paths = tuple(path for path, _ in tests)
        self.label = label or f"`{name}`"
        """How explanations name it, e.g. the name in backticks and its where: page_viewed where section = services."""

    def matches(self, props: Mapping[str, Any]) -> bool:
        for path, test in self.tests:  # noqa: SIM110 - a plain loop is the fastest form on the hot path
            if not test(props.get(path, MISSING)):
                return False
        return True


class Node(ABC):
    """A compiled condition."""

    __slots__ = ()

    @abstractmethod
    def evaluate(self, ctx: Context) -> Evidence | None:
        """The evidence of a satisfying match at ``ctx.now``, or ``None`` when not satisfied."""

    def window(self) -> int:
        """The longest look-back (ms) this condition needs from ``now``."""
        return 0

    @abstractmethod
    def explain(self, ctx: Context) -> Explanation:
        """Why this condition holds or not at ``ctx.now``: ``holds`` is ``evaluate``'s verdict."""


class EventNode(Node):
    """At least N matching events in ``[now - within, now]``; without ``within``, the arriving event."""

    __slots__ = ("cap", "count", "count_text", "matcher", "within")

    def __init__(
        self,
        matcher: Matcher,
        within: int | None,
        count: Callable[[int], bool] | None,
        cap: int,
        count_text: str = "",
    ) -> None:
        self.matcher = matcher
        self.within = within
        self.count = count
        self.cap = cap
        self.count_text = count_text
        """The count test in words (``≥ 3``), for explanations."""

    def evaluate(self, ctx: Context) -> Evidence | None:
        if self.within is None:
            arriving = ctx.arriving
            if arriving is not None and arriving.name == self.matcher.name and self.matcher.matches(arriving.props):
                return [arriving]
            return None
        hits = ctx.hits(self.matcher, ctx.now - self.within, self.cap)
        satisfied = self.count(len(hits)) if self.count is not None else bool(hits)
        return hits if satisfied else None

    def window(self) -> int:
        return self.within or 0

    def explain(self, ctx: Context) -> Explanation:
        holds = self.evaluate(ctx) is not None
        label = self.matcher.label
        if self.within is None:
            arriving = ctx.arriving
            if arriving is None:
                return Explanation(holds, f"{label} must be the arriving event: none is stored to judge")
            what = "is" if holds else "is not"
            return Explanation(holds, f"the arriving `{arriving.name}` at {iso(arriving.ts)} {what} {label}")
        low = ctx.now - self.within
        found = len(ctx.hits(self.matcher, low, self.cap))
        span = f"in [{iso(low)}, {iso(ctx.now)}]"
        if self.count is not None:
            return Explanation(
                holds, f"count of {label} in {format_duration(self.within)}: {found}, needs {self.count_text}"
            )
        if not found:
            return Explanation(holds, f"{label}: no matching event {span}")
        return Explanation(holds, f"{label}: {found} matching event(s) {span}")


class SequenceNode(Node):
    """Steps matched in order (strictly increasing (timestamp, event id)) inside ``[now - within, now]``.

    Evidence is every event that takes part in at least one complete chain: with add_to_cart at
    10:00 and 10:20 and checkout_viewed at 10:30 (within 1h), both adds are evidence, so a cart
    reminder can list them all.
    """

    __slots__ = ("cap", "steps", "within")

    def __init__(self, steps: Sequence[Matcher], within: int, cap: int) -> None:
        self.steps = tuple(steps)
        self.within = within
        self.cap = cap

    def _chain(self, ctx: Context) -> tuple[list[list[StoredEvent]], list[tuple[int, str]]]:
        """Each step's hits, and ``done``: ``done[i]`` is the earliest key at which steps 0..i-1 can
        all be complete (greedy earliest is optimal); it stops at the first step with no match, so
        ``len(done) == len(steps) + 1`` exactly when the sequence is complete.

        Events are ordered by (timestamp, event id): two back-to-back calls in one millisecond
        still form a sequence, in the order of their ids (the SDK's ids increase in creation order).
        Steps are looked at in order, so a chain broken early costs no scan of later steps.
        """
        low = ctx.now - self.within
        candidates: list[list[StoredEvent]] = []
        done: list[tuple[int, str]] = [(low - 1, "")]
        for step in self.steps:
            items = ctx.hits(step, low, self.cap)
            previous = done[-1]
            found = next((key for e in items if (key := (e.ts, e.id)) > previous), None)
            if found is None:
                break
            candidates.append(items)
            done.append(found)
        return candidates, done

    def evaluate(self, ctx: Context) -> Evidence | None:
        now = ctx.now
        count = len(self.steps)
        candidates, done = self._chain(ctx)
        if len(done) <= count:
            return None
        # start[i]: the latest key at which steps i..count-1 can all still begin.
        start: list[tuple[int, str]] = [(now + 1, "")] * (count + 1)
        for index in range(count - 1, -1, -1):
            following = start[index + 1]
            start[index] = max(key for e in candidates[index] if (key := (e.ts, e.id)) < following)
        evidence: dict[str, StoredEvent] = {}
        for index, items in enumerate(candidates):
            before, after = done[index], start[index + 1]
            for e in items:
                if before < (e.ts, e.id) < after:
                    evidence[e.id] = e
        return list(evidence.values())

    def window(self) -> int:
        return self.within

    def explain(self, ctx: Context) -> Explanation:
        holds = self.evaluate(ctx) is not None
        _, done = self._chain(ctx)
        parts = []
        for index, step in enumerate(self.steps):
            number = f"step {index + 1} {step.label}"
            if index + 1 < len(done):
                parts.append(
                    Explanation(True, f"{number}: first match after the step before at {iso(done[index + 1][0])}")
                )
            elif index + 1 == len(done):
                if index == 0:
                    span = f"in [{iso(ctx.now - self.within)}, {iso(ctx.now)}]"
                else:
                    span = f"after the step before, in ({iso(done[index][0])}, {iso(ctx.now)}]"
                parts.append(Explanation(False, f"{number}: no matching event {span}"))
            else:
                parts.append(Explanation(False, f"{number}: not reached"))
        says = f"sequence of {len(self.steps)} steps in order within {format_duration(self.within)}"
        return Explanation(holds, says, tuple(parts))


class AllNode(Node):
    __slots__ = ("children",)

    def __init__(self, children: Sequence[Node]) -> None:
        self.children = tuple(children)

    def evaluate(self, ctx: Context) -> Evidence | None:
        evidence: Evidence = []
        for child in self.children:
            found = child.evaluate(ctx)
            if found is None:
                return None
            evidence.extend(found)
        return evidence

    def window(self) -> int:
        return max((child.window() for child in self.children), default=0)

    def explain(self, ctx: Context) -> Explanation:
        parts = tuple(child.explain(ctx) for child in self.children)
        met = sum(part.holds for part in parts)
        return Explanation(self.evaluate(ctx) is not None, f"all of {len(parts)}: {met} hold", parts)


class AnyNode(AllNode):
    __slots__ = ()

    def evaluate(self, ctx: Context) -> Evidence | None:
        evidence: Evidence | None = None
        for child in self.children:
            found = child.evaluate(ctx)
            if found is not None:
                evidence = found if evidence is None else evidence + found
        return evidence

    def explain(self, ctx: Context) -> Explanation:
        parts = tuple(child.explain(ctx) for child in self.children)
        met = sum(part.holds for part in parts)
        return Explanation(self.evaluate(ctx) is not None, f"any of {len(parts)}: {met} hold", parts)


class NotNode(Node):
    """True when the child is false; contributes no evidence, so it can never arm a rule by itself."""

    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def evaluate(self, ctx: Context) -> Evidence | None:
        return [] if self.child.evaluate(ctx) is None else None

    def window(self) -> int:
        return self.child.window()

    def explain(self, ctx: Context) -> Explanation:
        part = self.child.explain(ctx)
        return Explanation(self.evaluate(ctx) is not None, "not: the part below must not hold", (part,))


class AttributeNode(Node):
    """A test on a profile trait (dotted paths reach into nested traits)."""

    __slots__ = ("path", "test", "test_text")

    def __init__(self, path: str, test: Predicate, test_text: str = "") -> None:
        self.path = path
        self.test = test
        self.test_text = test_text
        """The test in words (``= trial``), for explanations."""

    def evaluate(self, ctx: Context) -> Evidence | None:
        return [] if self.test(resolve(ctx.profile, self.path)) else None

    def explain(self, ctx: Context) -> Explanation:
        value = resolve(ctx.profile, self.path)
        if value is MISSING:
            shown = "not set"
        elif self.path.split(".")[0] in _ADDRESSES:
            shown = "set (an address: not shown)"
        else:
            shown = repr(value)
        return Explanation(self.evaluate(ctx) is not None, f"trait `{self.path}` {self.test_text}: it is {shown}")


class TrendNode(Node):
    """Counts in the last ``periods`` periods ending now are strictly monotonic.

    Periods are half-open, newest first: ``(now - period, now]``, ``(now - 2*period, now - period]``...
    so each event falls in exactly one.
    """

    __slots__ = ("cap", "increasing", "matcher", "period", "periods")

    def __init__(self, matcher: Matcher, period: int, periods: int, increasing: bool, cap: int) -> None:
        self.matcher = matcher
        self.period = period
        self.periods = periods
        self.increasing = increasing
        self.cap = cap

    def _counts(self, ctx: Context) -> tuple[list[StoredEvent], list[int]]:
        """The hits of the whole span, and the count in each period, oldest first."""
        now, period, periods = ctx.now, self.period, self.periods
        hits = ctx.hits(self.matcher, now - period * periods + 1, self.cap)
        counts = [0] * periods
        for e in hits:
            counts[periods - 1 - (now - e.ts) // period] += 1
        return hits, counts

    def evaluate(self, ctx: Context) -> Evidence | None:
        hits, counts = self._counts(ctx)
        pairs = list(pairwise(counts))
        if self.increasing:
            ok = all(older < newer for older, newer in pairs)
        else:
            ok = all(older > newer for older, newer in pairs)
        return hits if ok else None

    def window(self) -> int:
        return self.period * self.periods

    def explain(self, ctx: Context) -> Explanation:
        holds = self.evaluate(ctx) is not None
        _, counts = self._counts(ctx)
        direction = "increasing" if self.increasing else "decreasing"
        verdict = "strictly" if holds else "not strictly"
        says = (
            f"{self.matcher.label} per {format_duration(self.period)}, {self.periods} periods oldest first: "
            f"{', '.join(map(str, counts))}: {verdict} {direction}"
        )
        return Explanation(holds, says)
