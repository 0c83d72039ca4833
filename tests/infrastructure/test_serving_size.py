"""The serving function's size: memory, /tmp, model budget and provisioned concurrency per deployment size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdk import names
from cdk.app import build_app, serving_size
from functions.common import deployment
from tests.infrastructure.conftest import TRAINING_REPOSITORY
from tests.infrastructure.helpers import Synth, function_logical_id, make_stub_assets


def _serving(resources: dict[str, Any], function_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    function = resources[function_id]["Properties"]
    (alias,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Alias" and r["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return function, alias


def test_the_default_size_is_small_on_demand_with_its_tmp_and_budget(synth: Synth) -> None:
    small = deployment.SERVING_SIZES["small"]
    function, alias = _serving(synth.resources, function_logical_id(synth, deployment.SERVING.handler))

    assert (function["MemorySize"], function["EphemeralStorage"]) == (
        small.memory_mb,
        {"Size": small.ephemeral_mb},
    )
    assert function["Environment"]["Variables"][names.ENV_MODEL_BUDGET_MB] == str(small.model_budget_mb)
    assert alias["Name"] == names.LIVE_ALIAS and "ProvisionedConcurrencyConfig" not in alias
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}  # AWS allows it with /tmp at 512 MB


def test_a_large_deployment_gets_its_memory_tmp_budget_and_provisioned_containers(tmp_path: Path) -> None:
    large = deployment.SERVING_SIZES["large"]
    app, stack = build_app(
        context={
            names.CTX_ASSETS_DIR: str(make_stub_assets(tmp_path / "assets")),
            names.CTX_TRAINING_IMAGE_REPOSITORY: TRAINING_REPOSITORY,
            names.CTX_SERVING_SIZE: "large",
        },
        outdir=str(tmp_path / "cdk.out"),
    )
    resources = app.synth().get_stack_by_name(stack.stack_name).template["Resources"]
    function_id = stack.get_logical_id(stack.api.serving_function.node.default_child)  # type: ignore[arg-type]

    function, alias = _serving(resources, function_id)

    assert (function["MemorySize"], function["EphemeralStorage"]) == (
        large.memory_mb,
        {"Size": large.ephemeral_mb},
    )
    assert function["Environment"]["Variables"][names.ENV_MODEL_BUDGET_MB] == str(large.model_budget_mb)
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": large.provisioned}
    assert "SnapStart" not in function  # AWS refuses SnapStart with /tmp above 512 MB


def test_every_size_fits_its_budget_in_tmp_and_an_unknown_size_is_refused() -> None:
    for size in deployment.SERVING_SIZES.values():
        assert size.model_budget_mb <= size.ephemeral_mb <= 10_240 and 128 <= size.memory_mb <= 10_240
    with pytest.raises(ValueError, match="small, medium, large"):
        serving_size("huge")
