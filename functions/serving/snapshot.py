"""SnapStart for serving: what the init phase prepares before the snapshot, what a restore renews.

With SnapStart (``cdk/constructs/api.py``) Lambda runs the init phase once per published version,
snapshots the container's memory and starts each new container from that snapshot, so a cold start
is the restore plus the first answer; the imports (about 0.9-1.1 s CPU of serving's start in the
built bundle) are no longer part of it. The before-snapshot hook also builds what every first
answer would otherwise build: settings, the AWS clients (their service models and endpoint rules,
~0.15 s CPU) and the container's services. Nothing tenant-specific is built (no model, catalogue
or caller), and no secret is read: a snapshot is shared by every container restored from it.

After a restore every container would otherwise share the snapshot's credentials, sockets and
random state: the after-restore hook reseeds ``random`` (retry jitter, sampling), starts a new AWS
session that keeps the parsed models (``functions.common.aws.renew_session``), forgets every
per-container object and builds the clients again (a few ms each, the parsing being kept).

The hooks are registered with ``snapshot_restore_py``, which Lambda's Python runtime provides (and
the local Lambda runtime's packages, see ``layers/build.py``); elsewhere (tests, uvicorn) nothing
is snapshotted and nothing is registered. Without SnapStart Lambda never calls them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from fastapi import FastAPI

from functions.common import aws
from functions.common.after_response import after_response
from functions.common.container import reset_container_state
from functions.common.runtime import freeze_long_lived_objects
from functions.common.secrets import secrets_provider
from functions.http.principal import Authenticator
from functions.serving.dependencies import recommendation_service
from functions.serving.settings import get_serving_settings


def build_container_services(app: FastAPI) -> None:
    """Build what every request needs and no tenant owns: settings, AWS clients, services."""
    get_serving_settings()
    authenticator: Authenticator = app.state.authenticator
    authenticator.tenant_repository()
    authenticator.api_key_repository()
    authenticator.quota_store()
    secrets_provider()  # its client only: the token key is read after a restore, never snapshotted
    recommendation_service()


def prepare_snapshot(app: FastAPI) -> None:
    """Before-snapshot hook: do the first answer's tenant-independent work in the init phase."""
    build_container_services(app)
    freeze_long_lived_objects()  # what was just built lives as long as the container


def renew_after_restore(app: FastAPI) -> None:
    """After-restore hook: this container's own random state, credentials and connections."""
    random.seed()
    after_response.ensure_running()  # a fork-based restore (the local runtime) keeps no thread
    aws.renew_session()
    reset_container_state()
    build_container_services(app)


def register_snapshot_hooks(app: FastAPI) -> bool:
    """Register the hooks where the runtime provides ``snapshot_restore_py``; whether it did."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not in a Lambda runtime: nothing is ever snapshotted here
        return False
    before: Callable[[FastAPI], None] = prepare_snapshot
    after: Callable[[FastAPI], None] = renew_after_restore
    register_before_snapshot(before, app)
    register_after_restore(after, app)
    return True
