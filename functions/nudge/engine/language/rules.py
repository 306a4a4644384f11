"""The rule language as pydantic models: what a rule file may say, checked field by field.

Structural checks (types, unknown keys, operators, durations) live in the models; checks that
need the whole rule (``unless`` needs ``wait``, history needs ``within``) live in ``checks``, so
each problem can still point at the line it concerns.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ...contracts import ERASURE_REQUESTED
from .durations import parse_duration

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists", "prefix")
COUNT_OPERATORS = ("gte", "gt", "eq", "lte", "lt")
CHANNELS = ("email", "sms", "push", "webhook", "event")
RULE_ID = re.compile(r"^[a-z0-9_]+$")
PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")

Duration = Annotated[int, BeforeValidator(parse_duration)]
Loc = tuple[str | int, ...]


class OperatorError(ValueError):
    """A problem with one operator of a test (``gtt: 5``, ``in: PT``) or of a count.

    pydantic locates the error at the whole test; the loader reads ``operator`` to point at its own line.
    """

    def __init__(self, operator: str, message: str) -> None:
        super().__init__(message)
        self.operator = operator


def _check_operator_value(op: str, value: Any) -> None:
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise OperatorError(op, f"operator '{op}' takes a list, e.g. {op}: [PT, ES], not {value!r}")
    elif op == "exists":
        if not isinstance(value, bool):
            raise OperatorError(op, f"operator 'exists' takes true or false, not {value!r}")
    elif op == "prefix":
        if not isinstance(value, str):
            raise OperatorError(op, f"operator 'prefix' takes a string, not {value!r}")
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise OperatorError(op, f"operator '{op}' compares with a number or a string, not {value!r}")
    elif op == "contains" and isinstance(value, dict | list):
        raise OperatorError(op, "operator 'contains' takes a single value (a substring or a list element)")


def normalize_test(value: Any) -> dict[str, Any]:
    """``VALUE`` means ``{eq: VALUE}``; a mapping must hold operators only."""
    if not isinstance(value, dict):
        return {"eq": value}
    if not value:
        raise ValueError(f"an empty test: give an operator, one of {', '.join(OPERATORS)}")
    for op, operand in value.items():
        if op not in OPERATORS:
            raise OperatorError(str(op), f"unknown operator '{op}': use one of {', '.join(OPERATORS)}")
        _check_operator_value(op, operand)
    return dict(value)


def _normalize_count(value: Any) -> dict[str, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"gte": value}
    if not isinstance(value, dict) or not value:
        raise ValueError("count takes a comparison such as {gte: 3}")
    for op, operand in value.items():
        if op not in COUNT_OPERATORS:
            raise OperatorError(str(op), f"unknown count operator '{op}': use one of {', '.join(COUNT_OPERATORS)}")
        if isinstance(operand, bool) or not isinstance(operand, int) or operand < 0:
            raise OperatorError(op, f"count {op} takes a whole number ≥ 0, not {operand!r}")
    return dict(value)


def _check_path(value: str, what: str) -> str:
    if not PATH.match(value):
        raise ValueError(f"{what} {value!r} is not a property path (names joined by dots, e.g. product.sku)")
    return value


PropertyTest = Annotated[dict[str, Any], BeforeValidator(normalize_test)]


def _check_where(value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for path in value:
        _check_path(path, "where key")
    return value


Where = Annotated[dict[str, PropertyTest], AfterValidator(_check_where)]
CountTest = Annotated[dict[str, int], BeforeValidator(_normalize_count)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EventFilter(_Strict):
    """``{event: NAME, where: ..., count: {gte: N}, within: DURATION}``."""

    event: str
    where: Where = Field(default_factory=dict)
    count: CountTest | None = None
    within: Duration | None = None

    @field_validator("event")
    @classmethod
    def _event_name(cls, value: str) -> str:
        if not EVENT_NAME.match(value):
            raise ValueError(f"event name {value!r} may hold letters, digits and _ . : - only")
        if value == ERASURE_REQUESTED:
            raise ValueError(f"{ERASURE_REQUESTED} erases the customer: no rule can read it")
        return value


class SequenceCondition(_Strict):
    sequence: list[EventFilter]
    within: Duration | None = None


class AllCondition(_Strict):
    all: list[Condition]


class AnyCondition(_Strict):
    any: list[Condition]


class NotCondition(_Strict):
    not_: Condition = Field(alias="not")


class AttributeCondition(_Strict):
    """``{attribute: country, in: [PT, ES]}``: a test on a profile trait."""

    attribute: str
    test: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _split_operators(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "attribute" not in data:
            return data
        ops = {k: v for k, v in data.items() if k != "attribute"}
        if not ops:
            raise ValueError("an attribute test needs an operator, e.g. {attribute: country, in: [PT, ES]}")
        return {"attribute": data["attribute"], "test": normalize_test(ops)}

    @field_validator("attribute")
    @classmethod
    def _attribute_path(cls, value: str) -> str:
        return _check_path(value, "attribute")


class TrendSpec(_Strict):
    event: str
    where: Where = Field(default_factory=dict)
    period: Duration
    periods: int = Field(ge=2, le=52)
    direction: Literal["increasing", "decreasing"]


class TrendCondition(_Strict):
    trend: TrendSpec


_KINDS = ("sequence", "all", "any", "not", "trend", "attribute", "event")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for kind in _KINDS:
            if kind in value:
                return kind
        return None
    return getattr(value, "kind", None)


Condition = Annotated[
    Annotated[SequenceCondition, Tag("sequence")]
    | Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")]
    | Annotated[TrendCondition, Tag("trend")]
    | Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[EventFilter, Tag("event")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition_kind",
        custom_error_message="a condition needs one of the keys: " + ", ".join(_KINDS),
    ),
]


class UnlessAny(_Strict):
    any: list[EventFilter]


def _unless_kind(value: Any) -> str:
    return "any" if isinstance(value, dict) and "any" in value else "event"


Unless = Annotated[
    Annotated[UnlessAny, Tag("any")] | Annotated[EventFilter, Tag("event")],
    Discriminator(_unless_kind),
]


class Action(_Strict):
    channel: Literal["email", "sms", "push", "webhook", "event"]
    template: str | None = None
    destination: str | None = None
    """For ``webhook``: which configured destination (a stack setting) receives the firing."""
    properties: list[str] = Field(default_factory=list)

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> Any:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}: use one of {', '.join(CHANNELS)}")
        return value

    @field_validator("template", "destination")
    @classmethod
    def _names(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not RULE_ID.match(value):
            raise ValueError(f"{info.field_name} {value!r} may hold only lowercase letters, digits and _")
        return value

    @field_validator("properties")
    @classmethod
    def _property_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            _check_path(path, "property")
        return value


class EscalationStep(Action):
    """A further step of a rule's action: sent ``after`` the previous step's ``fired_at`` unless the
    customer opened or clicked that one (or its ``unless`` happened); the engine decides it like a wait."""

    after: Duration
    unless: Unless | None = None
    """What calls this step off, in [the previous step's send, this step's time]; by default an open
    or a click of the previous step."""


MAX_ESCALATION_STEPS = 5


class RuleCap(_Strict):
    """At most ``max`` sends of this rule per customer and key in any window of ``per``."""

    max: int = Field(strict=True, ge=1, le=1000)
    per: Duration


class Rule(_Strict):
    id: str
    description: str = ""
    enabled: bool = Field(default=True, strict=True)  # `yes` is not a boolean in a rule file
    key: str | None = None
    when: Condition
    unless: Unless | None = None
    wait: Duration | None = None
    audience: Condition | None = None
    cooldown: Duration | None = None
    action: Action
    escalate: list[EscalationStep] = Field(default_factory=list, max_length=MAX_ESCALATION_STEPS)
    """Further steps after the action, each on its own channel, each only if the previous went unanswered."""
    priority: int = Field(default=0, strict=True, ge=-1000, le=1000)
    """Among a customer's firings with the same send time, higher goes first (then the rule id)."""
    frequency_cap: RuleCap | None = None
    quiet_hours: bool = Field(default=True, strict=True)
    """``false``: the policy's quiet hours never hold this rule's firings."""
    category: Literal["marketing", "transactional"] = "marketing"
    """``transactional`` ignores caps and quiet hours (and is not counted by caps); consent still applies."""

    @field_validator("id")
    @classmethod
    def _rule_id(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError(f"rule id {value!r} may hold only lowercase letters, digits and _")
        return value

    @field_validator("key")
    @classmethod
    def _key_path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value, "key")


AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()
Rule.model_rebuild()

ConditionModel = (
    SequenceCondition | AllCondition | AnyCondition | NotCondition | TrendCondition | AttributeCondition | EventFilter
)


def unless_events(rule: Rule | EscalationStep) -> list[EventFilter]:
    """The event filters of ``unless``: one, or each of ``unless: {any: [...]}``."""
    if rule.unless is None:
        return []
    return list(rule.unless.any) if isinstance(rule.unless, UnlessAny) else [rule.unless]
