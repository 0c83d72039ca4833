"""The training image: a Docker image asset of training_jobs/Dockerfile (staged at synth, built at deploy)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, Size, Stack, assertions
from aws_cdk import aws_batch as batch

from cdk import names
from cdk.constructs.training import TrainingImageSource, training_image


def _job_definition_image(stack: Stack, source: TrainingImageSource) -> None:
    container = batch.EcsEc2ContainerDefinition(
        stack, "Container", image=training_image(stack, source), cpu=1, memory=Size.gibibytes(1)
    )
    batch.EcsJobDefinition(stack, "Job", container=container)


def test_ecr_reference_needs_no_docker_and_no_dockerfile(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Image")
    _job_definition_image(stack, TrainingImageSource(repository_name="embedrec-training", tag="v1"))
    image = assertions.Template.from_stack(stack).find_resources("AWS::Batch::JobDefinition")
    (definition,) = image.values()
    assert "/embedrec-training:v1" in json.dumps(definition["Properties"]["ContainerProperties"]["Image"])


@pytest.mark.skipif(
    not (names.ROOT / names.TRAINING_DOCKERFILE).exists(),
    reason=f"{names.TRAINING_DOCKERFILE} is not written yet (the asset form needs it at synth)",
)
def test_docker_asset_is_staged_without_docker(tmp_path: Path) -> None:
    # Given the default source (no repository in context)
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Image")
    _job_definition_image(stack, TrainingImageSource())
    # When synthesised (no Docker here: assets are only staged, cdk deploy builds them)
    app.synth()
    # Then the assembly declares an image asset built from training_jobs/Dockerfile, amd64
    manifest = json.loads((tmp_path / "Image.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == names.TRAINING_DOCKERFILE
    assert image["source"]["platform"] == "linux/amd64"
    staged = tmp_path / image["source"]["directory"]
    assert (staged / "training_jobs").is_dir()
    assert not (staged / ".venv").exists() and not (staged / "layers" / "build").exists()


def test_dockerfile_copies_every_package_the_trainer_imports() -> None:
    # Given the repository packages the training_jobs modules import (the contract among them)
    root = names.ROOT
    imported = set()
    for path in (root / "training_jobs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    packages = {name for name in imported if (root / name / "__init__.py").is_file()}
    # Then the image copies each of them (and so nothing it imports is missing at run time)
    copied = set(re.findall(r"^COPY (\w+)/ /app/\1/$", (root / names.TRAINING_DOCKERFILE).read_text(), re.M))
    assert packages == {"contract", "training_jobs"}
    assert packages <= copied
