"""Message templates beside the rules: ``rules/templates/<channel>/<name>.yaml``, rendered by Jinja2.

One file holds every part of one message, with the defaults that stand in for missing values::

    # rules/templates/email/cart_reminder.yaml
    defaults: {first_name: there}
    subject: "{{ first_name }}, your cart is waiting"
    text: |
      {% for item in cart %}- {{ item.name }}: {{ item.price | money }}
      {% endfor %}
    html: |
      <p>Hi {{ first_name }}</p>

Rendering runs in Jinja's sandbox with strict undefined values, so a template can neither reach
into Python nor send a message with a hole in it: a variable that is missing and has no default
fails the render, and delivery parks the firing with that reason instead of sending it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engine import Diagnostic, Yaml12Loader
from ..engine.language.rules import Action, Rule

PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "text", "html"),
    "sms": ("text",),
    "push": ("title", "body"),
    "webhook": (),
    "event": (),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "email": ("subject", "text", "html"),
    "sms": ("text",),
    "push": ("title", "body"),
    "webhook": (),
    "event": (),
}
CONTEXT_KEYS = frozenset(
    {
        "customer_id",
        "profile",
        "firing",
        "events",
        "cart",
        "products",
        "key",
        "unsubscribe_url",
        "site_url",
        "cart_url",
    }
)
"""What every render provides; profile traits are provided only when the customer has them, so a
template that uses a trait at the top level (``first_name``) must give it a default."""

SMS_MAX_CHARS = 459  # three concatenated GSM segments; longer texts are cut with a clear marker


class RenderError(Exception):
    """A template could not be rendered for this firing; the message says which part and why."""


def money(value: Any, currency: str = "€") -> str:
    """``29.9 | money`` → ``€29.90``; non-numbers are shown as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{currency}{value:,.2f}"


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = money
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    defaults: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    title: str | None = None
    body: str | None = None
    data: dict[str, str] = Field(default_factory=dict)
    payload: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """What one channel sends: subject (email), text (email text part, SMS, push body), html, title."""

    channel: str
    template: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class MessageTemplate:
    channel: str
    name: str
    path: Path
    source: TemplateFile
    lines: dict[str, int]

    def parts(self) -> dict[str, str]:
        found = {part: getattr(self.source, part) for part in (*PARTS[self.channel], "body", "title")}
        found = {k: v for k, v in found.items() if v is not None and (k in PARTS[self.channel])}
        found.update({f"data.{k}": v for k, v in self.source.data.items()})
        found.update({f"payload.{k}": v for k, v in self.source.payload.items()})
        return found

    def render(self, context: dict[str, Any]) -> Rendered:
        values = {**self.source.defaults, **context}
        out: dict[str, str] = {}
        for part, text in self.parts().items():
            env = _HTML if part == "html" else _TEXT
            try:
                rendered = env.from_string(text).render(values)
                out[part] = rendered if part == "html" else rendered.strip()
                if part in ("subject", "title"):  # one line: a line break in a header is refused by the mail library
                    out[part] = " ".join(out[part].split())
            except UndefinedError as exc:
                raise RenderError(f"{self.channel} template {self.name}, {part}: {exc.message}") from None
            except SecurityError as exc:
                raise RenderError(f"{self.channel} template {self.name}, {part}: not allowed: {exc}") from None
            except Exception as exc:  # a filter given a wrong type, a division by zero...
                raise RenderError(f"{self.channel} template {self.name}, {part}: {type(exc).__name__}: {exc}") from None
        text = out.get("text") or out.get("body")
        if self.channel == "sms" and text and len(text) > SMS_MAX_CHARS:
            text = text[: SMS_MAX_CHARS - 3] + "..."  # not "…": it is not GSM-7 and would make it 7 UCS-2 segments
        return Rendered(
            channel=self.channel,
            template=self.name,
            subject=out.get("subject"),
            text=text,
            html=out.get("html"),
            title=out.get("title"),
            data={k.removeprefix("data."): v for k, v in out.items() if k.startswith("data.")}
            | {k.removeprefix("payload."): v for k, v in out.items() if k.startswith("payload.")},
        )


@dataclass
class TemplateSet:
    templates: dict[tuple[str, str], MessageTemplate] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def get(self, channel: str, name: str) -> MessageTemplate | None:
        return self.templates.get((channel, name))


def _field_lines(path: Path, text: str) -> dict[str, int]:
    """Line where each top-level key's value starts (block scalars start one line below the key)."""
    lines: dict[str, int] = {}
    root = yaml.compose(text, Loader=Yaml12Loader)
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            block = isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">")
            lines[str(key_node.value)] = value_node.start_mark.line + (2 if block else 1)
            if isinstance(value_node, yaml.MappingNode):
                for sub_key, sub_value in value_node.value:
                    sub_block = isinstance(sub_value, yaml.ScalarNode) and sub_value.style in ("|", ">")
                    lines[f"{key_node.value}.{sub_key.value}"] = sub_value.start_mark.line + (2 if sub_block else 1)
    return lines


def load_templates(directory: Path) -> TemplateSet:
    """Read every template under ``directory/<channel>/``, checking syntax and variables."""
    result = TemplateSet()
    if not directory.is_dir():
        return result
    for channel_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        channel = channel_dir.name
        for path in sorted(channel_dir.glob("*.yaml")):
            label = str(path)
            if channel not in PARTS:
                result.diagnostics.append(Diagnostic(label, 1, f"unknown channel folder '{channel}'"))
                continue
            text = path.read_text(encoding="utf-8")
            try:
                data = yaml.load(text, Loader=Yaml12Loader)
                lines = _field_lines(path, text)
                source = TemplateFile.model_validate(data or {})
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                result.diagnostics.append(Diagnostic(label, mark.line + 1 if mark else 1, f"not valid YAML: {exc}"))
                continue
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    where = ".".join(str(p) for p in error["loc"])
                    message = str(error["msg"]).removeprefix("Value error, ")
                    if error["type"] == "extra_forbidden":
                        message = f"unknown key '{where}' (a template has {', '.join(TemplateFile.model_fields)})"
                    result.diagnostics.append(Diagnostic(label, 1, message, where=where))
                continue
            template = MessageTemplate(channel, path.stem, path, source, lines)
            for part in REQUIRED[channel]:
                if getattr(source, part) is None:
                    result.diagnostics.append(Diagnostic(label, 1, f"a {channel} template needs `{part}`"))
            _check_parts(template, label, result)
            result.templates[(channel, path.stem)] = template
    return result


def _check_parts(template: MessageTemplate, label: str, result: TemplateSet) -> None:
    known = CONTEXT_KEYS | set(template.source.defaults)
    for part, text in template.parts().items():
        env = _HTML if part == "html" else _TEXT
        base = template.lines.get(part, 1)
        try:
            tree = env.parse(text)
            env.compile(tree)  # an unknown filter or test (`| moneyy`) is found here; parse() lets it through
        except TemplateSyntaxError as exc:
            result.diagnostics.append(Diagnostic(label, base + (exc.lineno or 1) - 1, f"{part}: {exc.message}"))
            continue
        first_use: dict[str, int] = {}
        for node in tree.find_all(nodes.Name):
            if node.ctx == "load":
                first_use[node.name] = min(node.lineno, first_use.get(node.name, node.lineno))
        for name in sorted(meta.find_undeclared_variables(tree) - known):
            result.diagnostics.append(
                Diagnostic(
                    label,
                    base + first_use.get(name, 1) - 1,
                    f"{part} uses `{name}`, which the context does not always provide: "
                    f"give it a default (defaults: {{{name}: ...}}) or use one of {', '.join(sorted(CONTEXT_KEYS))}",
                )
            )


def check_rule_templates(
    rules: list[Rule], templates: TemplateSet, sources: dict[str, tuple[str, int]]
) -> list[Diagnostic]:
    """Every rule's action, and each of its escalation steps, names a template that exists for its channel."""
    problems: list[Diagnostic] = []
    for rule in rules:
        for where, action in rule_actions(rule):
            name = action.template
            if name is None or templates.get(action.channel, name) is not None:
                continue
            file, line = sources.get(rule.id, ("rules", 1))
            problems.append(
                Diagnostic(
                    file,
                    line,
                    f"{where}.template '{name}' has no file rules/templates/{action.channel}/{name}.yaml",
                    where=f"{where}.template",
                )
            )
    return problems


def rule_actions(rule: Rule) -> list[tuple[str, Action]]:
    """A rule's messages with where each is written: ``action``, then ``escalate.0``, ``escalate.1``..."""
    return [("action", rule.action), *((f"escalate.{index}", step) for index, step in enumerate(rule.escalate))]
