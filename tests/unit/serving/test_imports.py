"""The serving function's Lambda layer has faiss, onnxruntime and numpy: never torch, never pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "pyarrow", "pandas", "onnx")


def test_the_serving_app_imports_neither_torch_nor_pyarrow() -> None:
    code = (
        "import json, sys\n"
        "import functions.serving.app, functions.serving.dependencies, functions.serving.service\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)
    assert {"faiss", "onnxruntime", "numpy"} <= loaded


def test_the_serving_app_imports_nothing_of_the_api_function() -> None:
    code = (
        "import json, sys\n"
        "import functions.serving.app\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.startswith('functions.'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "functions.http.principal" in loaded  # callers are resolved by the shared plumbing
    assert [name for name in loaded if name.startswith("functions.api")] == []
