"""The training routes' collaborators in the api function, each built once per container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from functions.common import aws
from functions.common.container import per_container
from functions.common.errors import ServiceUnavailableError
from functions.common.settings import get_api_settings
from functions.training.control import Workflow
from functions.training.schedule import TrainingSchedules, configured_schedules
from functions.training.store.model_registry import ModelRegistry
from functions.training.store.training_jobs import TrainingJobRepository


@per_container
def training_jobs() -> TrainingJobRepository:
    """The container's training-job repository."""
    return TrainingJobRepository(aws.dynamodb_resource().Table(get_api_settings().training_jobs_table))


@per_container
def model_registry() -> ModelRegistry:
    """The container's model registry."""
    return ModelRegistry(aws.dynamodb_resource().Table(get_api_settings().model_registry_table))


@per_container
def workflow() -> Workflow:
    """The training workflow (``ServiceUnavailableError`` where it is not deployed)."""
    settings = get_api_settings()
    if not settings.state_machine_arn:
        raise ServiceUnavailableError("training is not configured on this deployment")
    return Workflow(aws.stepfunctions_client(), settings.state_machine_arn, settings.training_poll_seconds)


@per_container
def training_schedules() -> TrainingSchedules | None:
    """Per-tenant retraining schedules, or None where scheduling is not deployed."""
    settings = get_api_settings()
    return configured_schedules(
        settings.schedule_group,
        settings.scheduler_role_arn,
        settings.state_machine_arn,
        settings.training_window,
    )


TrainingJobs = Annotated[TrainingJobRepository, Depends(training_jobs)]
Models = Annotated[ModelRegistry, Depends(model_registry)]
TrainingWorkflow = Annotated[Workflow, Depends(workflow)]
Schedules = Annotated[TrainingSchedules | None, Depends(training_schedules)]
