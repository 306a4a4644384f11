"""The YAML dialect of rule, policy and template files: YAML 1.2's plain scalars, with line numbers.

Rules are YAML, and YAML 1.1 (PyYAML's default) reads ``NO`` as false, ``012345`` as an octal
number and ``2024-01-01`` as a date: each turns a marketer's value into something else. This
loader reads plain scalars as YAML 1.2 does, and ``line_of`` walks a validation error's location
back to its line, so every message can say ``file:line``. Delivery's template front matter and the
bench's rule generator read YAML with the same loader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's plain scalars: booleans are only ``true``/``false`` (never
    yes/no/on/off), there are no implicit timestamps (events are JSON, where a date is a string),
    and integers are plain decimals — so a SKU ``012345`` or a time ``10:30`` stays a string instead
    of YAML 1.1's octal 5349 or sexagesimal 630."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)


def line_of(node: yaml.Node, loc: Sequence[str | int]) -> int:
    """The line of the deepest node that ``loc`` reaches; path parts that are not keys are skipped."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    node = value_node
                    line = key_node.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line
