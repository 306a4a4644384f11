"""Reading a synthesized template in tests: its references as plain text, to compare with expected ARNs."""

from __future__ import annotations

from typing import Any

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333"}
"""The pseudo parameters as the infra tests' stacks resolve them (their env)."""


def text(value: Any) -> Any:
    """A template value with pseudo parameters filled in, other references as ``<Logical.Attribute>``."""
    if isinstance(value, list):
        return [text(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(text(part)) for part in parts)
    return {key: text(item) for key, item in value.items()}
