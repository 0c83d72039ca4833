"""The training CLI end to end on moto: snapshot in S3 -> artifacts + manifest + job record."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from functions.common import resources
from tests.unit.training.factories import make_interactions, make_items, parquet_bytes
from training_jobs.storage import TrainingJobRepository
from training_jobs.train import handle_training_job

faiss = pytest.importorskip("faiss")

REGION = "us-east-1"
DATA_BUCKET = "embedrec-data-test"
ARTIFACTS_BUCKET = "embedrec-artifacts-test"
JOBS_TABLE = "embedrec-training-jobs-test"
TENANT = "tenant_123"
FAST = {"embedding_dim": 16, "num_layers": 2, "epochs": 4, "batch_size": 512, "learning_rate": 0.01}


@dataclass(frozen=True)
class Stack:
    """moto S3 + the jobs table, with helpers."""

    s3: Any
    table: Any

    def put_snapshot(self, job_id: str, interactions: pa.Table, items: pa.Table) -> str:
        prefix = f"datasets/{TENANT}/{job_id}/"
        self.s3.put_object(
            Bucket=DATA_BUCKET, Key=prefix + "interactions.parquet", Body=parquet_bytes(interactions)
        )
        self.s3.put_object(Bucket=DATA_BUCKET, Key=prefix + "items.parquet", Body=parquet_bytes(items))
        self.table.put_item(Item={"tenant_id": TENANT, "job_id": job_id, "status": "queued"})
        return f"s3://{DATA_BUCKET}/{prefix}"

    def artifact_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=ARTIFACTS_BUCKET, Prefix="models/")
        return sorted(obj["Key"] for obj in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read())

    def record(self, job_id: str) -> dict[str, Any]:
        return dict(self.table.get_item(Key={"tenant_id": TENANT, "job_id": job_id})["Item"])


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        spec = resources.TRAINING_JOBS
        assert spec.sort_key is not None
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        table = dynamodb.create_table(
            TableName=JOBS_TABLE,
            KeySchema=[
                {"AttributeName": spec.partition_key.name, "KeyType": "HASH"},
                {"AttributeName": spec.sort_key.name, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": k.name, "AttributeType": k.type} for k in spec.attribute_definitions()
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Stack(s3=s3, table=table)


def _argv(
    job_id: str, dataset_uri: str, config: dict[str, Any] | str, version: str = "lightgcn_v1"
) -> list[str]:
    return [
        "--tenant-id",
        TENANT,
        "--job-id",
        job_id,
        "--dataset-uri",
        dataset_uri,
        "--artifacts-bucket",
        ARTIFACTS_BUCKET,
        "--version",
        version,
        "--jobs-table",
        JOBS_TABLE,
        "--config",
        config if isinstance(config, str) else json.dumps(config),
    ]


def _spy_progress(monkeypatch: pytest.MonkeyPatch, stack: Stack, job_id: str) -> list[dict[str, Any]]:
    """Capture the stored record after each epoch update (what a status poller would see)."""
    seen: list[dict[str, Any]] = []
    original = TrainingJobRepository.record_epoch

    def record_epoch(self: TrainingJobRepository, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(stack.record(job_id))

    monkeypatch.setattr(TrainingJobRepository, "record_epoch", record_epoch)
    return seen


@pytest.mark.parametrize("model_type", ["lightgcn", "two_tower"])
def test_job_publishes_artifacts_and_reports_progress(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, model_type: str, tmp_path: Path
) -> None:
    # Given a snapshot of a small shop
    job_id = f"job_{model_type}"
    uri = stack.put_snapshot(job_id, make_interactions(150, 60, 2500, seed=7), make_items(64, 8))
    progress = _spy_progress(monkeypatch, stack, job_id)
    version = f"{model_type}_v1"

    # When the training container runs
    code = handle_training_job(_argv(job_id, uri, {"model_type": model_type, **FAST, "patience": 0}, version))

    # Then the job completed after reporting every epoch: the selection run, then the refit on the
    # whole window for the epochs the selection chose
    assert code == 0
    selection, refit = progress[:4], progress[4:]
    assert [p["current_epoch"] for p in selection] == [1, 2, 3, 4]
    assert [p["progress"] for p in selection] == [20, 40, 60, 80]
    assert refit and [p["metrics"]["refit_epoch"] for p in refit] == list(range(1, len(refit) + 1))
    assert all((p["current_epoch"], p["total_epochs"]) == (4, 4) for p in refit)  # the selection's count
    assert refit[-1]["progress"] == 99 and all(80 <= p["progress"] <= 99 for p in refit)
    assert all(p["status"] == "running" and "train_loss" in p["metrics"] for p in progress)
    assert "val_ndcg_10" in progress[-1]["metrics"]
    record = stack.record(job_id)
    prefix = f"models/{TENANT}/{version}/"
    assert record["status"] == "completed" and record["progress"] == 100
    assert (record["current_epoch"], record["total_epochs"]) == (4, 4)
    assert record["model_version"] == version
    assert record["artifacts_prefix"] == f"s3://{ARTIFACTS_BUCKET}/{prefix}"
    assert {
        "train_loss",
        "val_ndcg_10",
        "gate_ndcg_10",
        "gate_recall_10",
        "popularity_ndcg_10",
        "training_time_seconds",
    } <= set(record["metrics"])
    assert record["decision"]

    # And the artifact set is complete, hashed in the manifest and loadable without torch
    names = [
        "items.faiss",
        "items.parquet",
        "lookup.npz",
        "manifest.json",
        "popular.json",
        "user_tower.onnx",
        "user_tower.onnx.data",  # the tower's tables, which serving maps
    ]
    assert stack.artifact_keys() == [prefix + name for name in names]
    manifest = json.loads(stack.read(prefix + "manifest.json"))
    for name, entry in manifest["files"].items():
        data = stack.read(prefix + name)
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    assert manifest["tenant_id"] == TENANT and manifest["version"] == version
    assert manifest["model_type"] == model_type and manifest["embedding_dim"] == 16
    assert set(manifest["metrics"]) == {
        "ndcg_10",
        "recall_10",
        "precision_10",
        "ndcg_20",
        "recall_20",
        "precision_20",
    }
    assert set(manifest["baseline_metrics"]) == set(manifest["metrics"])
    assert manifest["index"]["type"] == "flat_ip" and "threshold" in manifest["index"]
    assert manifest["onnx"]["inputs"] == ["user_index", "item_indices", "item_weights"]
    assert manifest["counts"]["users"] == 150 and manifest["data_window"]["start"]

    n_items = manifest["n_items"]
    items = pq.read_table(io.BytesIO(stack.read(prefix + "items.parquet")))
    assert items.column_names == ["item_index", "item_id", "title", "category", "brand", "price"]
    assert items["item_index"].to_pylist() == list(range(n_items))
    with np.load(io.BytesIO(stack.read(prefix + "lookup.npz")), allow_pickle=False) as lookup:
        assert lookup["item_ids"].tolist() == items["item_id"].to_pylist()
        assert lookup["user_ids"].size == 150
        indptr, history = lookup["history_indptr"], lookup["history_items"]
        assert indptr.size == 151 and indptr[-1] == history.size == lookup["history_types"].size
        assert history.dtype == np.int32 and lookup["history_types"].dtype == np.int8
        assert 0 <= history.min() and history.max() < n_items
    popular = json.loads(stack.read(prefix + "popular.json"))
    assert popular["overall"][0].keys() == {"item_id", "score", "title", "category", "brand", "price"}
    assert set(popular["by_category"]) <= {f"cat_{i}" for i in range(8)}

    index = faiss.deserialize_index(np.frombuffer(stack.read(prefix + "items.faiss"), dtype=np.uint8))
    # The tower reads its tables from the file beside it, as serving's onnxruntime does from /tmp
    for name in ("user_tower.onnx", "user_tower.onnx.data"):
        (tmp_path / name).write_bytes(stack.read(prefix + name))
    session = ort.InferenceSession(str(tmp_path / "user_tower.onnx"), providers=["CPUExecutionProvider"])
    vector = session.run(
        None,
        {
            "user_index": np.array([0, -1], dtype=np.int64),
            "item_indices": np.array([[-1, -1], [1, 2]], dtype=np.int64),
            "item_weights": np.ones((2, 2), dtype=np.float32),
        },
    )[0]
    assert index.ntotal == n_items and vector.shape == (2, 16)
    _, top = index.search(vector, 5)
    assert ((top >= 0) & (top < n_items)).all()


def _bad_cases() -> list[tuple[str, Any]]:
    return [
        ("empty", "no interactions"),
        ("one_user", "at least 2 users"),
        ("no_catalogue_match", "no interaction refers to an item"),
        ("only_views", "every interaction is a 'view'"),
        ("nan_config", "learning_rate"),
        ("bad_dim", "embedding_dim"),
        ("missing_snapshot", "cannot read s3://"),
    ]


@pytest.mark.parametrize(("case", "message"), _bad_cases())
def test_bad_input_fails_the_job_without_artifacts(stack: Stack, case: str, message: str) -> None:
    interactions = make_interactions(30, 20, 300, seed=5)
    items = make_items(20, 4)
    config: dict[str, Any] | str = FAST
    if case == "empty":
        interactions = interactions.slice(0, 0)
    elif case == "one_user":
        interactions = interactions.set_column(1, "user_id", pa.array(["solo"] * 300))
    elif case == "no_catalogue_match":
        items = items.set_column(0, "item_id", pa.array([f"other_{i}" for i in range(20)]))
    elif case == "only_views":
        interactions = interactions.set_column(3, "interaction_type", pa.array(["view"] * 300))
    elif case == "nan_config":
        config = '{"learning_rate": NaN}'
    elif case == "bad_dim":
        config = {"embedding_dim": 0}
    uri = stack.put_snapshot(case, interactions, items)
    if case == "missing_snapshot":
        uri = f"s3://{DATA_BUCKET}/datasets/{TENANT}/nothing-here/"

    code = handle_training_job(_argv(case, uri, config))

    assert code == 1
    record = stack.record(case)
    assert record["status"] == "failed"
    assert message in record["error"]
    assert stack.artifact_keys() == []


def test_existing_version_is_not_overwritten(stack: Stack) -> None:
    uri = stack.put_snapshot("first", make_interactions(60, 30, 800, seed=8), make_items(30, 4))
    assert handle_training_job(_argv("first", uri, {**FAST, "epochs": 1})) == 0
    before = stack.read(f"models/{TENANT}/lightgcn_v1/manifest.json")
    stack.put_snapshot("second", make_interactions(60, 30, 800, seed=9), make_items(30, 4))
    assert handle_training_job(_argv("second", uri, {**FAST, "epochs": 1})) == 1
    assert "already published" in stack.record("second")["error"]
    assert stack.read(f"models/{TENANT}/lightgcn_v1/manifest.json") == before


def test_unusable_job_arguments_exit_2(stack: Stack) -> None:
    assert handle_training_job(["--tenant-id", TENANT]) == 2


def test_serving_loader_reads_what_the_trainer_publishes(stack: Stack) -> None:
    """Contract test (docs/artifacts.md): the serving function's loader accepts a trained version."""
    loader = pytest.importorskip("functions.serving.loader")
    storage = pytest.importorskip("functions.serving.store.storage")
    search = pytest.importorskip("functions.serving.search")
    registry = pytest.importorskip("functions.training.store.model_registry")
    uri = stack.put_snapshot("contract", make_interactions(80, 40, 1200, seed=11), make_items(40, 4))
    assert handle_training_job(_argv("contract", uri, {**FAST, "epochs": 2})) == 0
    pointer = registry.ActivePointer(
        version="lightgcn_v1", manifest_key=f"models/{TENANT}/lightgcn_v1/manifest.json", revision=1
    )
    bundle = loader.load_bundle(storage.ObjectReader(stack.s3, ARTIFACTS_BUCKET), TENANT, pointer)
    assert bundle.search.size == bundle.catalog.size and bundle.users.size == 80
    user = bundle.users.user_index("user_00003")
    vector = bundle.tower.user_vector(user, np.full(1, -1, np.int64), np.zeros(1, np.float32))
    result = bundle.search.search(vector, search.AllowedSet.everything(bundle.search.size), 5)
    assert result.indices.size == 5


def test_auto_trains_the_candidates_and_publishes_the_best(stack: Stack) -> None:
    # Given a small shop and a job asking for "auto" (the scheduled default)
    job_id = "job_auto"
    uri = stack.put_snapshot(job_id, make_interactions(150, 60, 2500, seed=7), make_items(64, 8))
    config = {"model_type": "auto", **FAST, "als_factors": 8, "ease_rank": 16, "recency_half_life_days": 30}

    # When the training container runs
    assert handle_training_job(_argv(job_id, uri, config, "auto_v1")) == 0

    # Then every candidate that fits was tried, the best on the selection split was published under its
    # own model type, and the job record says which one won and what each reached
    record = stack.record(job_id)
    manifest = json.loads(stack.read(f"models/{TENANT}/auto_v1/manifest.json"))
    tried = manifest["training"]["selection"]["candidates"]
    assert {c["model_type"] for c in tried} == {"ease", "graph_filter", "als", "lightgcn"}
    assert all(c["status"] == "ok" and c["peak_memory_mb"] > 0 for c in tried)
    best = max(tried, key=lambda c: c["metrics"]["ndcg_10"])
    assert (
        manifest["model_type"]
        == best["model_type"]
        == manifest["training"]["selection"]["chosen"]["model_type"]
    )
    assert manifest["metrics"]["ndcg_10"] > 0  # measured on the gate's hold-out, not the selection split
    metrics = record["metrics"]
    assert str(metrics["selected_model"]).startswith(best["model_type"] + "(")
    assert {
        "candidate_ease_ndcg_10",
        "candidate_graph_filter_ndcg_10",
        "candidate_als_ndcg_10",
        "candidate_lightgcn_ndcg_10",
    } <= set(metrics)


def test_ease_on_too_many_items_fails_clearly(stack: Stack) -> None:
    job_id = "job_ease"
    uri = stack.put_snapshot(job_id, make_interactions(150, 60, 2500, seed=7), make_items(64, 8))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("training_jobs.candidate_plan.EASE_MAX_ITEMS", 10)
        assert handle_training_job(_argv(job_id, uri, {"model_type": "ease"}, "ease_v1")) == 1
    assert "model_type 'ease' is offered up to 10 items" in stack.record(job_id)["error"]
    assert stack.artifact_keys() == []


def test_graph_filter_job_publishes_what_serving_loads(stack: Stack) -> None:
    """The graph filter exports through the same contract: serving's loader and search take it unchanged."""
    loader = pytest.importorskip("functions.serving.loader")
    storage = pytest.importorskip("functions.serving.store.storage")
    search = pytest.importorskip("functions.serving.search")
    # Given a small shop and a job asking for the graph filter
    uri = stack.put_snapshot("job_gf", make_interactions(80, 40, 1200, seed=11), make_items(40, 4))
    config = {"model_type": "graph_filter", "graph_filter_rank": 12}

    # When the training container runs
    assert handle_training_job(_argv("job_gf", uri, config, "graph_filter_v1")) == 0

    # Then the manifest records the filter and the chosen (rank, beta), and serving loads and searches it
    manifest = json.loads(stack.read(f"models/{TENANT}/graph_filter_v1/manifest.json"))
    assert manifest["model_type"] == "graph_filter"
    chosen = manifest["training"]["selection"]["chosen"]
    assert chosen["model_type"] == "graph_filter" and set(chosen["params"]) == {"rank", "beta"}
    assert stack.record("job_gf")["status"] == "completed"
    pointer = storage.ActivePointer(
        version="graph_filter_v1", manifest_key=f"models/{TENANT}/graph_filter_v1/manifest.json", revision=1
    )
    bundle = loader.load_bundle(storage.ObjectReader(stack.s3, ARTIFACTS_BUCKET), TENANT, pointer)
    user = bundle.users.user_index("user_00003")
    vector = bundle.tower.user_vector(user, np.full(1, -1, np.int64), np.zeros(1, np.float32))
    assert np.isfinite(vector).all() and np.abs(vector).sum() > 0
    result = bundle.search.search(vector, search.AllowedSet.everything(bundle.search.size), 5)
    assert result.indices.size == 5
