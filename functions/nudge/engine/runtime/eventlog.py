"""A customer's stored events, by name, and the one place the retention rule is applied.

The retention rule: an event some filter matches is kept while it lies within the longest horizon
of the filters it matches (counted back from the customer's ``now``), and while, for at least one
filter it matches, it is among the newest ``cap`` stored events that filter matches. Everything
else is forgotten, and once forgotten it never comes back: ``now`` only moves forward, and an event
that would be forgotten at once is not stored. The caps are per filter so that one rule's busy
filter cannot push out the events another rule needs.

``runtime/reference.py`` states the same rule naively; property tests hold this class to it.
What makes this one fast is private to it, and listed in ``ARCHITECTURE.md``:

- lists stay *packed* (``[id, ts, props]`` as the codec decoded them) until a name is read, so a
  batch that touches one of a busy customer's eight names does not build the other seven;
- each stored event memoizes its horizon and the filters it matches (``StoredEvent.horizon``,
  ``StoredEvent.filters``), computed once from the plan;
- a name with one filter, or fewer events than its smallest filter cap, needs no per-filter count;
- ``prune`` skips a name while its oldest event is younger than the name's shortest horizon
  (``route.floor``): nothing of it can be due, and it says when the next check is worth making.

Later, incremental aggregates (a count per filter and key, kept up to date on ``add`` and
``prune``) belong here too: every change to the stored events goes through these methods.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..plan.compiled import Filter, Route

NEVER = 1 << 62
"""Later than any epoch-ms timestamp."""


class StoredEvent:
    """An event the rules reference, reduced to the properties they read (flat dotted paths)."""

    __slots__ = ("filters", "horizon", "id", "name", "props", "ts")

    def __init__(self, id: str, name: str, ts: int, props: dict[str, Any], horizon: int | None = None) -> None:
        self.id = id
        self.name = name
        self.ts = ts
        self.props = props
        self.horizon = horizon
        """How long the filters it matches keep it (ms): the event log's memo, never encoded."""
        self.filters: list[Filter] | None = None
        """The filters it matches: the event log's memo, never encoded."""

    def sort_key(self) -> tuple[int, str]:
        return (self.ts, self.id)

    def copy(self) -> StoredEvent:
        """A copy that shares nothing mutable: what a pending wait keeps of its matched events."""
        return StoredEvent(self.id, self.name, self.ts, dict(self.props))

    def __repr__(self) -> str:
        return f"StoredEvent({self.name!r}, ts={self.ts}, id={self.id!r})"


Packed = list[list[Any]]
"""An event list as the codec reads and writes it: ``[id, ts - previous ts, props]`` items, oldest
first, the first one's time from zero (so ``packed[0][1]`` is the oldest event's time)."""


def _unpack(name: str, packed: Packed) -> list[StoredEvent]:
    items: list[StoredEvent] = []
    ts = 0
    for id_, delta, props in packed:
        ts += delta
        items.append(StoredEvent(id_, name, ts, props))
    return items


def _pack(items: list[StoredEvent]) -> Packed:
    packed: Packed = []
    previous = 0
    for e in items:
        packed.append([e.id, e.ts - previous, e.props])
        previous = e.ts
    return packed


def _ts(event: StoredEvent) -> int:
    return event.ts


_ID = attrgetter("id")
_FIRST = itemgetter(0)


class EventLog:
    """Stored events per name, oldest first (by ``(ts, id)``); ``of`` is the only way to read them."""

    __slots__ = ("_ids", "_lists", "_packed", "_scanned", "forgotten")

    def __init__(self, packed: dict[str, Packed] | None = None) -> None:
        """``packed`` is the codec's decoded ``"e"`` object, which the log takes over (it is not copied)."""
        self._lists: dict[str, list[StoredEvent]] = {}
        self._packed: dict[str, Packed] = {} if packed is None else packed
        self._ids: set[str] | None = None
        """The ids of every stored event, of any name: built on the second ``has_id``, memory only."""
        self._scanned = False
        self.forgotten: list[tuple[str, int]] = []
        """(id, ts) of the stored events forgotten since the owner last emptied it: the engine moves
        their ids into the id memory (``seen.py``) while the dedupe window still holds them."""

    # -- reading ---------------------------------------------------------------------------------

    def of(self, name: str) -> list[StoredEvent] | None:
        """The stored events named ``name``, oldest first, or ``None``. Callers must not change the list."""
        items = self._lists.get(name)
        if items is None:
            packed = self._packed.pop(name, None)
            if packed is None:
                return None
            items = self._lists[name] = _unpack(name, packed)
        return items

    def names(self) -> list[str]:
        return sorted([*self._lists, *self._packed])

    def all(self) -> dict[str, list[StoredEvent]]:
        """Every stored event by name: for tools and tests, which want to see it all."""
        return {name: list(self.of(name) or ()) for name in self.names()}

    def has_id(self, event_id: str) -> bool:
        """Whether an event with this id is stored, whatever its name (the ids of stored events are
        not kept again in the id memory: this answers for them)."""
        ids = self._ids
        if ids is not None:
            return event_id in ids
        if not self._scanned:
            # The first question of a decoded state is answered by comparing strings, in C; only a
            # second one (a customer with several events in a batch) builds the set, which hashes
            # every id and costs several times one scan.
            self._scanned = True
            return any(event_id in map(_ID, items) for items in self._lists.values()) or any(
                event_id in map(_FIRST, packed) for packed in self._packed.values()
            )
        ids = set()
        for items in self._lists.values():
            ids.update(map(_ID, items))
        for packed in self._packed.values():
            ids.update(map(_FIRST, packed))
        self._ids = ids
        return event_id in ids

    def _forget(self, events: list[StoredEvent]) -> None:
        ids, forgotten = self._ids, self.forgotten
        for e in events:
            forgotten.append((e.id, e.ts))
            if ids is not None:
                ids.discard(e.id)

    def __bool__(self) -> bool:
        return bool(self._lists) or bool(self._packed)

    def discard_oldest(self, count: int) -> int:
        """Forget the ``count`` oldest stored events, whatever their name (for a state too large to write).

        Returns how many were forgotten. Their ids go to ``forgotten``, as for any event let go.
        """
        events = sorted((e for name in self.names() for e in self.of(name) or ()), key=StoredEvent.sort_key)
        dropped = events[:count]
        gone = {id(e) for e in dropped}
        for name in self.names():
            kept = [e for e in self.of(name) or () if id(e) not in gone]
            if kept:
                self._lists[name] = kept
            else:
                self._lists.pop(name, None)
        self._forget(dropped)
        return len(dropped)

    # -- changing --------------------------------------------------------------------------------

    def add(self, route: Route, event: StoredEvent, filters: list[Filter], now: int) -> bool:
        """Store ``event`` (which ``filters`` of ``route`` match) if the retention rule keeps it at ``now``.

        False when it would be forgotten at once: it is older than its longest horizon, or, for
        every filter it matches, older than all the events that filter's cap keeps.
        """
        horizon = filters[0].horizon if len(filters) == 1 else max(item.horizon for item in filters)
        if event.ts < now - horizon:
            return False
        event.horizon = horizon
        event.filters = filters
        items = self.of(route.name)
        if items is None:
            items = self._lists[route.name] = []
        if len(items) >= route.cap_floor:
            # Only events the horizon still keeps compete for the caps' places.
            self._expire(route, items, now)
        bisect.insort(items, event, key=StoredEvent.sort_key)
        kept = True
        if len(items) > route.cap_floor:
            if route.single():
                oldest = items.pop(0)
                if oldest is event:
                    kept = False
                else:
                    self._forget([oldest])
            else:
                kept = self._cap(route, items, event)
        if kept and self._ids is not None:
            self._ids.add(event.id)
        return kept

    def _cap(self, route: Route, items: list[StoredEvent], added: StoredEvent) -> bool:
        """Apply the per-filter caps after ``added`` was inserted into ``items``; whether it is kept.

        Everything stored was kept before: for some filter it matches, fewer than that filter's cap
        newer events match it too. Adding one event raises that count by one, for events older than
        it, on the filters it matches; so for each of them at most one event crosses its cap (the
        one just past it), and is forgotten unless another filter of its own still keeps it.
        """
        added_filters = self._filters(route, added)
        for item in added_filters:
            crossing = self._newest_beyond(items, item)
            if crossing is None or crossing is added or crossing.sort_key() > added.sort_key():
                continue  # nothing older than the added event moved past this filter's cap
            theirs = self._filters(route, crossing)
            if (len(theirs) == 1 and theirs[0] is item) or not self._kept(route, items, crossing):
                items.remove(crossing)  # (kept by this filter alone, which just let it go)
                self._forget([crossing])
        if added is items[-1] or self._kept(route, items, added):
            return True
        items.remove(added)
        return False

    @staticmethod
    def _matched_by(event: StoredEvent, item: Filter) -> bool:
        """Whether ``item`` matches ``event``: by its memo when it has one, else by testing it (one
        filter's tests, cheaper than matching every filter of the name to fill the memo)."""
        known = event.filters
        return item in known if known is not None else item.matcher.matches(event.props)

    def _newest_beyond(self, items: list[StoredEvent], item: Filter) -> StoredEvent | None:
        """The newest event ``item`` matches that its cap does not keep (None when it keeps them all)."""
        seen, cap = 0, item.cap
        if len(items) <= cap:
            return None
        for e in reversed(items):
            if self._matched_by(e, item):
                seen += 1
                if seen > cap:
                    return e
        return None

    def _kept(self, route: Route, items: list[StoredEvent], event: StoredEvent) -> bool:
        """Whether, for some filter ``event`` matches, fewer than its cap newer events match it too."""
        filters = self._filters(route, event)
        newer = [0] * len(filters)
        for e in reversed(items):
            if e is event:
                return any(count < item.cap for count, item in zip(newer, filters, strict=True))
            for index, item in enumerate(filters):
                if self._matched_by(e, item):
                    newer[index] += 1
        return False

    def prune(self, routes: Mapping[str, Route], now: int) -> int:
        """Forget what the retention rule no longer keeps at ``now``; return when to look again.

        The answer is a time before which nothing stored can be due to be forgotten (``NEVER`` if
        nothing is stored): the caller may skip pruning until ``now`` reaches it.
        """
        next_due = NEVER
        for name in list(self._lists):
            route = routes.get(name)
            if route is None:
                self._forget(self._lists.pop(name))
                continue
            next_due = min(next_due, self._prune_list(route, self._lists[name], now))
        for name, packed in list(self._packed.items()):
            route = routes.get(name)
            if route is None:
                self._forget(_unpack(name, self._packed.pop(name)))
            elif packed[0][1] < now - route.floor or len(packed) > route.cap_total:
                # Something to forget: unpack it (rarely; a packed list is otherwise left as it is).
                next_due = min(next_due, self._prune_list(route, self.of(name) or [], now))
            else:
                next_due = min(next_due, packed[0][1] + route.floor + 1)
        return next_due

    def _expire(self, route: Route, items: list[StoredEvent], now: int) -> None:
        """Drop the events of ``items`` that are past their own horizon at ``now``."""
        if items and items[0].ts < now - route.floor:
            # Past the shortest horizon of the name, each event is kept for the longest horizon
            # among the filters it matches itself. Nothing is forgotten before
            # items[0].ts + floor, which is what prune's returned time relies on.
            oldest = bisect.bisect_left(items, now - route.horizon, key=_ts)
            kept_all = bisect.bisect_left(items, now - route.floor, key=_ts)
            kept = [e for e in items[oldest:kept_all] if e.ts >= now - self._horizon(route, e)]
            if len(kept) < kept_all:
                staying = {id(e) for e in kept}
                self._forget([e for e in items[:kept_all] if id(e) not in staying])
            items[:kept_all] = kept

    def _prune_list(self, route: Route, items: list[StoredEvent], now: int) -> int:
        self._expire(route, items, now)
        if len(items) > route.cap_total:
            self._forget(items[: len(items) - route.cap_total])
            del items[: len(items) - route.cap_total]  # only after the plan's caps shrank
        if not items:
            self._lists.pop(route.name, None)
            return NEVER
        return items[0].ts + route.floor + 1

    @staticmethod
    def _filters(route: Route, event: StoredEvent) -> list[Filter]:
        found = event.filters
        if found is None:
            found = event.filters = route.match(event.props)
        return found

    @staticmethod
    def _horizon(route: Route, event: StoredEvent) -> int:
        horizon = event.horizon
        if horizon is None:
            horizon = event.horizon = route.horizon_of(event.props)
        return horizon

    # -- encoding --------------------------------------------------------------------------------

    def encode(self) -> dict[str, Packed]:
        """Names in sorted order, so the same log always encodes to the same bytes."""
        lists, packed = self._lists, self._packed
        return {name: _pack(items) if (items := lists.get(name)) is not None else packed[name] for name in self.names()}

    @classmethod
    def of_events(cls, events: Mapping[str, list[StoredEvent]]) -> EventLog:
        """A log holding these lists (each oldest first), as they are: for a state rebuilt in memory."""
        log = cls()
        log._lists = {name: list(items) for name, items in events.items() if items}
        return log


def unflatten(props: dict[str, Any]) -> dict[str, Any]:
    """Stored properties are flat dotted paths (the rules' projection): a firing lists them nested again."""
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
