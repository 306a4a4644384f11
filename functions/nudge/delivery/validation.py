"""Check a rules folder as deployment sees it: the rules, the templates beside them, and the links between.

``nudge validate`` and ``cdk synth`` share this, so a rule whose template is missing or does not compile
fails both the same way, as ``file:line: message`` diagnostics::

    >>> problems = [d for d in validate_all("rules") if d.severity == "error"]  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..engine import Diagnostic, RuleSet, Yaml12Loader, line_of, load_rules
from ..engine.language.rules import Rule
from .templates import TemplateSet, check_rule_templates, load_templates, rule_actions

TEMPLATES_FOLDER = "templates"


def templates_dir(path: Path | str) -> Path:
    """Where the templates of a rules folder (or of a rule file's folder) live: ``<folder>/templates``."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / TEMPLATES_FOLDER


@dataclass
class Validation:
    """Rules and templates loaded together, with every diagnostic of both, sorted by file and line."""

    rules: RuleSet
    templates: dict[Path, TemplateSet] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def validate_paths(paths: Path | str | Iterable[Path | str], webhooks: Collection[str] | None = None) -> Validation:
    """Load rules from folders or files, then the ``templates`` folder beside each, and check that every
    rule's template exists for its channel (rules are matched with the folder their file is in).

    Given the configured ``webhooks`` (their names), an enabled webhook rule whose destination is not one
    of them is a warning too (``cdk synth`` refuses it: see ``check_destinations``)."""
    given = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    rules = load_rules(given)
    result = Validation(rules, diagnostics=list(rules.diagnostics))
    folders = [templates_dir(p) for p in given if p.exists()]
    folders += [Path(file).parent / TEMPLATES_FOLDER for file, _ in rules.sources.values()]
    seen: dict[Path, TemplateSet] = {}
    for folder in folders:
        if folder.resolve() not in seen:
            templates = seen[folder.resolve()] = load_templates(folder)
            result.templates[folder] = templates
            result.diagnostics.extend(templates.diagnostics)
    for rule in rules.rules:
        file, _ = rules.sources[rule.id]
        folder = Path(file).parent / TEMPLATES_FOLDER
        for problem in check_rule_templates([rule], seen[folder.resolve()], rules.sources):
            result.diagnostics.append(_missing_template(problem, rule, folder))
    if webhooks is not None:
        result.diagnostics.extend(check_destinations(rules, webhooks, severity="warning"))
    result.diagnostics.sort(key=lambda d: (d.file, d.line))
    return result


def validate_all(path: Path | str | Iterable[Path | str]) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) of the rules at ``path`` and of their templates."""
    return validate_paths(path).diagnostics


def _missing_template(problem: Diagnostic, rule: Rule, folder: Path) -> Diagnostic:
    """Point at the ``template:`` line of the action or step concerned and name the file looked for."""
    where = (problem.where or "action.template").rsplit(".", 1)[0]
    action = dict(rule_actions(rule)).get(where, rule.action)
    channel, name = action.channel, action.template
    message = f"no {channel} template '{name}': expected {folder / channel / f'{name}.yaml'}"
    path: tuple[str | int, ...] = tuple(int(p) if p.isdigit() else p for p in where.split("."))
    line = _action_line(Path(problem.file), rule.id, "template", path) or problem.line
    return replace(problem, line=line, message=message)


WEBHOOKS_SETTING = 'cdk.json "nudge".webhooks'


def check_destinations(rules: RuleSet, webhooks: Collection[str], *, severity: str = "error") -> list[Diagnostic]:
    """One diagnostic per enabled webhook rule whose ``destination`` is not a configured webhook, at its
    ``destination:`` line. A rule without one is reported too: the stack sets no default destination,
    so its firings would reach the bus and match no route."""
    problems = []
    for rule in rules.rules:
        destination = rule.action.destination
        if not rule.enabled or rule.action.channel != "webhook" or destination in webhooks:
            continue
        file, line = rules.sources[rule.id]
        configured = ", ".join(sorted(webhooks))
        named = f"webhook destination '{destination}'" if destination else "webhook rule without a destination"
        if not webhooks:
            example = f'{{"{destination or "crm"}": {{"endpoint": "https://...", "secret_name": "..."}}}}'
            what = f"{named}: no webhook is configured; add one to {WEBHOOKS_SETTING}, e.g. {example}"
        elif destination is None:
            what = f"{named} (the stack sets no default destination): add `destination:` naming one of {configured}"
        else:
            close = difflib.get_close_matches(destination, list(webhooks), n=1)
            what = f"{named} is not configured ({WEBHOOKS_SETTING} has {configured})"
            what += f"; did you mean {close[0]}?" if close else ""
        problems.append(
            Diagnostic(
                file=file,
                line=_action_line(Path(file), rule.id, "destination") or line,
                message=what,
                severity=severity,
                where="action.destination",
            )
        )
    return problems


def configured_webhooks(cdk_json: Path | str) -> list[str]:
    """The webhook names of a ``cdk.json`` (``context.nudge.webhooks``); ``ValueError`` if it cannot be read."""
    try:
        data = json.loads(Path(cdk_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{cdk_json}: cannot read settings ({exc})") from None
    context = data.get("context") if isinstance(data, dict) else None
    nudge = context.get("nudge") if isinstance(context, dict) else None
    webhooks = nudge.get("webhooks") if isinstance(nudge, dict) else None
    return sorted(webhooks) if isinstance(webhooks, dict) else []


def _action_line(file: Path, rule_id: str, key: str, within: tuple[str | int, ...] = ("action",)) -> int | None:
    try:
        root = yaml.compose(file.read_text(encoding="utf-8"), Loader=Yaml12Loader)
    except (OSError, yaml.YAMLError):
        return None
    documents = root.value if isinstance(root, yaml.SequenceNode) else [root]
    for node in documents:
        if isinstance(node, yaml.MappingNode) and any(
            k.value == "id" and getattr(v, "value", None) == rule_id for k, v in node.value
        ):
            return line_of(node, (*within, key))
    return None
