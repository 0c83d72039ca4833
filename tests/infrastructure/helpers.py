"""The synthesised stack under test, and reading IAM and intrinsic functions out of its template."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import assertions

from cdk import names
from cdk.stack import EmbedrecStack
from functions.common.deployment import FunctionSpec
from functions.common.resources import QueueSpec


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


def queue_of(synth: Synth, spec: QueueSpec) -> tuple[str, dict[str, Any]]:
    """The logical id and properties of the queue built from ``spec``."""
    logical_id = synth.logical_id(synth.stack.storage.queue(spec))
    return logical_id, synth.resources[logical_id]["Properties"]


def assert_queue_follows_its_spec(synth: Synth, spec: QueueSpec, consumer: FunctionSpec) -> None:
    """The queue's visibility and redrive to its dead-letter queue are the spec's, and fit ``consumer``."""
    _, queue = queue_of(synth, spec)
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(spec))

    assert queue["VisibilityTimeout"] == spec.visibility_timeout_s
    assert render(queue["RedrivePolicy"]["deadLetterTargetArn"]) == f"<{dlq_id}.Arn>"
    assert queue["RedrivePolicy"]["maxReceiveCount"] == spec.max_receives
    assert synth.resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == spec.dlq_retention_days * 86_400
    # AWS's rule for a Lambda event source: visibility at least 6x the consumer's timeout
    assert spec.visibility_timeout_s >= 6 * consumer.timeout_s


def consumer_mapping(synth: Synth, spec: QueueSpec, consumer: FunctionSpec) -> dict[str, Any]:
    """The one event source mapping that reads ``spec``'s queue: it feeds ``consumer``, which reports
    partial batch failures."""
    queue_id, _ = queue_of(synth, spec)
    mappings: list[dict[str, Any]] = [
        resource["Properties"]
        for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    [mapping] = mappings

    assert mapping["FunctionName"] == {"Ref": function_logical_id(synth, consumer.handler)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    return mapping


def assert_dead_letters_alarmed(synth: Synth, alarm: str, spec: QueueSpec) -> None:
    """Alarm ``alarm`` fires on the first message visible in the dead-letter queue of ``spec``'s queue."""
    properties = synth.resources[synth.logical_id(synth.stack.monitoring.alarms[alarm])]["Properties"]
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(spec))

    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert properties["Threshold"] == 1
    assert properties["AlarmActions"]
