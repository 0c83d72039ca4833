"""The Lambda runtime shared by every function: the code asset, the layers and a spec-driven factory.

Layers and code are directories built locally by ``layers/build.py`` (``make layers``), without
Docker: pip for manylinux x86_64 and CPython 3.12, so functions run on ``python3.12`` / x86_64.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Size, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk import names
from functions.common.deployment import FunctionSpec, Layer

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
LAYER_DESCRIPTIONS: dict[str, str] = {
    names.BASE_LAYER: "embedrec base: FastAPI, Mangum, Pydantic, Powertools, argon2, PyJWT",
    "data": "embedrec data: pyarrow + numpy",
    "serving": "embedrec serving: faiss-cpu + onnxruntime + numpy (never torch)",
}


class MissingAssetsError(RuntimeError):
    """The layer/code directories are not built (run ``make layers``)."""


class FunctionRuntime(Construct):
    """The code asset and the layers, and a factory that turns a ``FunctionSpec`` into a function."""

    def __init__(self, scope: Construct, construct_id: str, *, assets_dir: Path) -> None:
        super().__init__(scope, construct_id)
        required = [names.CODE_ASSET, *LAYER_DESCRIPTIONS]
        missing = [name for name in required if not (assets_dir / name).is_dir()]
        if missing:
            raise MissingAssetsError(
                f"{assets_dir} lacks {', '.join(missing)}: build them with `make layers` "
                f"(python -m layers.build) or point context {names.CTX_ASSETS_DIR} elsewhere"
            )
        self.code = lambda_.Code.from_asset(str(assets_dir / names.CODE_ASSET))
        self.layers: dict[str, lambda_.ILayerVersion] = {
            name: lambda_.LayerVersion(
                self,
                f"{name.capitalize()}Layer",
                code=lambda_.Code.from_asset(str(assets_dir / name)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=description,
            )
            for name, description in LAYER_DESCRIPTIONS.items()
        }
        self._base_environment: dict[str, str] = {}

    def set_base_environment(self, environment: Mapping[str, str]) -> None:
        """Variables every function gets (the storage names: every function's settings require them)."""
        self._base_environment = dict(environment)

    def layers_for(self, layer: Layer) -> list[lambda_.ILayerVersion]:
        """The layers of a function whose spec names ``layer`` (base first)."""
        return [self.layers[names.BASE_LAYER], self.layers[layer]]

    def function(
        self,
        scope: Construct,
        spec: FunctionSpec,
        *,
        environment: Mapping[str, str] | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> lambda_.Function:
        """A function from its spec: handler, memory, timeout, layers, tracing, logs, Powertools vars."""
        construct_id = "".join(part.capitalize() for part in spec.name.split("-"))
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=removal_policy,
        )
        function = lambda_.Function(
            scope,
            f"{construct_id}Function",
            description=f"embedrec {spec.name} ({spec.handler})",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self.code,
            handler=spec.handler,
            layers=self.layers_for(spec.layer),
            memory_size=spec.memory_mb,
            ephemeral_storage_size=Size.mebibytes(spec.ephemeral_mb),
            timeout=Duration.seconds(spec.timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if spec.snap_start else None,
            environment={
                **self._base_environment,
                "POWERTOOLS_SERVICE_NAME": names.service_name(spec.name),
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": names.LOG_LEVEL,
                **(environment or {}),
            },
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Active tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource-level "
                "permissions. Any other unscoped action on a function is acknowledged where it is granted.",
            )
        )
        return function

    def live_alias(
        self, scope: Construct, spec: FunctionSpec, function: lambda_.Function, provisioned: int = 0
    ) -> lambda_.Alias:
        """The alias callers invoke: the function's current published version (a new one per change of
        code or configuration). With SnapStart only a published version is restored from a snapshot;
        ``$LATEST`` would start every container with a full init. ``provisioned`` containers (0: none)
        are kept initialised on the alias.
        """
        construct_id = "".join(part.capitalize() for part in spec.name.split("-"))
        return lambda_.Alias(
            scope,
            f"{construct_id}Live",
            alias_name=names.LIVE_ALIAS,
            version=function.current_version,
            provisioned_concurrent_executions=provisioned or None,
        )
