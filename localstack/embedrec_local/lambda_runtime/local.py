"""Wiring of the Lambda-faithful runtime into the local stack (``embedrec local --runtime lambda``)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import boto3

from embedrec_local.lambda_runtime.container import LogSink
from embedrec_local.lambda_runtime.definitions import (
    LOCAL_ONLY_VARIABLES,
    FunctionDefinition,
    RuntimeUnavailableError,
    check_built,
    find_python312,
    load_definitions,
    synthesise,
    template_is_stale,
)
from embedrec_local.lambda_runtime.pool import DEFAULT_IDLE_SECONDS, DEFAULT_MAX_CONTAINERS, LambdaFleet

#: Set in the moto process: the JSON file of resolved definitions (Step Functions invokes through it).
DEFINITIONS_ENV = "EMBEDREC_LAMBDA_DEFINITIONS"
IDLE_ENV = "EMBEDREC_LAMBDA_IDLE_SECONDS"
MAX_CONTAINERS_ENV = "EMBEDREC_LAMBDA_MAX_CONTAINERS"
#: "false": every function starts its containers with a full init, even where the template has SnapStart
#: (benchmarks compare the two cold starts).
SNAP_START_ENV = "EMBEDREC_LAMBDA_SNAP_START"
_SECRETS = {"EMBEDREC_JWT_SECRET_ARN": "embedrec-jwt-secret", "EMBEDREC_ADMIN_KEY_ARN": "embedrec-admin-key"}


def require_python() -> str:
    """The CPython 3.12 containers run on; raises when there is none."""
    python = find_python312()
    if python is None:
        raise RuntimeUnavailableError("no CPython 3.12 (Lambda's python3.12) on PATH or under pyenv")
    return python


def create_secrets(admin_key: str, jwt_secret: str) -> dict[str, str]:
    """The two secrets in Secrets Manager (moto), as the CDK app creates them; variable -> ARN."""
    client = boto3.client("secretsmanager")
    arns: dict[str, str] = {}
    for variable, name in _SECRETS.items():
        value = admin_key if "ADMIN" in variable else jwt_secret
        try:
            arns[variable] = client.create_secret(Name=name, SecretString=value)["ARN"]
        except client.exceptions.ResourceExistsException:
            arns[variable] = client.put_secret_value(SecretId=name, SecretString=value)["ARN"]
    return arns


def resolve_definitions(local_values: Mapping[str, str]) -> dict[str, FunctionDefinition]:
    """The template's functions with local values; synthesises the template first when it is stale."""
    if template_is_stale():
        synthesise()
    definitions = load_definitions(local_values)
    check_built(definitions)
    return definitions


def write_definitions(definitions: Mapping[str, FunctionDefinition]) -> Path:
    """A private file holding the definitions (for the moto process)."""
    handle, path = tempfile.mkstemp(prefix="embedrec-lambda-", suffix=".json")
    with os.fdopen(handle, "w") as sink:
        json.dump({name: d.to_json() for name, d in definitions.items()}, sink)
    return Path(path)


def read_definitions(path: Path) -> dict[str, FunctionDefinition]:
    """The inverse of ``write_definitions``."""
    data = json.loads(path.read_text())
    return {name: FunctionDefinition.from_json(item) for name, item in data.items()}


def base_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """What the local stack adds to every container's template environment (``LOCAL_ONLY_VARIABLES``)."""
    base = {name: environment[name] for name in LOCAL_ONLY_VARIABLES if name in environment}
    region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION") or "us-east-1"
    base.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return base


def stdout_log_sink() -> LogSink:
    """Container log lines to this process's stdout, EMF metrics forwarded to CloudWatch (moto)."""
    from embedrec_local.emf import EmfForwardingStream

    stream = EmfForwardingStream(sys.stdout)

    def sink(line: str) -> None:
        stream.write(line if line.endswith("\n") else line + "\n")

    return sink


def fleet_from_environment(
    definitions: Mapping[str, FunctionDefinition], python: str, environment: Mapping[str, str]
) -> LambdaFleet:
    """A fleet sized by ``EMBEDREC_LAMBDA_IDLE_SECONDS`` / ``EMBEDREC_LAMBDA_MAX_CONTAINERS``, with
    SnapStart as the template sets it unless ``EMBEDREC_LAMBDA_SNAP_START=false``."""
    if environment.get(SNAP_START_ENV, "true").lower() == "false":
        definitions = {name: replace(d, snap_start=False) for name, d in definitions.items()}
    return LambdaFleet(
        definitions,
        python,
        base_environment(environment),
        idle_seconds=float(environment.get(IDLE_ENV) or DEFAULT_IDLE_SECONDS),
        max_containers=int(environment.get(MAX_CONTAINERS_ENV) or DEFAULT_MAX_CONTAINERS),
        log_sink=stdout_log_sink(),
    )
