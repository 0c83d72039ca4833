"""Container entry point: ``python -m training_jobs.train`` (arguments or environment variables).

| argument | environment | meaning |
|---|---|---|
| ``--tenant-id`` | ``EMBEDREC_TENANT_ID`` | tenant whose model is trained |
| ``--job-id`` | ``EMBEDREC_JOB_ID`` | training-job record to update |
| ``--dataset-uri`` | ``EMBEDREC_DATASET_URI`` | snapshot prefix holding the two Parquet files |
| ``--artifacts-bucket`` | ``EMBEDREC_ARTIFACTS_BUCKET`` | where ``models/{tenant}/{version}/`` is written |
| ``--version`` | ``EMBEDREC_MODEL_VERSION`` | model version (default ``{model_type}_{job_id}``) |
| ``--jobs-table`` | ``EMBEDREC_TRAINING_JOBS_TABLE`` | DynamoDB table of training jobs |
| ``--config`` | ``EMBEDREC_TRAINING_CONFIG`` | config JSON (or ``@path`` to a JSON file) |
| ``--active-manifest-key`` | ``EMBEDREC_ACTIVE_MANIFEST_KEY`` | the active model's manifest (gate) |

Exit status: 0 completed, 1 failed (the job record says why), 2 unusable job arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import boto3

from training_jobs.config import default_version, parse_config, parse_job_arguments
from training_jobs.errors import ConfigError, TrainingJobError
from training_jobs.job import run_training_job
from training_jobs.storage import S3ObjectStore, TrainingJobRepository

logger = logging.getLogger("training_jobs.train")

ENVIRONMENT = {
    "tenant_id": "EMBEDREC_TENANT_ID",
    "job_id": "EMBEDREC_JOB_ID",
    "dataset_uri": "EMBEDREC_DATASET_URI",
    "artifacts_bucket": "EMBEDREC_ARTIFACTS_BUCKET",
    "version": "EMBEDREC_MODEL_VERSION",
    "jobs_table": "EMBEDREC_TRAINING_JOBS_TABLE",
    "config": "EMBEDREC_TRAINING_CONFIG",
    "active_manifest_key": "EMBEDREC_ACTIVE_MANIFEST_KEY",
}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training_jobs.train", description="embedrec training job"
    )
    for name, variable in ENVIRONMENT.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=os.environ.get(variable),
            help=f"(env {variable})",
        )
    return parser.parse_args(argv)


def _read_config_text(raw: str | None) -> str | None:
    if raw and raw.startswith("@"):
        try:
            return Path(raw[1:]).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {raw[1:]}: {exc.strerror}") from exc
    return raw


def handle_training_job(argv: Sequence[str] | None = None) -> int:
    """Parse the job's arguments, run it, and record success or failure; returns the exit status."""
    args = _parse_args(argv)
    try:
        config_text = _read_config_text(args.config)
        config = None
        config_error: ConfigError | None = None
        try:
            config = parse_config(config_text)
        except ConfigError as exc:
            config_error = exc
        model_type = config.model_type if config else "model"
        job_args = parse_job_arguments(
            {
                "tenant_id": args.tenant_id,
                "job_id": args.job_id,
                "dataset_uri": args.dataset_uri,
                "artifacts_bucket": args.artifacts_bucket,
                "version": args.version
                or (default_version(model_type, args.job_id) if args.job_id else None),
                "jobs_table": args.jobs_table,
                "active_manifest_key": args.active_manifest_key,
            }
        )
    except ConfigError as exc:
        logger.error("cannot start training job: %s", exc)
        return 2

    jobs = TrainingJobRepository(
        boto3.resource("dynamodb").Table(job_args.jobs_table), job_args.tenant_id, job_args.job_id
    )
    try:
        if config_error is not None or config is None:
            raise config_error or ConfigError("invalid training config")
        outcome = run_training_job(job_args, config, S3ObjectStore(boto3.client("s3")), jobs)
    except TrainingJobError as exc:
        logger.error("training job %s failed: %s", job_args.job_id, exc)
        _record_failure(jobs, str(exc))
        return 1
    except Exception as exc:  # any crash must still mark the job failed
        logger.exception("training job %s crashed", job_args.job_id)
        _record_failure(jobs, f"internal error: {type(exc).__name__}: {exc}")
        return 1
    logger.info("training job %s completed: %s %s", job_args.job_id, outcome.artifacts_uri, outcome.metrics)
    return 0


def _record_failure(jobs: TrainingJobRepository, message: str) -> None:
    try:
        jobs.mark_failed(message)
    except TrainingJobError:
        logger.exception("could not record the failure in the job record")


def main() -> None:
    """Console entry: log to stderr and exit with the job's status."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    sys.exit(handle_training_job())


if __name__ == "__main__":
    main()
