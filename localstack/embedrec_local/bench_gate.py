"""``make bench-gate``: the promotion gate on the sample shop: candidate vs active model vs popularity.

Generates the sample (default 100,000 interactions of 10,000 shoppers over 90 days), then runs the real
training job (``training_jobs.train``) against S3 and DynamoDB emulated in-process by moto:

1. ``lightgcn_v1``: LightGCN trained on the older ``--active-share`` of the history (no model serves
   yet); it becomes the active model;
2. ``auto_v2``: the default ``model_type`` (``auto``: the candidates that fit the tenant, EASE and ALS
   here) on the whole history, naming ``lightgcn_v1`` as the model to beat;
3. ``lightgcn_v3``: the whole history with a configuration that cannot learn (one epoch, a learning
   rate of 1e-7, no propagation): the gate must refuse it.

For each job it prints the gate's NDCG@10 / recall@10 of the candidate, the active model and popularity,
all measured on the same judged holdout in the same job, the verdict and the job's wall time. The work
is fixed (``--epochs``), so the quality figures do not depend on the machine's load; the times do.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from contract import layout
from embedrec_local.provision import table_definition
from embedrec_local.sample_data import generate_sample_data

REGION = "us-east-1"
DATA_BUCKET = "bench-gate-data"
ARTIFACTS_BUCKET = "bench-gate-artifacts"
JOBS_TABLE = "bench-gate-jobs"
TENANT = "bench"


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _sample(directory: Path, interactions: int, users: int, items: int) -> tuple[pa.Table, pa.Table]:
    summary = generate_sample_data(directory, users=users, items=items, interactions=interactions)
    events = pcsv.read_csv(summary.interactions_path)
    stamps = pc.cast(events["timestamp"], pa.timestamp("ms", tz="UTC"))
    events = events.set_column(events.column_names.index("timestamp"), "timestamp", stamps)
    return events, pcsv.read_csv(summary.items_path)


def _older(events: pa.Table, share: float) -> pa.Table:
    stamps = pc.cast(pc.cast(events["timestamp"], pa.timestamp("ms")), pa.int64()).to_numpy()
    return events.filter(pa.array(stamps < np.quantile(stamps, share)))


def _run_job(
    s3: Any,
    table: Any,
    job_id: str,
    events: pa.Table,
    items: pa.Table,
    config: dict[str, Any],
    active: str | None,
) -> tuple[dict[str, Any], float]:
    from training_jobs.train import handle_training_job

    prefix = f"datasets/{TENANT}/{job_id}/"
    s3.put_object(Bucket=DATA_BUCKET, Key=prefix + layout.SNAPSHOT_INTERACTIONS, Body=_parquet(events))
    s3.put_object(Bucket=DATA_BUCKET, Key=prefix + layout.SNAPSHOT_ITEMS, Body=_parquet(items))
    table.put_item(Item={"tenant_id": TENANT, "job_id": job_id, "status": "queued"})
    argv = [
        "--tenant-id", TENANT, "--job-id", job_id, "--dataset-uri", f"s3://{DATA_BUCKET}/{prefix}",
        "--artifacts-bucket", ARTIFACTS_BUCKET, "--version", job_id, "--jobs-table", JOBS_TABLE,
        "--config", json.dumps(config),
    ]  # fmt: skip
    if active:
        argv += ["--active-manifest-key", layout.manifest_key(TENANT, active)]
    started = time.perf_counter()
    code = handle_training_job(argv)
    seconds = time.perf_counter() - started
    if code != 0:
        record = table.get_item(Key={"tenant_id": TENANT, "job_id": job_id})["Item"]
        raise SystemExit(f"job {job_id} failed: {record.get('error')}")
    key = layout.manifest_key(TENANT, job_id)
    return json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read()), seconds


def _row(name: str, part: dict[str, Any] | None) -> str:
    metrics = (part or {}).get("metrics")
    if not metrics:
        return f"  {name:<11} -"
    return f"  {name:<11} ndcg@10={metrics['ndcg_10']:.4f} recall@10={metrics['recall_10']:.4f}"


def _report(job: str, manifest: dict[str, Any], seconds: float) -> None:
    gate = manifest["gate"]
    holdout, split = gate["holdout"], gate["split"]
    print(  # noqa: T201
        f"{job}: {seconds:.1f} s, gate holdout from {holdout['judged_from']} "
        f"({holdout['users']} users, {holdout['held_out_items']} held-out items; "
        f"fit {split['fit_events']} / selection {split['selection_events']} / "
        f"gate {split['gate_events']} events)"
    )
    for name in ("candidate", "active", "popularity"):
        print(_row(name, gate.get(name)))  # noqa: T201
    verdict = "PROMOTE" if gate["promote"] else "KEEP"
    print(f"  verdict     {verdict}: {gate['reason']}")  # noqa: T201


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=10, help="selection epochs (fixed work)")
    parser.add_argument("--active-share", type=float, default=0.7, help="older share the active trains on")
    args = parser.parse_args(argv)

    import boto3
    from moto import mock_aws

    from functions.common import resources

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    lightgcn = {"model_type": "lightgcn", "epochs": args.epochs, "patience": 0}
    untrained = {"model_type": "lightgcn", "epochs": 1, "learning_rate": 1e-7, "num_layers": 0}
    with tempfile.TemporaryDirectory() as directory, mock_aws():
        events, items = _sample(Path(directory), args.interactions, args.users, args.items)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
            s3.create_bucket(Bucket=bucket)
        table = boto3.resource("dynamodb", region_name=REGION).create_table(
            **table_definition(resources.TRAINING_JOBS, JOBS_TABLE)
        )
        print(  # noqa: T201
            f"sample: {events.num_rows} interactions, {args.users} users, {args.items} items; "
            f"LightGCN {args.epochs} selection epochs; cpu cores {os.cpu_count()}"
        )
        older = _older(events, args.active_share)
        manifest, seconds = _run_job(s3, table, "lightgcn_v1", older, items, lightgcn, None)
        label = f"lightgcn_v1 (older {args.active_share:.0%} of the history, no model yet)"
        _report(label, manifest, seconds)
        manifest, seconds = _run_job(s3, table, "auto_v2", events, items, {}, "lightgcn_v1")
        chosen = manifest["training"]["selection"]["chosen"]
        _report(f"auto_v2 (whole history, chose {chosen['model_type']}) vs lightgcn_v1", manifest, seconds)
        manifest, seconds = _run_job(s3, table, "lightgcn_v3", events, items, untrained, "lightgcn_v1")
        _report("lightgcn_v3 (whole history, untrained) vs lightgcn_v1", manifest, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
