"""CDK entry point (``cdk.json``: ``python -m cdk.app``); synthesises offline, with no AWS calls.

The stack is environment-agnostic (no ``env``): account and region come from the deploy-time
credentials, and nothing is looked up at synth. Options come from context (``-c key=value``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App

from cdk import names
from cdk.constructs.training import TrainingImageSource
from cdk.nag import apply_checks
from cdk.stack import EmbedrecStack
from functions.common.deployment import DEFAULT_SERVING_SIZE, SERVING_SIZES, ServingSize
from functions.identity.plans import parse_tenants_by_plan


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def serving_size(value: Any) -> ServingSize:
    """The serving deployment size named by context (default ``small``)."""
    name = str(value or DEFAULT_SERVING_SIZE)
    if name not in SERVING_SIZES:
        raise ValueError(f"{names.CTX_SERVING_SIZE} must be one of {', '.join(SERVING_SIZES)}, not {name!r}")
    return SERVING_SIZES[name]


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, EmbedrecStack]:
    """The app and its one stack, with AwsSolutions checks attached."""
    # cdk.json's context (feature flags) applies to plain-Python synth too, not only under the CLI.
    defaults = json.loads((names.ROOT / "cdk.json").read_text())["context"]
    app = App(context={**defaults, **(context or {})}, outdir=outdir)

    def ctx(key: str) -> Any:
        return app.node.try_get_context(key)

    repository = ctx(names.CTX_TRAINING_IMAGE_REPOSITORY)
    stack = EmbedrecStack(
        app,
        names.STACK_ID,
        description="embedrec: multi-tenant embedding recommender (API, serving, ingestion, GPU training)",
        assets_dir=Path(ctx(names.CTX_ASSETS_DIR) or names.DEFAULT_ASSETS_DIR),
        image_source=TrainingImageSource(
            repository_name=str(repository) if repository else None,
            tag=str(ctx(names.CTX_TRAINING_IMAGE_TAG) or "latest"),
        ),
        retain_data=_flag(ctx(names.CTX_RETAIN_DATA), default=True),
        alarm_email=ctx(names.CTX_ALARM_EMAIL) or None,
        training_max_vcpus=int(ctx(names.CTX_TRAINING_MAX_VCPUS) or names.TRAINING_DEFAULT_MAX_VCPUS),
        training_window=str(ctx(names.CTX_TRAINING_WINDOW) or names.DEFAULT_TRAINING_WINDOW),
        tenants_by_plan=parse_tenants_by_plan(ctx(names.CTX_TENANTS_BY_PLAN)),
        serving_size=serving_size(ctx(names.CTX_SERVING_SIZE)),
    )
    apply_checks(app, stack)
    return app, stack


def main() -> None:
    """Synthesise into the CLI's outdir, or ``cdk.out`` when run directly (``make synth``)."""
    outdir = None if os.environ.get("CDK_OUTDIR") else str(names.ROOT / "cdk.out")
    app, _stack = build_app(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
