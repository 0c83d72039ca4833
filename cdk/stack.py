"""The embedrec stack: composes the capability constructs, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from cdk import names
from cdk.constructs.analytics import Analytics
from cdk.constructs.api import Api
from cdk.constructs.console import Console
from cdk.constructs.events import EventCompaction
from cdk.constructs.ingestion import Ingestion
from cdk.constructs.monitoring import Monitoring
from cdk.constructs.pipeline import Pipeline
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from cdk.constructs.training import Training, TrainingImageSource
from functions.common.deployment import DEFAULT_SERVING_SIZE, SERVING_SIZES, ServingSize
from functions.identity.models import Plan


class EmbedrecStack(Stack):
    """Storage, training, pipeline, API, analytics, events, ingestion and monitoring of one deployment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets_dir: Path,
        image_source: TrainingImageSource,
        retain_data: bool = True,
        alarm_email: str | None = None,
        training_max_vcpus: int = names.TRAINING_DEFAULT_MAX_VCPUS,
        training_window: str = names.DEFAULT_TRAINING_WINDOW,
        tenants_by_plan: Mapping[Plan, int] | None = None,
        serving_size: ServingSize = SERVING_SIZES[DEFAULT_SERVING_SIZE],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("app", names.APP_TAG)
        self.storage = Storage(self, "Storage", retain_data=retain_data)
        self.runtime = FunctionRuntime(self, "Runtime", assets_dir=assets_dir)
        self.runtime.set_base_environment(self.storage.environment())
        self.training = Training(
            self, "Training", storage=self.storage, image_source=image_source, max_vcpus=training_max_vcpus
        )
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            runtime=self.runtime,
            storage=self.storage,
            training=self.training,
            training_window=training_window,
        )
        self.api = Api(
            self,
            "Api",
            runtime=self.runtime,
            storage=self.storage,
            pipeline=self.pipeline,
            tenants_by_plan=tenants_by_plan,
            serving_size=serving_size,
        )
        self.analytics = Analytics(self, "Analytics", runtime=self.runtime, storage=self.storage)
        self.analytics.grant_send(self.api.serving_function)
        self.events = EventCompaction(self, "Events", runtime=self.runtime, storage=self.storage)
        self.events.grant_send(self.api.api_function)
        self.ingestion = Ingestion(
            self, "Ingestion", runtime=self.runtime, storage=self.storage, pipeline=self.pipeline
        )
        self.console = Console(
            self, "Console", http_api=self.api.http_api, access_logs=self.storage.access_logs
        )
        self.monitoring = Monitoring(self, "Monitoring", alarm_email=alarm_email)
        self.monitoring.monitor_api(self.api.stage)
        self.monitoring.monitor_workflow(self.pipeline.state_machine)
        self.monitoring.monitor_ml_engine(self.pipeline.state_machine)
        self.monitoring.monitor_business()
        self.monitoring.monitor_dead_letters("drop-folder", self.ingestion.dead_letter_queue)
        self.monitoring.monitor_dead_letters("impressions", self.analytics.dead_letter_queue)
        self.monitoring.monitor_dead_letters("events", self.events.dead_letter_queue)
