"""Property tests (``eq``, ``gt``, ``in`` ...) compiled once into plain predicates.

Comparisons are typed on purpose: numbers compare with numbers, strings with strings, and a
boolean is never equal to 1. A test on a missing property is false, except ``ne``, ``not_in``
and ``exists: false``, which ask for absence.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

MISSING: Final[Any] = object()

Predicate = Callable[[Any], bool]


def resolve(document: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path of nested objects, or ``MISSING``."""
    if "." not in path:
        return document.get(path, MISSING)
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return MISSING
        current = current[part]
    return current


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _ordered(op: str, operand: Any) -> Predicate:
    numeric = _is_number(operand)

    def comparable(value: Any) -> bool:
        return _is_number(value) if numeric else isinstance(value, str)

    if op == "gt":
        return lambda value: comparable(value) and value > operand
    if op == "gte":
        return lambda value: comparable(value) and value >= operand
    if op == "lt":
        return lambda value: comparable(value) and value < operand
    return lambda value: comparable(value) and value <= operand


def _contains(operand: Any) -> Predicate:
    def test(value: Any) -> bool:
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        if isinstance(value, list):
            return any(equal(item, operand) for item in value)
        return False

    return test


def compile_operator(op: str, operand: Any) -> Predicate:
    """One operator as a predicate over a property value (``MISSING`` when absent)."""
    if op == "eq":
        if type(operand) is str:
            # Same result as ``equal`` (a string only equals a string), without its type checks:
            # string equality is the commonest test on the hot path (``sku: X``, ``section: Y``).
            return lambda value: type(value) is str and value == operand
        return lambda value: value is not MISSING and equal(value, operand)
    if op == "ne":
        return lambda value: value is MISSING or not equal(value, operand)
    if op in ("gt", "gte", "lt", "lte"):
        return _ordered(op, operand)
    if op == "in":
        options = list(operand)
        return lambda value: value is not MISSING and any(equal(value, option) for option in options)
    if op == "not_in":
        options = list(operand)
        return lambda value: value is MISSING or not any(equal(value, option) for option in options)
    if op == "contains":
        return _contains(operand)
    if op == "exists":
        wanted = bool(operand)
        return lambda value: (value is not MISSING and value is not None) is wanted
    if op == "prefix":
        return lambda value: isinstance(value, str) and value.startswith(operand)
    raise ValueError(f"unknown operator {op!r}")


def compile_test(test: Mapping[str, Any]) -> Predicate:
    """All operators of one test must hold (``{gte: 10, lt: 100}`` is a range)."""
    checks = [compile_operator(op, operand) for op, operand in test.items()]
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


_COUNT_COMPARISONS: Final[dict[str, Callable[[int, int], bool]]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def compile_count(test: Mapping[str, int]) -> Callable[[int], bool]:
    """A count test; counts and operands are whole numbers, so no type checks are needed."""
    checks = [(_COUNT_COMPARISONS[op], n) for op, n in test.items()]
    if len(checks) == 1:
        [(compare, n)] = checks
        return lambda count: compare(count, n)
    return lambda count: all(compare(count, n) for compare, n in checks)


def count_capacity(test: Mapping[str, int]) -> int:
    """How many of the newest matching events must be remembered to decide this count exactly."""
    need = 1
    for op, n in test.items():
        need = max(need, n if op == "gte" else n + 1)
    return need


_SYMBOLS: Final[dict[str, str]] = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "prefix": "starts with",
}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def describe_test(test: Mapping[str, Any]) -> str:
    """A property or trait test as a person reads it: ``= services``, ``≥ 10 and < 100``, ``exists``."""
    parts = []
    for op, operand in test.items():
        if op == "exists":
            parts.append("exists" if operand else "is absent")
        else:
            parts.append(f"{_SYMBOLS.get(op, op)} {_shown(operand)}")
    return " and ".join(parts)


def describe_count(test: Mapping[str, int]) -> str:
    """A count test as a person reads it: ``≥ 3``."""
    return " and ".join(f"{_SYMBOLS[op]} {n}" for op, n in test.items())
