"""Named errors of the training job; the entry point maps each to a failed job record."""

from __future__ import annotations


class TrainingJobError(Exception):
    """Base class: a training job that cannot finish; ``str(error)`` is the message for the job record."""


class ConfigError(TrainingJobError):
    """The training configuration or the job arguments are invalid."""


class DatasetError(TrainingJobError):
    """The dataset snapshot cannot be trained on (empty, too small, malformed)."""


class ArtifactError(TrainingJobError):
    """Exporting or publishing the model artifacts failed."""
