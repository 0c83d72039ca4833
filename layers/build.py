"""Build the Lambda layers and the functions' code asset without Docker.

Each layer is installed with pip for the Lambda target (CPython 3.12, manylinux x86_64) into
``layers/build/<layer>/python`` and then trimmed; the code asset is a clean copy of ``functions/``
and of the ``contract/`` it imports, at ``layers/build/code/{functions,contract}``. The CDK app
(``cdk/constructs/runtime.py``) deploys these directories as they are, so what is measured here is
what Lambda unpacks.

Every built directory is then compiled to bytecode with a CPython 3.12 (Lambda's python3.12; found on
PATH or under pyenv): ``/var/task`` and ``/opt`` are read-only in Lambda, so bytecode that is not
shipped is compiled again by every cold start (measured: 2.0-3.4 s cold imports without it, 1.3-1.4 s
with it). The ``.pyc`` files use unchecked hashes: zip extraction does not keep the source mtimes a
timestamp check compares.

``lambda-runtime`` is not deployed: it is boto3/botocore and the SnapStart hooks' registry
(``snapshot_restore_py``) as the Lambda Python runtime provides them (``/var/runtime``), for the
local Lambda-faithful runtime (``embedrec local --runtime lambda``).

Usage: ``python -m layers.build [--layer base|data|serving|code|lambda-runtime ...] [--report]``.

Layers (a function gets ``base`` plus the layer named by its ``FunctionSpec``):
- ``base``: FastAPI, Mangum, Pydantic, Powertools (+ X-Ray SDK), argon2, PyJWT; every function.
- ``data``: pyarrow + numpy (api, ingest, pipeline steps).
- ``serving``: faiss-cpu + onnxruntime + numpy (serving). Never torch.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS_DIR = ROOT / "layers"
BUILD_DIR = LAYERS_DIR / "build"
CODE_DIR = BUILD_DIR / "code"
FUNCTIONS_SRC = ROOT / "functions"
#: What training and serving agree on (``contract/``): shipped beside ``functions/``, which imports it.
CONTRACT_SRC = ROOT / "contract"
#: The code asset's packages.
CODE_PACKAGES = (FUNCTIONS_SRC, CONTRACT_SRC)

LAMBDA_PYTHON = "3.12"
# Lambda's python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34). numpy >= 2.3, pyarrow and
# onnxruntime only publish manylinux_2_28 wheels, so 2_28 is offered next to manylinux2014 (pip expands
# each tag to every older glibc it covers).
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

LAYERS = ("base", "data", "serving")
RUNTIME_PACKAGES = "lambda-runtime"
#: The boto3 of the local runtime's /var/runtime: the version the dev environment is tested with; and
#: the SnapStart runtime-hook registry that Lambda's Python runtimes include (functions/serving/snapshot.py).
RUNTIME_REQUIREMENTS = ("boto3==1.44.8", "botocore==1.44.8", "snapshot-restore-py==1.0.0")

# The Lambda Python runtime ships boto3 and botocore; a copy in a layer would only shadow it and
# cost ~30 MB (aws-xray-sdk pulls botocore in).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")

# Removed from every layer: never imported at run time.
TRIM_DIR_NAMES = frozenset({"__pycache__", "tests", "bin"})
TRIM_FILE_PATTERNS = ("*.pyc", "*.pyi", "*.pxd", "*.pyx", "*.h", "*.hpp", "*.cc", "*.cpp", "RECORD")

# Per-layer removals, relative to the layer's python/ directory. Each was checked to be off the
# import path of what the functions use (pyarrow, pyarrow.compute/parquet/csv; onnxruntime
# InferenceSession; faiss), see ``smoke_test`` below.
TRIM_PATHS: dict[str, tuple[str, ...]] = {
    "base": tuple(f"{name}*" for name in RUNTIME_PROVIDED) + ("wrapt-stubs",),
    "data": (
        "pyarrow/include",  # C++ headers for building extensions
        "pyarrow/src",
        # Arrow Flight (RPC): 31 MB, linked only by pyarrow._flight.
        "pyarrow/libarrow_flight.so*",
        "pyarrow/libarrow_python_flight.so*",
        "pyarrow/_flight.*.so",
        # Arrow's own S3 client: 17 MB, linked only by pyarrow._s3fs; functions use boto3.
        "pyarrow/libarrow_s3.so*",
        "pyarrow/_s3fs.*.so",
        # Other remote file systems (pyarrow.fs imports them lazily and tolerates their absence).
        "pyarrow/_gcsfs.*.so",
        "pyarrow/_azurefs.*.so",
        "pyarrow/_hdfs.*.so",
        # Link-time copies of libarrow_python (the wheel cannot hold symlinks); at run time
        # every module loads it by its SONAME, libarrow_python.so.<major>.
        "pyarrow/libarrow_python.so",
        "pyarrow/libarrow_python.so.*.*.*",
    ),
    "serving": (
        # Model conversion/optimisation tooling, not inference.
        "onnxruntime/transformers",
        "onnxruntime/tools",
        "onnxruntime/quantization",
        "onnxruntime/datasets",
        "numpy/f2py",
    ),
}
TRIM_PATHS["data"] += ("numpy/f2py",)


@dataclass(frozen=True)
class LayerSize:
    """Unzipped size of one built directory."""

    name: str
    path: Path
    bytes: int

    @property
    def mib(self) -> float:
        """Size in MiB."""
        return self.bytes / (1024 * 1024)


def directory_size(path: Path) -> int:
    """Total size in bytes of the regular files below ``path`` (what Lambda unpacks)."""
    return sum(
        entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink()
    )


def layer_dir(layer: str, build_dir: Path = BUILD_DIR) -> Path:
    """The directory deployed as the layer (it holds ``python/``)."""
    return build_dir / layer


def install_layer(layer: str, build_dir: Path = BUILD_DIR) -> Path:
    """pip-install ``layers/<layer>/requirements.txt`` for the Lambda target into a fresh directory."""
    return _pip_install(
        layer_dir(layer, build_dir) / "python", ["-r", str(LAYERS_DIR / layer / "requirements.txt")]
    )


def install_runtime_packages(build_dir: Path = BUILD_DIR) -> Path:
    """boto3/botocore for the Lambda runtime's own directory (``<build>/lambda-runtime``)."""
    target = build_dir / RUNTIME_PACKAGES
    shutil.rmtree(target, ignore_errors=True)
    return _pip_install(target, list(RUNTIME_REQUIREMENTS), parent=False)


def _pip_install(target: Path, requirements: list[str], *, parent: bool = True) -> Path:
    shutil.rmtree(target.parent if parent else target, ignore_errors=True)
    target.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
        "--target",
        str(target),
        *requirements,
    ]
    subprocess.run(command, check=True)
    return target


def _matching(root: Path, patterns: Iterable[str]) -> Iterator[Path]:
    for pattern in patterns:
        yield from root.glob(pattern)


def trim(python_dir: Path, layer: str) -> int:
    """Remove what the functions never load; returns the bytes saved."""
    before = directory_size(python_dir)
    for path in sorted(_matching(python_dir, TRIM_PATHS.get(layer, ())), reverse=True):
        _remove(path)
    for path in sorted(python_dir.rglob("*"), reverse=True):
        if not path.exists() and not path.is_symlink():
            continue
        if path.is_dir() and path.name in TRIM_DIR_NAMES:
            _remove(path)
        elif path.is_file() and any(fnmatch.fnmatch(path.name, pattern) for pattern in TRIM_FILE_PATTERNS):
            path.unlink()
    return before - directory_size(python_dir)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def build_code(build_dir: Path = BUILD_DIR) -> Path:
    """Copy ``functions/`` and ``contract/`` (sources and data files, no caches) to ``<build>/code``."""
    target = build_dir / "code"
    shutil.rmtree(target, ignore_errors=True)
    for package in CODE_PACKAGES:
        shutil.copytree(
            package,
            target / package.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".mypy_cache", ".pytest_cache"),
        )
    return target


def find_python312() -> str | None:
    """A working CPython 3.12 (Lambda's python3.12): under pyenv's root, else ``python3.12`` on PATH."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    candidates = [
        str(path)
        for root in filter(None, roots)
        for path in sorted(
            Path(root).glob(f"versions/{LAMBDA_PYTHON}.*/bin/python{LAMBDA_PYTHON}"), reverse=True
        )
    ]
    on_path = shutil.which(f"python{LAMBDA_PYTHON}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == LAMBDA_PYTHON:
            return candidate
    return None


def compile_bytecode(path: Path, python: str) -> None:
    """Compile every module below ``path`` with ``python`` (a 3.12): ``__pycache__/*.cpython-312.pyc``."""
    subprocess.run(
        [
            python,
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(path),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def sizes(build_dir: Path = BUILD_DIR) -> dict[str, LayerSize]:
    """Unzipped sizes of the code asset and every built layer present."""
    found: dict[str, LayerSize] = {}
    for name, path in [
        ("code", build_dir / "code"),
        *((layer, layer_dir(layer, build_dir)) for layer in LAYERS),
    ]:
        if path.is_dir():
            found[name] = LayerSize(name, path, directory_size(path))
    return found


def bundle_layers(function_layer: str) -> tuple[str, ...]:
    """The layers a function with ``FunctionSpec.layer == function_layer`` is deployed with."""
    return ("base", function_layer)


def smoke_test(build_dir: Path = BUILD_DIR, python: str | None = None) -> None:
    """Import the trimmed layers with a local CPython 3.12 (same ABI as Lambda), if one is given."""
    if python is None:
        return
    checks = {
        "base": "import fastapi, mangum, pydantic, pydantic_settings, jwt, argon2, multipart; "
        "from aws_lambda_powertools import Logger, Metrics, Tracer; import aws_xray_sdk",
        "data": "import io, numpy, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq, pyarrow.csv; "
        "t = pa.table({'a': [1, 2]}); b = io.BytesIO(); pq.write_table(t, b); b.seek(0); "
        "assert pq.read_table(b).equals(t); assert pc.sum(t['a']).as_py() == 3",
        "serving": "import numpy as np, faiss, onnxruntime; i = faiss.IndexFlatIP(4); "
        "i.add(np.eye(4, dtype='float32')); "
        "assert i.search(np.eye(4, dtype='float32')[:1], 1)[1][0][0] == 0; "
        "assert 'CPUExecutionProvider' in onnxruntime.get_available_providers()",
    }
    for layer, code in checks.items():
        path = layer_dir(layer, build_dir) / "python"
        if path.is_dir():
            # -I: isolated (ignores PYTHONPATH and user site); -S: no site-packages of that interpreter.
            subprocess.run(
                [python, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(path)!r}); {code}"],
                check=True,
            )


def main(argv: list[str] | None = None) -> int:
    """Build what is asked (everything by default) and print the sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layer", action="append", choices=(*LAYERS, "code", RUNTIME_PACKAGES), help="build only these"
    )
    parser.add_argument("--report", action="store_true", help="only print the sizes of what is built")
    parser.add_argument("--smoke-python", help="a CPython 3.12 to import the built layers with")
    args = parser.parse_args(argv)
    if not args.report:
        python = find_python312()
        if python is None:
            sys.stderr.write(
                f"WARNING: no CPython {LAMBDA_PYTHON} found (PATH or pyenv): the bundles ship WITHOUT "
                "bytecode and every cold start compiles them again\n"
            )
        for name in args.layer or (*LAYERS, "code", RUNTIME_PACKAGES):
            if name == "code":
                built = build_code()
            elif name == RUNTIME_PACKAGES:
                built = install_runtime_packages()
                trim(built, name)
            else:
                saved = trim(install_layer(name), name)
                built = layer_dir(name)
                sys.stdout.write(f"built {name}: trimmed {saved / 2**20:.1f} MiB\n")
            if python is not None:
                compile_bytecode(built, python)
        smoke_test(python=args.smoke_python)
    found = sizes()
    report = {name: round(size.mib, 1) for name, size in found.items()}
    for layer in ("data", "serving"):
        if {"code", "base", layer} <= found.keys():
            total = sum(found[name].bytes for name in ("code", *bundle_layers(layer)))
            report[f"bundle:{layer}"] = round(total / 2**20, 1)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
