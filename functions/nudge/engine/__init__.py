"""Nudge's rule engine: the rule language, its compiler, per-customer state and evaluation.

Pure by design (no AWS SDK, no I/O beyond reading rule files): the Lambda evaluator, ``nudge
replay``, the local stack and the benchmark all run this one implementation.

>>> from nudge.engine import load_rules_or_raise, compile_rules, Engine, CustomerState
>>> plan = compile_rules(load_rules_or_raise("rules"))        # doctest: +SKIP
>>> engine = Engine(plan)                                      # doctest: +SKIP
>>> outcome = engine.process(CustomerState("c-42"), event, wall=event.ts)  # doctest: +SKIP
"""

from .compiler import CompiledRule, Plan, compile_rules
from .durations import DurationError, format_duration, parse_duration
from .engine import (
    Decision,
    Engine,
    Firing,
    MatchedEvent,
    Outcome,
    Timer,
    TimerCancel,
    TimerSet,
    firing_id,
)
from .envelope import IDENTIFY, Event, EventEnvelope, EventError, parse_event
from .loader import Diagnostic, RuleLoadError, RuleSet, load_rules, load_rules_or_raise
from .replay import Replayer, ReplayStats, RuleTally, replay
from .routing import Route
from .rules import Rule
from .state import CustomerState
from ..timefmt import iso, parse_iso

__all__ = [
    "IDENTIFY",
    "CompiledRule",
    "CustomerState",
    "Decision",
    "Diagnostic",
    "DurationError",
    "Engine",
    "Event",
    "EventEnvelope",
    "EventError",
    "Firing",
    "MatchedEvent",
    "Outcome",
    "Plan",
    "ReplayStats",
    "Replayer",
    "Route",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "RuleTally",
    "Timer",
    "TimerCancel",
    "TimerSet",
    "compile_rules",
    "firing_id",
    "format_duration",
    "iso",
    "load_rules",
    "load_rules_or_raise",
    "parse_duration",
    "parse_event",
    "parse_iso",
    "replay",
]
