"""Read rule files and report every problem as ``file:line: where: what``, like a compiler.

YAML is composed into nodes first so that each pydantic error location (``loc``) can be walked
back to the line that holds it; values are then built with YAML 1.2-style resolvers, so that
``NO`` (Norway) in ``in: [PT, NO]`` stays a string instead of turning into ``false``, and a date
such as ``2024-01-01`` stays the string an event's JSON property holds instead of a ``date``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .checks import Problem, check_rule
from .policy import DEFAULT_POLICY, POLICY_FILES, Policy
from .rules import OPERATORS, Loc, OperatorError, Rule
from .yaml12 import Yaml12Loader, line_of

RULE_SUFFIXES = (".yaml", ".yml")
_KNOWN_KEYS = (
    *Rule.model_fields,
    "event",
    "where",
    "count",
    "within",
    "sequence",
    "all",
    "any",
    "not",
    "attribute",
    "trend",
    "period",
    "periods",
    "direction",
    "channel",
    "template",
    "destination",
    "properties",
    *OPERATORS,
)


@dataclass(frozen=True)
class Diagnostic:
    """A problem found in a rule file, located to a line."""

    file: str
    line: int
    message: str
    severity: str = "error"
    where: str = ""

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {label}{where}{self.message}"


@dataclass
class RuleSet:
    """The outcome of loading: valid rules (with their source), the policy, and every diagnostic found."""

    rules: list[Rule] = field(default_factory=list)
    policy: Policy = DEFAULT_POLICY
    """The folder's ``policy.yaml`` (the defaults when there is none, or when it has errors)."""
    sources: dict[str, tuple[str, int]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


class RuleLoadError(Exception):
    """Raised by ``load_rules_or_raise``: the message lists every error as file:line."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("invalid rules:\n" + "\n".join(str(d) for d in diagnostics))


def _duplicate_keys(node: yaml.Node, loc: Loc = (), visited: set[int] | None = None) -> Iterable[tuple[Loc, int, str]]:
    # An alias (*name) shares its anchor's node: visit each node once, which also ends a cycle.
    visited = set() if visited is None else visited
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield (*loc, key), key_node.start_mark.line + 1, f"duplicate key '{key}'"
            seen.add(key)
            yield from _duplicate_keys(value_node, (*loc, key), visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index), visited)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Any, data: Any) -> tuple[Loc, Loc, str]:
    """(where the line is, what path to name, the message) for one pydantic error.

    The location is cleaned of union tags while it is whole: only then can a tag that shares its
    name with a key (``event``) be told apart from the key by what follows it.
    """
    raw: Loc = tuple(error["loc"])
    loc = _clean_loc(raw, data)
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(raw[-1])
        if key in _KNOWN_KEYS:
            place = "here" if loc[:-1] else "at the top level of a rule"
            return loc, loc[:-1], f"'{key}' is a known key but does not belong {place}"
        hint = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
        return loc, loc[:-1], f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "missing":
        return loc, loc, f"missing required key '{raw[-1]}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, OperatorError):
        # The test as a whole is at `loc`; the line is the operator's own.
        return _clean_loc((*raw, cause.operator), data), loc, message
    given = error.get("input")
    if kind == "condition_kind" and isinstance(given, list):
        message += "; got a list: to combine conditions, put them under `all:` or `any:`"
    elif kind == "condition_kind" and isinstance(given, str):
        message += f"; got {given!r} (for one event write `event: {given}`)"
    elif kind == "condition_kind" and not isinstance(given, dict):
        message += f"; got {_shown(given)}"
    elif kind in ("model_type", "dict_type"):
        message = f"expected a mapping (key: value), not {_shown(given)}"
    elif message.startswith("Input should"):
        message += f", not {_shown(given)}"
    return loc, loc, message


def _shown(value: Any) -> str:
    """A value as a message names it: scalars as written, collections by their kind."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return repr(value)


def _clean_loc(loc: Loc, doc: Any) -> Loc:
    """Drop union tags (``sequence``, ``event``...) that pydantic inserts but the file does not hold."""
    cleaned: list[str | int] = []
    current = doc
    for index, part in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(current, dict) and part in current:
            # A tag can share its name with a key (`event`): it is a tag when the next part is
            # found beside it rather than under it.
            if following is not None and not _holds(current[part], following) and _holds(current, following):
                continue
            cleaned.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            cleaned.append(part)
            current = current[part]
        elif not isinstance(current, dict | list):
            cleaned.append(part)
    return tuple(cleaned)


def _holds(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _load_document(path: Path, label: str, result: RuleSet) -> list[tuple[Any, yaml.Node]]:
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
    except yaml.YAMLError as exc:
        result.diagnostics.append(_yaml_diagnostic(exc, label, text))
        return []
    if root is None:
        result.diagnostics.append(
            Diagnostic(label, 1, "the file is empty: write a rule (a mapping) or a list of rules")
        )
        return []
    for loc, line, message in _duplicate_keys(root):
        result.diagnostics.append(
            Diagnostic(label, line, message, where=_dotted(loc[1:] if isinstance(loc[0], int) else loc))
        )
    try:
        data = Yaml12Loader("").construct_document(root)
    except yaml.YAMLError as exc:  # an unknown tag (!custom), an unhashable key
        result.diagnostics.append(_yaml_diagnostic(exc, label, text))
        return []
    except (ValueError, TypeError, OverflowError) as exc:  # a typed scalar that does not parse: !!int x
        bad = _unreadable_scalar(root, set())
        culprit = root if bad is None else bad
        shown = f"{bad.value!r} is not a valid {bad.tag.rsplit(':', 1)[-1]}" if bad is not None else "a value"
        result.diagnostics.append(Diagnostic(label, culprit.start_mark.line + 1, f"not valid YAML: {shown} ({exc})"))
        return []
    if isinstance(root, yaml.SequenceNode):
        return list(zip(data, root.value, strict=True))
    return [(data, root)]


def _yaml_diagnostic(exc: yaml.YAMLError, label: str, text: str) -> Diagnostic:
    """Where PyYAML gave up, and what it was reading; an unclosed quote or bracket is located at its start."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    last_line = max(1, len(text.splitlines()))
    line = min(mark.line + 1, last_line) if mark is not None else 1
    message = f"not valid YAML: {problem}"
    if context and not context.startswith("while"):
        message = f"not valid YAML: {context}, {problem}"  # "expected a single document..., but found another"
    elif context and context_mark is not None:
        started = context_mark.line + 1
        if mark is not None and mark.index >= len(text.rstrip()):
            # The file ended inside something left open: its start is where the fix belongs.
            line = started
        message += f" ({context} that starts at line {started})"
    return Diagnostic(label, line, message)


def _unreadable_scalar(node: yaml.Node, seen: set[int]) -> yaml.ScalarNode | None:
    """The first scalar whose explicit tag does not accept its text (``!!int soon``, ``!!float x``)."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        try:
            Yaml12Loader("").construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return node
        return None
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    for child in children:
        found = _unreadable_scalar(child, seen)
        if found is not None:
            return found
    return None


def load_rules(paths: Path | str | Iterable[Path | str]) -> RuleSet:
    """Load every ``*.yaml``/``*.yml`` file of a folder (or the given files), validating all of them.

    A folder's ``policy.yaml`` is the policy (``Policy``), not a rule.

    Errors never stop the load: every file is read and every problem reported, so one run of
    ``nudge validate`` shows the whole list.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    result = RuleSet()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
            for policy_file in [p for p in found if p.name in POLICY_FILES]:
                found.remove(policy_file)
                _load_policy(policy_file, result)
            if not found:
                result.diagnostics.append(Diagnostic(str(path), 1, "no rule files (*.yaml, *.yml) in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            result.diagnostics.append(Diagnostic(str(path), 1, "no such rule file or folder"))
    for path in files:
        label = str(path)
        for data, node in _load_document(path, label, result):
            if not isinstance(data, dict):
                result.diagnostics.append(
                    Diagnostic(label, node.start_mark.line + 1, "a rule must be a mapping (id:, when:, action: ...)")
                )
                continue
            try:
                rule = Rule.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    line_loc, where, message = _message(error, data)
                    result.diagnostics.append(Diagnostic(label, line_of(node, line_loc), message, where=_dotted(where)))
                continue
            for problem in check_rule(rule):
                result.diagnostics.append(_locate(problem, label, node, data))
            if rule.id in result.sources:
                first_file, first_line = result.sources[rule.id]
                result.diagnostics.append(
                    Diagnostic(
                        label,
                        line_of(node, ("id",)),
                        f"duplicate rule id '{rule.id}' (first defined at {first_file}:{first_line})",
                        where="id",
                    )
                )
                continue
            result.sources[rule.id] = (label, line_of(node, ("id",)))
            result.rules.append(rule)
    return result


def _load_policy(path: Path, result: RuleSet) -> None:
    label = str(path)
    documents = _load_document(path, label, result)
    if not documents:
        return
    data, node = documents[0]
    if len(documents) > 1:
        result.diagnostics.append(
            Diagnostic(label, documents[1][1].start_mark.line + 1, "a policy file holds one mapping")
        )
    if data is None:
        return
    if not isinstance(data, dict):
        result.diagnostics.append(Diagnostic(label, node.start_mark.line + 1, "the policy must be a mapping"))
        return
    prefix: tuple[str, ...] = ()
    if set(data) == {"policy"} and isinstance(data["policy"], dict):
        data, prefix = data["policy"], ("policy",)  # the settings may sit under one `policy:` key
    try:
        result.policy = Policy.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            line_loc, where, message = _message(error, data)
            result.diagnostics.append(
                Diagnostic(label, line_of(node, (*prefix, *line_loc)), message, where=_dotted((*prefix, *where)))
            )


def _locate(problem: Problem, label: str, node: yaml.Node, data: Any) -> Diagnostic:
    loc = _clean_loc(problem.loc, data)
    return Diagnostic(label, line_of(node, loc), problem.message, problem.severity, _dotted(loc))


def load_rules_or_raise(paths: Path | str | Iterable[Path | str]) -> list[Rule]:
    """Load rules for running them (replay, the evaluator, ``cdk synth``); any error raises."""
    return [rule for rule in load_ruleset_or_raise(paths).rules if rule.enabled]


def load_ruleset_or_raise(paths: Path | str | Iterable[Path | str]) -> RuleSet:
    """The rules and the policy, for running them; any error raises."""
    result = load_rules(paths)
    if result.errors:
        raise RuleLoadError(result.errors)
    return result
