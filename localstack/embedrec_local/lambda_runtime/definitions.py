"""What each function is, read from the synthesised CloudFormation template and the built bundle.

The template (``cdk.out/Embedrec.template.json``, written by ``make synth``) gives each function its
handler, memory size, timeout, layers and environment; this module resolves the environment's
references (``Ref``/``Fn::GetAtt`` of tables, buckets, secrets, the state machine...) to the local
stack's physical names BY VARIABLE NAME, and fails loudly for a variable it cannot resolve: a function
never runs with an environment the template would not give it. Code and layers are the directories
``layers/build.py`` built (``make layers``), the same directories the CDK app deploys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.common import deployment
from layers.build import find_python312

__all__ = ["FunctionDefinition", "find_python312", "load_definitions"]

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "cdk.out" / "Embedrec.template.json"
BUILD_DIR = ROOT / "layers" / "build"
CODE_DIR = BUILD_DIR / "code"
#: boto3/botocore as the Lambda Python runtime provides them (``/var/runtime``); built by layers/build.py.
RUNTIME_PACKAGES_DIR = BUILD_DIR / "lambda-runtime"
LAMBDA_PYTHON = "3.12"
#: Sources whose change makes a synthesised template stale.
_TEMPLATE_INPUTS = ("cdk", "functions/common/deployment.py", "functions/common/resources.py")

#: Variables the local stack adds to what the template gives: Lambda's own (credentials, region,
#: function name, ...), the AWS endpoint (moto), no X-Ray daemon, and the settings the local stack
#: shortens so that a promotion shows within seconds. Nothing else from the host reaches a container.
LOCAL_ONLY_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "POWERTOOLS_TRACE_DISABLED",
    "EMBEDREC_MODEL_REFRESH_SECONDS",
    "EMBEDREC_TRAINING_POLL_SECONDS",
    "EMBEDREC_REQUEST_QUOTAS",
    "EMBEDREC_AFTER_RESPONSE",  # false: no after-response extension (the work runs before the response)
)


class RuntimeUnavailableError(RuntimeError):
    """Python 3.12, the built layers or the template are missing."""


@dataclass(frozen=True)
class FunctionDefinition:
    """One function as Lambda would run it."""

    name: str
    handler: str
    memory_mb: int
    timeout_s: float
    layers: tuple[Path, ...]  # each holds python/; deployment order (a later one wins in /opt)
    environment: dict[str, str] = field(default_factory=dict)
    code_dir: Path = CODE_DIR
    runtime_dir: Path = RUNTIME_PACKAGES_DIR
    snap_start: bool = False  # SnapStart on published versions: containers restore from a snapshot

    def sys_path(self) -> list[str]:
        """``sys.path`` of the container: /var/task, the layers' python/ (last layer first), /var/runtime."""
        return [
            str(self.code_dir),
            *(str(layer / "python") for layer in reversed(self.layers)),
            str(self.runtime_dir),
        ]

    def to_json(self) -> dict[str, Any]:
        """A JSON form (the moto process reads the definitions the stack resolved)."""
        return {
            "name": self.name,
            "handler": self.handler,
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "layers": [str(layer) for layer in self.layers],
            "environment": self.environment,
            "code_dir": str(self.code_dir),
            "runtime_dir": str(self.runtime_dir),
            "snap_start": self.snap_start,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionDefinition:
        """The inverse of ``to_json``."""
        return cls(
            name=str(data["name"]),
            handler=str(data["handler"]),
            memory_mb=int(data["memory_mb"]),
            timeout_s=float(data["timeout_s"]),
            layers=tuple(Path(layer) for layer in data["layers"]),
            environment={str(k): str(v) for k, v in data["environment"].items()},
            code_dir=Path(data["code_dir"]),
            runtime_dir=Path(data["runtime_dir"]),
            snap_start=bool(data.get("snap_start", False)),
        )


def template_is_stale(template: Path = TEMPLATE) -> bool:
    """Whether the template is missing or older than the CDK app's sources."""
    if not template.is_file():
        return True
    built = template.stat().st_mtime
    for name in _TEMPLATE_INPUTS:
        path = ROOT / name
        files = path.rglob("*.py") if path.is_dir() else [path]
        if any(source.stat().st_mtime > built for source in files):
            return True
    return False


def synthesise(python: str = sys.executable) -> Path:
    """Run the CDK app (offline) to write the template; returns its path."""
    subprocess.run([python, "-m", "cdk.app"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return TEMPLATE


def _layer_name(resource: Mapping[str, Any]) -> str:
    """``base``/``data``/``serving`` from a layer's description (``embedrec <name>: ...``)."""
    description = str(resource.get("Properties", {}).get("Description", ""))
    prefix, _, _rest = description.partition(":")
    words = prefix.split()
    if len(words) != 2 or words[0] != "embedrec":
        raise RuntimeUnavailableError(f"cannot tell which built layer '{description}' is")
    return words[1]


def load_definitions(
    local_values: Mapping[str, str],
    *,
    template: Path = TEMPLATE,
    build_dir: Path = BUILD_DIR,
) -> dict[str, FunctionDefinition]:
    """Every function of ``functions.common.deployment`` as the template defines it.

    ``local_values`` gives the local value of each variable whose template value is a reference.
    """
    resources: dict[str, Any] = json.loads(template.read_text())["Resources"]
    by_handler = {spec.handler: spec for spec in deployment.FUNCTIONS}
    found: dict[str, FunctionDefinition] = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        spec = by_handler.get(str(properties.get("Handler")))
        if spec is None:
            continue  # CDK's own helper functions (bucket notifications, deployments)
        layers = tuple(
            build_dir / _layer_name(resources[layer["Ref"]]) for layer in properties.get("Layers", [])
        )
        environment: dict[str, str] = {}
        for variable, value in properties.get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, str):
                environment[variable] = value
            elif variable in local_values:
                environment[variable] = local_values[variable]
            else:
                raise RuntimeUnavailableError(
                    f"{spec.name}: the template sets {variable} to {json.dumps(value)}, "
                    "which the local stack cannot resolve"
                )
        found[spec.name] = FunctionDefinition(
            name=spec.name,
            handler=spec.handler,
            memory_mb=int(properties.get("MemorySize", 128)),
            timeout_s=float(properties.get("Timeout", 3)),
            layers=layers,
            environment=environment,
            code_dir=build_dir / "code",
            runtime_dir=build_dir / RUNTIME_PACKAGES_DIR.name,
            snap_start=properties.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions",
        )
    missing = {spec.name for spec in deployment.FUNCTIONS} - found.keys()
    if missing:
        raise RuntimeUnavailableError(f"the template lacks functions {sorted(missing)}: re-run `make synth`")
    return found


def check_built(definitions: Mapping[str, FunctionDefinition]) -> None:
    """Fail with the command to run when a bundle directory is missing."""
    for definition in definitions.values():
        for path in (definition.code_dir, *definition.layers, definition.runtime_dir):
            if not path.is_dir():
                raise RuntimeUnavailableError(f"{path} is not built: run `make layers`")
