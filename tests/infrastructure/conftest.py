"""One synthesis of the CDK app per session, shared by every infrastructure test.

Synth runs offline in pure Python (~15 s, ~1 GB): no Docker, no AWS calls. The Lambda layers are
replaced by tiny stand-in directories so that the template does not depend on `make layers` (the
built layers are measured by ``test_layers.py``), and the training image is referenced from ECR
(the Docker-asset form is tested on its own in ``test_training_image.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import assertions  # noqa: E402

from cdk import names  # noqa: E402
from cdk.app import build_app  # noqa: E402
from tests.infrastructure.helpers import Synth, make_stub_assets  # noqa: E402

TRAINING_REPOSITORY = "embedrec-training"


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """Synthesise the app once (cdk-nag runs during synth and fails it on any unacknowledged error)."""
    assets = make_stub_assets(tmp_path_factory.mktemp("assets"))
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(
        context={
            names.CTX_ASSETS_DIR: str(assets),
            names.CTX_TRAINING_IMAGE_REPOSITORY: TRAINING_REPOSITORY,
            names.CTX_ALARM_EMAIL: "alarms@example.com",
        },
        outdir=str(outdir),
    )
    app.synth()
    # The written template (from_stack would synthesise a second time).
    document = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    template = assertions.Template.from_json(document)
    yield Synth(stack=stack, template=template, resources=document["Resources"], outdir=outdir)
