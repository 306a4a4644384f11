"""Customer state as bytes: schema v2, compact JSON, the same state always the same bytes.

The layout (``tests/unit/golden/state_v2.json`` pins it byte for byte)::

    {"v": 2, "c": customer id, "n": now,
     "e": {event name: [[id, ts - previous ts, props], ...]},
                                                          # names sorted, events oldest first, the
                                                          # first one's time whole
     "p": {trait: [value, ts]},
     "r": {"rule" or "rule|key": [last_arm, last_fired, pending or null(, [later pending, ...](, [recent arm, ...]))]},
     "d": [oldest s, "digests", [s - oldest, ...]],      # ids seen, in the order seen (seen.py); if any
     "k": {channel: [[ts, granted, source], ...]},        # consent changes, oldest first; if any
     "h": [[rule, key, arm, fired_at, send_at, consent_at, [[name, id, ts, props], ...]], ...],
                                                          # firings held for their send time; if any
     "o": [[send_at, channel(, rule, key)], ...],         # the sends caps count, oldest first; if any
     "g": {channel: [engaged, [send, ...]]},              # disengagement: last open/click, sends since; if any
     "l": [[string, ...], [[at - previous at, rule, kind code(, key(, reason))], ...]],
                                                          # the latest decisions, oldest first; if any
     "z": erased at,                                      # the customer's erasure (event time); if any
     "m": [plan fingerprint, time]}                       # the prune memo (Engine.prune); if known
    a held escalation step appends [step, since, prev, undecided] to its "h" entry
    pending = [arm, due, [[name, id, ts, props], ...]]

A (rule, key) rarely has more than one pending wait (an arming after one wait's due time, before
the allowed lateness has passed); the later ones are a fourth element, written only when there
are any, so every other state keeps its bytes. So are a wait rule's earlier arm times within the
allowed lateness (``RuleState.recent``), the fifth element, when two armings came that close.

The prune memo ``"m"`` says that, under the plan of that fingerprint, nothing stored is due to be
forgotten before the customer's ``now`` reaches the time: a decoded state trusts it under the same
rules and policy, and otherwise prunes in full, as a state without one does. Earlier writers stored
another memo as ``"x"``, bound to no plan; it is read and ignored. They did not write ``"d"`` (the ids
seen, ``seen.py``), ``"k"`` (consent), ``"h"`` or ``"o"`` (held firings, sends), ``"l"`` (decisions)
or ``"z"`` (an erasure); a state without
them has seen no ids, heard no consent, holds nothing and has sent nothing, and readers that
predate them ignore them.

v1 is v2 with each stored event's time whole. It is read (its lists turned into v2's form once, on
decode) and written back as v2. A release before v2 refuses a v2 state by its version, so going
back past it means the states it wrote cannot be read (the README's release notes say so).
A state's decision log gives way, oldest first, where the state would pass ``LOG_WITHIN`` (4 KiB).

orjson writes this about three times faster than the stdlib, which made encoding half of the
engine's time before; integers beyond 64 bits (only from events handed over as Python objects)
fall back to the stdlib.
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

import orjson

from .eventlog import NEVER, EventLog, StoredEvent
from .seen import SeenIds
from .state import CustomerState, Held, Pending, RuleState

SCHEMA_VERSION = 2
"""What ``encode_state`` writes. v1 (read still) stored each event's time whole; v2 stores the
difference from the event before it in the list, about six bytes less an event."""
PROFILE_VERSION = 1
_FIRST = itemgetter(0)
_SEP = "|"  # rule ids are [a-z0-9_]+, so the first "|" always splits rule id from key


def to_dict(state: CustomerState) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for (rule_id, key), rs in state.rules.items():
        entry: list[Any] = [rs.last_arm, rs.last_fired, _encode_pending(rs.waits[0]) if rs.waits else None]
        if len(rs.waits) > 1 or rs.recent:
            entry.append([_encode_pending(wait) for wait in rs.waits[1:]])
        if rs.recent:
            entry.append(rs.recent)
        rules[rule_id if key is None else f"{rule_id}{_SEP}{key}"] = entry
    data = {
        "v": SCHEMA_VERSION,
        "c": state.customer_id,
        "n": state.now,
        "e": state.events.encode(),
        "p": state.profile,
        "r": rules,
    }
    if state.seen:
        data["d"] = state.seen.encode()
    if state.consent:
        data["k"] = state.consent
    if state.held:
        data["h"] = [_encode_held(h) for h in state.held]
    if state.sent:
        data["o"] = state.sent
    if state.engagement:
        data["g"] = state.engagement
    packed = state.packed_log()
    if packed:
        data["l"] = packed  # never unpacked: written back as it was read
    elif packed is None and state.log:
        data["l"] = _encode_log(state.log)
    if state.erased_at is not None:
        data["z"] = state.erased_at
    memo = state.prune_due
    if memo is not None and memo[1] < NEVER:
        data["m"] = list(memo)
    return data


_KIND_CODES = {
    "armed": "a",
    "fired": "f",
    "cancelled": "c",
    "superseded": "s",
    "held": "h",
    "suppressed_audience": "sa",
    "suppressed_cooldown": "sd",
    "suppressed_consent": "sc",
    "suppressed_bounced": "sb",
    "suppressed_complaint": "sm",
    "suppressed_cap": "sk",
    "suppressed_disengaged": "se",
    "skipped_unreachable": "su",
    "invalid_timezone": "iz",
}
"""The decision log's kinds, as stored: a code per kind (a kind without one is stored as it is)."""
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


def _encode_log(log: list[list[Any]]) -> list[Any]:
    """The decision log, compactly: ``[strings, [[at - previous at, rule, kind code(, key(, reason))], ...]]``.

    Every state carries its log, so its bytes count: times as differences (the first from zero),
    kinds as codes, and rules, keys and reasons as indexes into one list of the distinct strings
    (a customer's log repeats them: the same rule, the same cap, the same consent), a key or a
    reason that is absent as ``-1``. About a quarter of the plain form.
    """
    packed: list[Any] = [[], []]
    append_log(packed, log, 0)
    return packed


def append_log(packed: list[Any], log: list[list[Any]], previous: int) -> None:
    """Add ``log``'s entries to the end of a packed log whose newest entry is at ``previous``.

    What comes out is what ``_encode_log`` makes of the whole log at once (strings are numbered in
    order of first use, which appending keeps), so a state's bytes do not depend on whether its
    log was unpacked on the way.
    """
    strings, entries = packed
    numbers = {text: number for number, text in enumerate(strings)}
    codes = _KIND_CODES
    for at, rule, kind, *rest in log:
        number = numbers.get(rule)
        if number is None:
            number = numbers[rule] = len(strings)
            strings.append(rule)
        entry: list[Any] = [at - previous, number, codes.get(kind, kind)]
        for text in rest:
            if text is None:
                entry.append(-1)
                continue
            number = numbers.get(text)
            if number is None:
                number = numbers[text] = len(strings)
                strings.append(text)
            entry.append(number)
        entries.append(entry)
        previous = at


def trim_log(packed: list[Any], size: int) -> None:
    """Keep a packed log's newest ``size`` entries, in place, as ``_encode_log`` would write them:
    the first kept entry's time made absolute, the strings renumbered in order of first use."""
    strings, entries = packed
    if len(entries) <= size:
        return
    if size <= 0:
        packed[0], packed[1] = [], []
        return
    dropped = len(entries) - size
    start = sum(map(_FIRST, entries[: dropped + 1]))
    kept = entries[dropped:]
    kept[0] = [start, *kept[0][1:]]
    numbers: dict[int, int] = {-1: -1}
    used: list[str] = []
    for entry in kept:
        for place in range(1, len(entry)):
            if place == 2:
                continue  # the kind's code, not a string's number
            number = numbers.get(entry[place])
            if number is None:
                number = numbers[entry[place]] = len(used)
                used.append(strings[entry[place]])
            entry[place] = number
    packed[0], packed[1] = used, kept


def newest_logged(packed: list[Any]) -> int:
    """The time of a packed log's newest entry (0 for none): the sum of its differences."""
    return sum(map(_FIRST, packed[1]))


def decode_log(packed: list[Any]) -> list[list[Any]]:
    strings, entries = packed
    kinds = _KINDS
    log: list[list[Any]] = []
    at = 0
    for entry in entries:
        at += entry[0]
        item = [at, strings[entry[1]], kinds.get(entry[2], entry[2])]
        for number in entry[3:]:
            item.append(None if number < 0 else strings[number])
        log.append(item)
    return log


def _encode_held(held: Held) -> list[Any]:
    entry: list[Any] = [
        held.rule,
        held.key,
        held.arm,
        held.fired_at,
        held.send_at,
        held.consent_at,
        [_encode_event(e) for e in held.matched],
    ]
    if held.step:
        entry.append([held.step, held.since, held.prev, held.undecided])
    return entry


def _decode_held(entry: list[Any]) -> Held:
    rule, key, arm, fired_at, send_at, consent_at, matched, *step = entry
    held = Held(rule, key, arm, fired_at, send_at, consent_at, [_decode_event(e) for e in matched])
    if step:
        held.step, held.since, held.prev, held.undecided = step[0]
    return held


LOG_WITHIN = 4096
"""The size (bytes) past which a state's decision log gives way, oldest entries first: the log
explains and decides nothing, and it must not make the busiest customers' items cost another
write unit (DynamoDB charges by the kilobyte). What else a state holds is never trimmed for it."""


def encode_state(state: CustomerState) -> bytes:
    """The state's bytes; where they would pass ``LOG_WITHIN``, the decision log's oldest entries are
    dropped from the state itself, until the bytes fit or the log is empty, so what is kept in
    memory is what was written. Every writer encodes through here (the evaluator, ``nudge local``,
    the bench); replay, which keeps its states in memory, keeps the whole log."""
    data = to_dict(state)
    raw = _dumps(data)
    if len(raw) > LOG_WITHIN and "l" in data:
        # Room for the log's value: the limit less everything else (its ``,"l":`` is counted as other bytes).
        data["l"] = _log_within(data["l"], LOG_WITHIN - (len(raw) - len(_dumps(data["l"]))))
        state.log = []
        if data["l"] is None:
            del data["l"]
        else:
            state._log, state._log_packed = None, data["l"]
        raw = _dumps(data)
    return raw


def _log_within(packed: list[Any], room: int) -> list[Any] | None:
    """The newest entries of a packed log that encode in ``room`` bytes (``None``: not one fits)."""

    def kept(count: int) -> list[Any]:
        trimmed = [list(packed[0]), [list(entry) for entry in packed[1]]]
        trim_log(trimmed, count)
        return trimmed

    low, high = 0, len(packed[1])  # the answer lies in [low, high]: 0 entries always fit
    while low < high:
        middle = (low + high + 1) // 2
        if len(_dumps(kept(middle))) <= room:
            low = middle
        else:
            high = middle - 1
    return kept(low) if low else None


def _dumps(data: Any) -> bytes:
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def encode_profile(state: CustomerState) -> bytes | None:
    """The durable part of a state: ``{"v": 1, "p": traits, "k": consent}`` (``None``: nothing to keep).

    The evaluator keeps it in an item of its own that outlives the behaviour's TTL, so a customer
    who identified long ago still has an address, and an opt-out is never forgotten.
    """
    if not state.profile and not state.consent:
        return None
    data = {"v": PROFILE_VERSION, "p": state.profile, "k": state.consent}
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def apply_profile(state: CustomerState, raw: bytes) -> None:
    """Give ``state`` (one with no behaviour stored) the traits and consent ``encode_profile`` kept."""
    data = orjson.loads(raw)
    if data.get("v") != PROFILE_VERSION:
        raise ValueError(f"customer profile schema v{data.get('v')} is not supported (expected v{PROFILE_VERSION})")
    state.profile = data["p"]
    state.consent = data.get("k") or {}


def from_dict(data: dict[str, Any]) -> CustomerState:
    version = data.get("v")
    if version == 1:
        data["e"] = {name: _differences(items) for name, items in data["e"].items()}
    elif version != SCHEMA_VERSION:
        raise ValueError(f"customer state schema v{version} is not supported (expected v1 or v{SCHEMA_VERSION})")
    state = CustomerState(data["c"], EventLog(data["e"]), SeenIds.decode(data.get("d")))
    state.now = data["n"]
    state.profile = data["p"]
    state.consent = data.get("k") or {}
    state.held = [_decode_held(entry) for entry in data.get("h") or ()]
    state.sent = data.get("o") or []
    state.engagement = data.get("g") or {}
    if data.get("l"):
        state._log, state._log_packed = None, data["l"]  # unpacked when read (``CustomerState.log``)
    state.erased_at = data.get("z")
    memo = data.get("m")
    if memo:
        state.prune_due = (memo[0], memo[1])
    for packed_key, entry in data["r"].items():
        rule_id, _, key = packed_key.partition(_SEP)
        last_arm, last_fired, pending, *more = entry
        waits = [] if pending is None else [_decode_pending(pending)]
        if more:
            waits += [_decode_pending(item) for item in more[0]]
        recent = list(more[1]) if len(more) > 1 else None
        state.rules[(rule_id, key if _SEP in packed_key else None)] = RuleState(last_arm, last_fired, waits, recent)
    return state


def _differences(items: list[list[Any]]) -> list[list[Any]]:
    """A v1 event list (whole times) in v2's form (each time less the one before it)."""
    previous = 0
    for item in items:
        item[1], previous = item[1] - previous, item[1]
    return items


def decode_state(raw: bytes | str) -> CustomerState:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = json.loads(raw)  # NaN or Infinity, which older writers could store
    return from_dict(data)


def _encode_pending(wait: Pending) -> list[Any]:
    return [wait.arm, wait.due, [_encode_event(e) for e in wait.matched]]


def _decode_pending(item: list[Any]) -> Pending:
    arm, due, matched = item
    return Pending(arm, due, [_decode_event(e) for e in matched])


def _encode_event(event: StoredEvent) -> list[Any]:
    return [event.name, event.id, event.ts, event.props]


def _decode_event(item: list[Any]) -> StoredEvent:
    name, id_, ts, props = item
    return StoredEvent(id_, name, ts, props)
