"""Lambda event filters for the evaluator's stream mapping, generated from the deployed rules.

Shared by ``infra/`` (which writes them into the event source mapping) and ``nudge local`` (which
applies them itself, because moto does not evaluate filter criteria).

A mapping takes at most 5 filters (ORed), each pattern at most 4096 characters. Records pass if:
- ``data.event`` names an event some rule references (or ``identify``, which feeds the profile, or a
  consent event, which every customer's record needs whatever the rules read);
- ``data.type`` is ``nudge.timer`` (a wait coming due);
- ``data.event`` is missing, null or empty, so that JSON without a valid event reaches the
  function and is parked in the rejected-events queue with a reason instead of vanishing.
Records whose data is not JSON never match a data filter: Lambda drops them before invoking the
function (counted in the mapping's metrics). The README lists what is and is not caught.
"""

from __future__ import annotations

import json
from typing import Any

from ..contracts import CONSENT_EVENTS, ERASURE_REQUESTED, FEEDBACK_EVENTS, IDENTIFY, TIMER_TYPE
from ..engine import Plan

MAX_FILTERS = 5
MAX_PATTERN_CHARS = 4096


class TooManyEventNames(ValueError):
    """The referenced event names do not fit in the filters a mapping allows."""


def _pattern(data: dict[str, object]) -> str:
    return json.dumps({"data": data}, separators=(",", ":"))


def passing_names(plan: Plan) -> frozenset[str]:
    """The event names the mapping lets through: what the rules reference, and what every customer's
    record needs whatever they read (identify, consent, erasure, message events). ``nudge replay``
    reads no further than the name and the time of a line whose event is not one of them."""
    return frozenset({*plan.referenced_events(), IDENTIFY, ERASURE_REQUESTED, *CONSENT_EVENTS, *FEEDBACK_EVENTS})


def event_filter_patterns(plan: Plan) -> list[str]:
    """The filter patterns (JSON strings) for the plan's referenced events, timers and bad JSON.

    Consent and message events always pass: the engine applies every consent change, and the
    evaluator records every message event against its firing (the activations table).
    """
    names = sorted(passing_names(plan))
    fixed = [
        _pattern({"type": [TIMER_TYPE]}),
        _pattern({"event": [{"exists": False}]}),
        _pattern({"event": [None, ""]}),
    ]
    chunks: list[list[str]] = [[]]
    for name in names:
        if len(_pattern({"event": [*chunks[-1], name]})) > MAX_PATTERN_CHARS:
            chunks.append([])
        chunks[-1].append(name)
    patterns = [_pattern({"event": chunk}) for chunk in chunks] + fixed
    if len(patterns) > MAX_FILTERS:
        raise TooManyEventNames(
            f"the rules reference {len(names)} event names, more than fit in {MAX_FILTERS - len(fixed)} "
            f"filter(s) of {MAX_PATTERN_CHARS} characters; shorten event names or ask AWS for 10 filters"
        )
    return patterns


def _value_matches(value: Any, present: bool, rules: list[Any]) -> bool:
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if present is bool(rule["exists"]):
                return True
        elif present and value == rule and type(value) is type(rule):
            return True
    return False


def _pattern_matches(pattern: dict[str, Any], document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    for field, expected in pattern.items():
        present = field in document
        if isinstance(expected, dict):
            if not present or not _pattern_matches(expected, document[field]):
                return False
        elif not _value_matches(document.get(field), present, expected):
            return False
    return True


def record_passes(patterns: list[str], data: bytes) -> bool:
    """What Lambda does with a Kinesis record and these filters (the subset Nudge generates):
    data that is not a JSON object matches no data filter and is dropped."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    except RecursionError:
        return True  # nested past what we can read: let the function refuse it, with its reason
    wrapped = {"data": document}
    return any(_pattern_matches(json.loads(pattern), wrapped) for pattern in patterns)
