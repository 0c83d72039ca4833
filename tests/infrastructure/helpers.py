"""The synthesised stack under test, and reading IAM and intrinsic functions out of its template."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import assertions

from cdk import names
from cdk.stack import EmbedrecStack


@dataclass(frozen=True)
class Synth:
    """The synthesised stack, its template (as assertions and as JSON) and the cloud assembly dir."""

    stack: EmbedrecStack
    template: assertions.Template
    resources: dict[str, dict[str, Any]]
    outdir: Path

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one CloudFormation type, by logical id."""
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        """The logical id of an L2 construct's CloudFormation resource."""
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def make_stub_assets(root: Path) -> Path:
    """Stand-ins for layers/build: the code dir and one ``python/`` dir per layer."""
    (root / names.CODE_ASSET / "functions").mkdir(parents=True)
    (root / names.CODE_ASSET / "functions" / "__init__.py").write_text("")
    for layer in (names.BASE_LAYER, "data", "serving"):
        (root / layer / "python").mkdir(parents=True)
        (root / layer / "python" / f"stub_{layer}.py").write_text("")
    return root


def render(value: Any) -> str:
    """An intrinsic as text: ``Ref X`` → ``<X>``, ``GetAtt X.Arn`` → ``<X.Arn>``, joins concatenated."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(render(part) for part in parts)
        if "Fn::Sub" in value:
            return str(value["Fn::Sub"])
    return repr(value)


def as_list(value: Any) -> list[Any]:
    """CloudFormation's "one or many"."""
    return value if isinstance(value, list) else [value]


def role_of_function(synth: Synth, function_logical_id: str) -> str:
    """The logical id of a function's execution role."""
    role = synth.resources[function_logical_id]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def statements_of_role(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every policy statement attached to a role (its AWS::IAM::Policy resources and inline policies)."""
    found: list[dict[str, Any]] = []
    role = synth.resources[role_logical_id]
    for policy in role["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    for resource in synth.of_type("AWS::IAM::Policy").values():
        roles = resource["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def grants(statements: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(action, rendered resource) for every allowed pair."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                yield str(action), render(resource)


def function_logical_id(synth: Synth, handler: str) -> str:
    """The function whose handler string is ``handler`` (exactly one)."""
    matches = [
        key
        for key, value in synth.of_type("AWS::Lambda::Function").items()
        if value["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, (handler, matches)
    return matches[0]
