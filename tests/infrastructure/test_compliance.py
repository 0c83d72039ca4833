"""cfn-lint over the synthesised template, cdk-nag (AwsSolutions) results, and offline synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Token
from cfnlint.api import ManualArgs, lint_file

from cdk import names
from cdk.constructs.runtime import FunctionRuntime, MissingAssetsError
from tests.infrastructure.helpers import Synth

# CDK itself emits these; they are style warnings about redundant DependsOn, not defects.
ALLOWED_WARNINGS = {"W3005"}


def test_template_passes_cfn_lint_without_errors(synth: Synth) -> None:
    template = synth.outdir / f"{synth.stack.artifact_id}.template.json"
    matches = lint_file(template, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [str(match) for match in matches if match.rule.id.startswith("E")]
    assert errors == []
    warnings = {match.rule.id for match in matches if match.rule.id.startswith("W")}
    assert warnings <= ALLOWED_WARNINGS, warnings


def test_cdk_nag_reports_no_violation(synth: Synth) -> None:
    # Synth raises on any unacknowledged AwsSolutions error; warnings would only be in the report.
    report_path = synth.outdir / "validation-report.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
        assert violations == []


def test_every_acknowledged_rule_has_a_written_reason(synth: Synth) -> None:
    acknowledged = [
        rule
        for resource in synth.resources.values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    ours = [rule for rule in acknowledged if rule["id"].startswith("AwsSolutions-")]
    assert ours, "AwsSolutionsChecks should write its acknowledgments into the template"
    for rule in ours:
        assert len(rule["reason"].split()) >= 8, rule


def test_synth_makes_no_lookups_and_pins_no_environment(synth: Synth) -> None:
    assert Token.is_unresolved(synth.stack.account)
    assert Token.is_unresolved(synth.stack.region)
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert not manifest.get("missing"), manifest.get("missing")  # context lookups would be listed here


def test_missing_layers_fail_synth_with_a_clear_message(tmp_path: Path) -> None:
    stack = Stack(App(), "Bare")
    with pytest.raises(MissingAssetsError, match="make layers"):
        FunctionRuntime(stack, "Runtime", assets_dir=tmp_path)


def test_cdk_json_runs_the_app_module() -> None:
    config = json.loads((names.ROOT / "cdk.json").read_text())
    assert config["app"].endswith("-m cdk.app")
