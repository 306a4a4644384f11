"""Nudge's rule engine: the rule language, its compiled plan, per-customer state and evaluation.

Pure by design (no AWS SDK, no I/O beyond reading rule files): the Lambda evaluator, ``nudge
replay``, the local stack and the benchmark all run this one implementation. It reads and writes
the wire types of ``nudge.contracts`` (``Event`` in, ``Firing`` and ``Timer`` out).

- ``language``: YAML 1.2 rule files, the rule models, whole-rule checks (``load_rules``);
- ``plan``: operators, condition nodes and the immutable ``Plan`` (``compile_rules``);
- ``runtime``: ``Engine`` (the semantics), ``CustomerState`` with its ``EventLog`` and codec;
- ``replay``: the engine over a stream of events on a virtual clock.

>>> plan = load_plan("rules")                                 # doctest: +SKIP  (rules + policy.yaml)
>>> engine = Engine(plan)                                      # doctest: +SKIP
>>> outcome = engine.process(CustomerState("c-42"), event, wall=event.ts)  # doctest: +SKIP
"""

from pathlib import Path

from .language.durations import DurationError, format_duration, parse_duration
from .language.loader import (
    Diagnostic,
    RuleLoadError,
    RuleSet,
    load_rules,
    load_rules_or_raise,
    load_ruleset_or_raise,
)
from .language.policy import DEFAULT_POLICY, Policy
from .language.rules import Rule
from .language.yaml12 import Yaml12Loader, line_of
from .plan._builder import compile_rules
from .plan.compiled import Plan
from .replay import Replayer, ReplayStats, RuleTally, replay
from .runtime.engine import Engine, Reading
from .runtime.outcome import GUARDRAIL_DECISIONS, Decision, Outcome, TimerCancel, TimerSet, firing_id
from .runtime.skew import future_problem
from .runtime.state import CustomerState, Trim


def load_plan(paths: str | Path) -> Plan:
    """The rules of a folder compiled under its ``policy.yaml``: what replay, local, the evaluator and CDK run."""
    ruleset = load_ruleset_or_raise(paths)
    return compile_rules([rule for rule in ruleset.rules if rule.enabled], ruleset.policy)


__all__ = [
    "DEFAULT_POLICY",
    "GUARDRAIL_DECISIONS",
    "CustomerState",
    "Decision",
    "Diagnostic",
    "DurationError",
    "Engine",
    "Outcome",
    "Plan",
    "Policy",
    "Reading",
    "ReplayStats",
    "Replayer",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "RuleTally",
    "TimerCancel",
    "TimerSet",
    "Trim",
    "Yaml12Loader",
    "compile_rules",
    "firing_id",
    "format_duration",
    "future_problem",
    "line_of",
    "load_plan",
    "load_rules",
    "load_rules_or_raise",
    "load_ruleset_or_raise",
    "parse_duration",
    "replay",
]
