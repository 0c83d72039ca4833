"""The built Lambda bundles (code + layers, unzipped) stay under Lambda's 250 MB limit."""

from __future__ import annotations

import pytest

from functions.common import deployment
from layers import build

pytestmark = pytest.mark.skipif(
    not all((build.BUILD_DIR / name).is_dir() for name in ("code", *build.LAYERS)),
    reason="layers/build is absent: run `make layers` (python -m layers.build) first",
)


@pytest.fixture(scope="module")
def sizes() -> dict[str, build.LayerSize]:
    return build.sizes()


@pytest.mark.parametrize("spec", deployment.FUNCTIONS, ids=lambda spec: spec.name)
def test_function_bundle_is_under_250_mb_unzipped(
    sizes: dict[str, build.LayerSize], spec: deployment.FunctionSpec
) -> None:
    total = sizes["code"].bytes + sum(sizes[layer].bytes for layer in build.bundle_layers(spec.layer))
    assert total < build.LAMBDA_UNZIPPED_LIMIT_BYTES, f"{spec.name}: {total / 2**20:.1f} MiB"


def test_serving_layer_has_no_torch_and_no_pyarrow() -> None:
    python = build.BUILD_DIR / "serving" / "python"
    assert not (python / "torch").exists()
    assert not (python / "pyarrow").exists()


def test_layers_leave_boto3_to_the_runtime() -> None:
    for layer in build.LAYERS:
        assert not (build.BUILD_DIR / layer / "python" / "botocore").exists(), layer


def test_code_asset_ships_the_contract_beside_the_functions() -> None:
    code = build.BUILD_DIR / "code"
    assert sorted(path.name for path in code.iterdir()) == ["contract", "functions"]
    shipped = {path.relative_to(code / "contract") for path in (code / "contract").rglob("*.py")}
    assert shipped == {path.relative_to(build.CONTRACT_SRC) for path in build.CONTRACT_SRC.rglob("*.py")}


def test_code_asset_is_the_functions_package_with_only_lambdas_bytecode() -> None:
    code = build.BUILD_DIR / "code" / "functions"
    assert (code / "__init__.py").is_file()
    compiled = [path.name for path in code.rglob("*.pyc")]
    assert all(name.endswith(".cpython-312.pyc") for name in compiled)  # no dev-interpreter caches


@pytest.mark.skipif(build.find_python312() is None, reason="the build compiles with a CPython 3.12")
@pytest.mark.parametrize("name", ["code", *build.LAYERS])
def test_bundles_ship_python_312_bytecode_for_every_module(name: str) -> None:
    # /var/task and /opt are read-only in Lambda: bytecode not shipped is compiled by every cold start
    root = build.BUILD_DIR / name
    sources = [path for path in root.rglob("*.py") if "__pycache__" not in path.parts]
    missing = [
        path
        for path in sources
        if not (path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc").is_file()
    ]
    assert sources and len(missing) <= len(sources) // 100, missing[:5]
