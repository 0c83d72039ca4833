"""The training image: a Docker image asset of training_jobs/Dockerfile (staged at synth, built at deploy)."""

from __future__ import annotations

import json
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
