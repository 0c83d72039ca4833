"""``make bench-scale``: one large tenant through every stage, each stage in its own process.

The parent starts a moto server, provisions the platform's resources from the shared specs, generates a
tenant (skewed users and items, CSV files no larger than the drop folder's line cap), puts the files in
the drop folder and then runs each stage as a fresh child process, the way each runs in AWS (one Lambda
invocation per dropped file, a steady stream of real-time JSON events through the api function and the
events compactor, one PrepareDataset invocation, one Batch job, one cold serving container).
A child measures its own wall time, peak RSS and the AWS requests it made, and prints them as JSON lines;
the parent compares each against the limit the stage runs under (``functions.common.deployment`` and the
Batch job definition's sizes) and prints a table and one summary line.

The moto server runs in its own process, so the emulator's memory is never counted as a stage's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv

from contract import layout
from contract.interactions import INTERACTION_TYPES
from functions.common import deployment, resources
from functions.ingestion.tables import MAX_CSV_BYTES, MAX_CSV_LINES

REGION = "us-east-1"
TENANT = "bench-scale"
JOB_ID = "scale-job"
VERSION = "scale_v1"
INTERACTION_SHARES = (0.70, 0.20, 0.06, 0.04)
#: The Batch job definition's sizes (``cdk/names.py``; restated here because the CDK package is not
#: importable without aws-cdk, and a test compares the two).
TRAINING_MEMORY_MIB = 14_336
TRAINING_TIMEOUT_S = 4 * 3600
#: API Gateway's integration timeout: a cold load longer than this is an error for the caller.
API_TIMEOUT_S = 29
#: The training work is fixed (a few ALS sweeps, or one epoch of a small LightGCN) so figures do not
#: depend on load. ALS is the cheapest strong CPU candidate of the training job.
TRAINING_CONFIGS: dict[str, dict[str, Any]] = {
    "als": {
        "model_type": "als",
        "als_factors": 32,
        "als_iterations": 5,
        "device": "cpu",
        "cpu_threads": 1,
    },
    "lightgcn": {
        "model_type": "lightgcn",
        "embedding_dim": 32,
        "num_layers": 1,
        "epochs": 1,
        "batch_size": 16384,
        "num_negatives": 256,
        "patience": 0,
        "device": "cpu",
        "cpu_threads": 1,
    },
}


# --------------------------------------------------------------------------------------------------
# Measurement inside a stage process
# --------------------------------------------------------------------------------------------------


class RequestCounter:
    """Counts AWS API calls by ``service.Operation`` (registered before any client is created)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0  # summed over calls (concurrent calls overlap, so it can exceed wall time)
        self.busy = 0.0  # wall time with at least one call in flight: the rest is the stage's own work
        self._in_flight = 0
        self._busy_since = 0.0
        self._started = threading.local()
        self._lock = threading.Lock()

    def install(self) -> None:
        """Hook boto3's default session, which every client of the functions is created from."""
        import boto3

        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", self._count)
        session.events.register("after-call", self._done)
        session.events.register("after-call-error", self._done)

    def _count(self, model: Any = None, **_: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            if model is not None:
                self.calls[f"{model.service_model.service_name}.{model.name}"] += 1
            if self._in_flight == 0:
                self._busy_since = now
            self._in_flight += 1
        self._started.at = now

    def _done(self, **_: Any) -> None:
        started = getattr(self._started, "at", None)
        now = time.perf_counter()
        with self._lock:
            if started is not None:
                self.seconds += now - started
            self._in_flight = max(0, self._in_flight - 1)
            if self._in_flight == 0:
                self.busy += now - self._busy_since

    def take(self) -> tuple[dict[str, int], float, float]:
        """Since the last ``take``: the calls, the seconds in them, the wall time with one in flight."""
        with self._lock:
            taken, seconds, busy = dict(self.calls), self.seconds, self.busy
            self.calls.clear()
            self.seconds = self.busy = 0.0
        return taken, round(seconds, 2), round(busy, 2)


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (``VmHWM``), so each sub-stage has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    """Peak RSS since the last reset (``VmHWM``), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StageResult:
    """One stage's measurement, as a child prints it."""

    stage: str
    wall_s: float
    peak_rss_mb: float
    requests: dict[str, int]
    limit: str
    limit_memory_mb: float
    limit_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def within_limit(self) -> bool:
        """Whether the stage stayed within its memory and time limits (a stage of many invocations:
        its slowest one, ``slowest_call_s``, against the timeout)."""
        slowest = float(self.extra.get("slowest_call_s", self.wall_s))
        return self.peak_rss_mb <= self.limit_memory_mb and slowest <= self.limit_time_s


@contextmanager
def measured(
    stage: str,
    counter: RequestCounter,
    limit: tuple[str, float, float],
    out: list[StageResult],
) -> Iterator[dict[str, Any]]:
    """Measure the block as ``stage`` (wall time, peak RSS, AWS calls); the block may add extras."""
    _reset_peak()
    counter.take()
    extra: dict[str, Any] = {}
    started = time.perf_counter()
    yield extra
    wall = time.perf_counter() - started
    calls, aws_s, busy_s = counter.take()
    extra["aws_call_s"] = aws_s
    extra["own_s"] = round(max(0.0, wall - busy_s), 2)  # wall time with no AWS call in flight
    out.append(StageResult(stage, round(wall, 3), round(_peak_mb(), 1), calls, *limit, extra=extra))


def _limit_of(spec: deployment.FunctionSpec) -> tuple[str, float, float]:
    return (f"Lambda {spec.name}: {spec.memory_mb} MB, {spec.timeout_s} s", spec.memory_mb, spec.timeout_s)


def _training_limit() -> tuple[str, float, float]:
    return (
        f"Batch job: {TRAINING_MEMORY_MIB} MiB, {TRAINING_TIMEOUT_S // 3600} h",
        TRAINING_MEMORY_MIB,
        TRAINING_TIMEOUT_S,
    )


# --------------------------------------------------------------------------------------------------
# The tenant
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """The tenant's size and the generator's knobs."""

    rows: int
    users: int
    items: int
    event_id_fraction: float
    seed: int = 7


def _zipf_weights(n: int, exponent: float, offset: float) -> npt.NDArray[np.float64]:
    weights: npt.NDArray[np.float64] = 1.0 / np.power(np.arange(n, dtype=np.float64) + offset, exponent)
    normalised: npt.NDArray[np.float64] = weights / weights.sum()
    return normalised


def generate(size: Size, folder: Path, now: datetime) -> list[Path]:
    """Write ``items.csv`` and ``interactions_NNN.csv`` files; returns the interaction files.

    Skew as shops see it: item popularity is Zipf-like (the top 1% of items take about a third of the
    interactions), shopper activity is log-normal (most shoppers a few events, a few hundred for some).
    """
    rng = np.random.default_rng(size.seed)
    item_ids = np.char.add("i", np.arange(size.items).astype(str))
    categories = np.char.add("cat", (np.arange(size.items) % 200).astype(str))
    brands = np.char.add("brand", (np.arange(size.items) % 1000).astype(str))
    items = pa.table(
        {
            "item_id": item_ids,
            "title": np.char.add("Product ", np.arange(size.items).astype(str)),
            "category": categories,
            "price": np.round(rng.lognormal(3.5, 1.0, size.items), 2),
            "brand": brands,
        }
    )
    pa_csv.write_csv(items, folder / "items.csv", write_options=pa_csv.WriteOptions(quoting_style="none"))
    item_p = _zipf_weights(size.items, 1.0, 10.0)[rng.permutation(size.items)]
    user_p = rng.lognormal(0.0, 1.2, size.users)
    user_p /= user_p.sum()
    per_file = min(MAX_CSV_LINES, 1_000_000)
    span_ms = 90 * 24 * 3600 * 1000
    end_ms = int((now - timedelta(days=1)).timestamp() * 1000)
    files: list[Path] = []
    for number, start in enumerate(range(0, size.rows, per_file)):
        n = min(per_file, size.rows - start)
        users = rng.choice(size.users, n, p=user_p)
        picked = rng.choice(size.items, n, p=item_p)
        stamps = np.sort(rng.integers(end_ms - span_ms, end_ms, n)).astype("datetime64[ms]")
        types = rng.choice(len(INTERACTION_TYPES), n, p=INTERACTION_SHARES)
        with_id = rng.random(n) < size.event_id_fraction
        event_ids = np.where(with_id, np.char.add("e", np.arange(start, start + n).astype(str)), "")
        table = pa.table(
            {
                "event_id": event_ids,
                "user_id": np.char.add("u", users.astype(str)),
                "item_id": item_ids[picked],
                "interaction_type": np.asarray(INTERACTION_TYPES)[types],
                "timestamp": np.char.add(np.datetime_as_string(stamps, unit="s"), "Z"),
            }
        )
        path = folder / f"interactions_{number:03d}.csv"
        pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="none"))
        assert path.stat().st_size <= MAX_CSV_BYTES
        files.append(path)
    return files


# --------------------------------------------------------------------------------------------------
# Stages (each runs in a child process)
# --------------------------------------------------------------------------------------------------


def _stage_ingest(keys: list[str], counter: RequestCounter) -> list[StageResult]:
    """One drop-folder invocation per file, as the queue delivers them (one file per process here)."""
    from functions.ingestion.drop_folder import ingest_dropped_file

    out: list[StageResult] = []
    for key in keys:
        name = "ingest " + key.rsplit("/", 2)[-2]
        with measured(name, counter, _limit_of(deployment.INGEST), out) as extra:
            report = ingest_dropped_file(key, datetime.now(UTC))
            extra.update(
                {k: report.get(k) for k in ("status", "accepted", "rejected", "duplicates")}
                | {"file_mb": round(_object_size(key) / 1e6, 1)}
            )
    return out


@dataclass(frozen=True)
class EventStream:
    """The steady real-time stage: ``events`` JSON events, ``per_request`` to a request.

    ``path``: ``queued`` (the api function hands each request off; the compactor stores batches) or
    ``direct`` (each request stored on its own, as the api function does when SendMessage fails).
    """

    events: int
    per_request: int = 1
    path: str = "queued"


def _stage_events(counter: RequestCounter, stream: EventStream, users: int, items: int) -> list[StageResult]:
    """Real-time JSON events: the api function's path, request by request (validation, event-id claims,
    the recent-events feed, the record, the hand-off), then the compactor, batch by batch, as the event
    source mapping delivers them (``resources.EVENTS_QUEUE.batch_size`` messages a batch)."""
    from embedrec_local.runner import LambdaRunner
    from functions.common import aws
    from functions.common.ids import new_id
    from functions.common.settings import StorageSettings
    from functions.ingestion.store.event_queue import EventQueue
    from functions.ingestion.wiring import build_ingestion_service

    queue_url = os.environ[resources.EVENTS_QUEUE.env_var]
    queue = EventQueue(aws.sqs_client(), queue_url) if stream.path == "queued" else None
    service = build_ingestion_service(StorageSettings(), queue)  # type: ignore[call-arg]
    rng = np.random.default_rng(11)
    requests = -(-stream.events // stream.per_request)
    objects_before = len(_raw_interaction_keys())
    out: list[StageResult] = []
    with measured(f"events: api, {requests:,} requests", counter, _limit_of(deployment.API), out) as extra:
        accepted, slowest = 0, 0.0
        for number in range(requests):
            count = min(stream.per_request, stream.events - number * stream.per_request)
            stamp = (datetime.now(UTC) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
            records: list[dict[str, Any]] = [
                {
                    "event_id": f"rt{number}-{k}",
                    "user_id": f"u{rng.integers(users)}",
                    "item_id": f"i{rng.integers(items)}",
                    "interaction_type": "view",
                    "timestamp": stamp,
                }
                for k in range(count)
            ]
            started = time.perf_counter()
            report = service.ingest_interaction_records(
                TENANT, records, upload_id=new_id("upload"), now=datetime.now(UTC)
            )
            slowest = max(slowest, time.perf_counter() - started)
            accepted += report.accepted
        extra.update(
            events=stream.events, accepted=accepted, path=stream.path, slowest_call_s=round(slowest, 3)
        )
    if stream.path == "queued":
        batches = _receive_batches(queue_url, resources.EVENTS_QUEUE.batch_size)
        runner = LambdaRunner()
        spec = deployment.COMPACT_EVENTS
        with measured(f"events: compactor, {len(batches)} batches", counter, _limit_of(spec), out) as extra:
            slowest, failed = 0.0, 0
            for batch in batches:
                started = time.perf_counter()
                result = runner.invoke(spec.name, {"Records": batch})
                slowest = max(slowest, time.perf_counter() - started)
                failed += len(result["batchItemFailures"])
            extra.update(messages=sum(map(len, batches)), failed=failed, slowest_call_s=round(slowest, 3))
        _delete_messages(queue_url, [record for batch in batches for record in batch])
    out[-1].extra["objects_written"] = len(_raw_interaction_keys()) - objects_before
    return out


def _raw_interaction_keys() -> list[str]:
    from functions.common import aws
    from functions.ingestion.store.data_store import list_keys

    bucket = os.environ[resources.DATA_BUCKET.env_var]
    return list_keys(aws.s3_client(), bucket, resources.raw_prefix(TENANT, "interactions"))


def _receive_batches(queue_url: str, batch_size: int) -> list[list[dict[str, Any]]]:
    """Every queued message, as SQS events' records in batches of ``batch_size`` (the mapping's)."""
    from functions.common import aws

    sqs = aws.sqs_client()
    records: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:embedrec-events",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    return [records[start : start + batch_size] for start in range(0, len(records), batch_size)]


def _delete_messages(queue_url: str, records: list[dict[str, Any]]) -> None:
    from functions.common import aws

    sqs = aws.sqs_client()
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(chunk)],
        )


def _object_size(key: str) -> int:
    from functions.common import aws

    bucket = os.environ[resources.DATA_BUCKET.env_var]
    return int(aws.s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])


def _stage_prepare(counter: RequestCounter) -> list[StageResult]:
    from functions.common import aws
    from functions.ingestion.store.data_store import DataStore
    from functions.ingestion.store.uploads import UploadRepository
    from functions.training.dataset import prepare_snapshot

    spec = next(s for s in deployment.PIPELINE_STEPS if s.name == "prepare-dataset")
    out: list[StageResult] = []
    store = DataStore(aws.s3_client(), os.environ[resources.DATA_BUCKET.env_var])
    uploads = UploadRepository(aws.dynamodb_resource().Table(os.environ[resources.UPLOADS.env_var]))
    with measured("prepare dataset", counter, _limit_of(spec), out) as extra:
        snapshot = prepare_snapshot(
            store, uploads, TENANT, JOB_ID, window_days=90, as_of=None, validation_fraction=0.2
        )
        extra.update(
            interactions=snapshot.interactions,
            validation=snapshot.validation,
            users=snapshot.users,
            items=snapshot.items,
        )
    return out


def _stage_train(counter: RequestCounter, model: str) -> list[StageResult]:
    """The training job's own entry point, with its steps timed where the job calls them."""
    from training_jobs import job
    from training_jobs.train import handle_training_job

    out: list[StageResult] = []
    limit = _training_limit()
    steps = {
        "prepare_data": "train: read + encode",
        "select_candidate": "train: fit",  # fit and score on the validation split
        "judge": "train: gate",  # the chosen candidate, the active model and popularity on the gate holdout
        "train_model": "train: fit",  # a job that trains one model without candidates
        "refit": "train: refit",  # the winner again on every interaction, when the job refits
        "build_artifacts": "export",
        "publish_artifacts": "publish",
    }
    for attribute, stage in steps.items():
        original = getattr(job, attribute, None)
        if original is not None:
            setattr(job, attribute, _timed(original, stage, counter, limit, out))
    bucket = os.environ[resources.DATA_BUCKET.env_var]
    status = handle_training_job(
        [
            "--tenant-id",
            TENANT,
            "--job-id",
            JOB_ID,
            "--dataset-uri",
            f"s3://{bucket}/datasets/{TENANT}/{JOB_ID}/",
            "--artifacts-bucket",
            os.environ[resources.ARTIFACTS_BUCKET.env_var],
            "--version",
            VERSION,
            "--jobs-table",
            os.environ[resources.TRAINING_JOBS.env_var],
            "--config",
            json.dumps(TRAINING_CONFIGS[model]),
        ]
    )
    if status != 0:
        raise SystemExit(f"the training job failed with status {status}")
    return out


def _timed(
    function: Callable[..., Any],
    stage: str,
    counter: RequestCounter,
    limit: tuple[str, float, float],
    out: list[StageResult],
) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        with measured(stage, counter, limit, out):
            return function(*args, **kwargs)

    return run


def _stage_serve(counter: RequestCounter, requests: int) -> list[StageResult]:
    from functions.common import aws
    from functions.serving import loader, search
    from functions.serving.store import storage
    from functions.training.store.model_registry import ActivePointer

    out: list[StageResult] = []
    limit = _limit_of(deployment.SERVING)
    bucket = os.environ[resources.ARTIFACTS_BUCKET.env_var]
    pointer = ActivePointer(version=VERSION, manifest_key=layout.manifest_key(TENANT, VERSION), revision=1)
    with measured("cold load", counter, (limit[0], limit[1], float(API_TIMEOUT_S)), out) as extra:
        bundle = loader.load_bundle(storage.ObjectReader(aws.s3_client(), bucket), TENANT, pointer)
        extra.update(users=bundle.users.size, items=bundle.catalog.size)
    rng = np.random.default_rng(3)
    history = np.full(1, -1, np.int64)
    weights = np.zeros(1, np.float32)
    latencies: list[float] = []
    with measured("warm serving", counter, (limit[0], limit[1], float(API_TIMEOUT_S)), out) as extra:
        everything = search.AllowedSet.everything(bundle.search.size)
        for _ in range(requests):
            user = f"u{int(rng.integers(0, bundle.users.size))}"
            started = time.perf_counter()
            index = bundle.users.user_index(user)
            vector = bundle.tower.user_vector(index, history, weights)
            bundle.search.search(vector, everything, 10)
            latencies.append((time.perf_counter() - started) * 1000)
        extra.update(
            requests=requests,
            p50_ms=round(float(np.percentile(latencies, 50)), 3),
            p99_ms=round(float(np.percentile(latencies, 99)), 3),
        )
    # The warm stage's limit is per request; the block above runs many of them.
    out[-1].limit_time_s = float(API_TIMEOUT_S) * requests
    return out


def run_stage(argv: list[str]) -> None:
    """Child entry: run one stage and print its results as JSON lines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=["ingest", "events", "prepare", "train", "serve"])
    parser.add_argument("--keys", nargs="*", default=[])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--model", choices=sorted(TRAINING_CONFIGS), default="als")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--events-per-request", type=int, default=1)
    parser.add_argument("--events-path", choices=["queued", "direct"], default="queued")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args(argv)
    counter = RequestCounter()
    counter.install()
    if args.stage == "ingest":
        results = _stage_ingest(args.keys, counter)
    elif args.stage == "events":
        stream = EventStream(args.events, args.events_per_request, args.events_path)
        results = _stage_events(counter, stream, args.users, args.items)
    elif args.stage == "prepare":
        results = _stage_prepare(counter)
    elif args.stage == "train":
        results = _stage_train(counter, args.model)
    else:
        results = _stage_serve(counter, args.requests)
    for result in results:
        print("BENCH " + json.dumps(result.__dict__), flush=True)  # noqa: T201


# --------------------------------------------------------------------------------------------------
# The parent: moto server, provisioning, tenant, the stages in order, the table
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(port: int) -> dict[str, str]:
    from embedrec_local.provision import LocalNames

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "embedrec",
        "POWERTOOLS_SERVICE_NAME": "embedrec-bench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "LOG_LEVEL": "WARNING",
        **LocalNames().environment(),
    }
    return env


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the moto server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("the moto server did not start")


def _setup_tenant(folder: Path, files: list[Path], now: datetime) -> tuple[str, list[str]]:
    """Provision, create the tenant, issue an upload per file and put the files in the drop folder."""
    import boto3

    from embedrec_local.provision import LocalNames, provision
    from functions.identity.models import Plan, Tenant
    from functions.identity.store.tenants import TenantRepository
    from functions.ingestion.store.uploads import UploadRepository

    names = LocalNames()
    provision(names, REGION)
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    TenantRepository(dynamodb.Table(names.table(resources.TENANTS))).create(
        Tenant(TENANT, "Bench scale", TENANT, Plan.ENTERPRISE, "active", {}, now)
    )
    uploads = UploadRepository(dynamodb.Table(names.table(resources.UPLOADS)))
    s3 = boto3.client("s3", region_name=REGION)
    bucket = names.bucket(resources.DATA_BUCKET)

    def drop(path: Path, kind: str, number: int) -> str:
        upload_id = f"upload_{number:012x}"
        uploads.put_pending(TENANT, upload_id, kind, now)
        key = f"{resources.DROP_FOLDER_PREFIX}{TENANT}/{kind}/{upload_id}.csv"
        s3.upload_file(str(path), bucket, key)
        return key

    items_key = drop(folder / "items.csv", "items", 1)
    return items_key, [drop(path, "interactions", 2 + n) for n, path in enumerate(files)]


def _run_child(args: list[str], env: dict[str, str]) -> list[StageResult]:
    command = [sys.executable, "-m", "embedrec_local.bench_scale", "--stage", *args]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    results = [
        StageResult(**json.loads(line[6:]))
        for line in completed.stdout.splitlines()
        if line.startswith("BENCH ")
    ]
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"stage {args[0]} failed with status {completed.returncode}")
    return results


def _print_table(results: list[StageResult]) -> None:
    header = f"{'stage':<26}{'wall_s':>9}{'peak_mb':>10}{'requests':>10}  {'limit':<38}ok  details"
    print(header)  # noqa: T201
    for r in results:
        calls = sum(r.requests.values())
        ok = "yes" if r.within_limit else "NO"
        print(  # noqa: T201
            f"{r.stage:<26}{r.wall_s:>9.2f}{r.peak_rss_mb:>10.0f}{calls:>10}  {r.limit:<38}{ok:<4}"
            f"{json.dumps(r.extra)} {json.dumps(r.requests)}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark (or, with ``--stage``, one stage in this process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--stage"]:
        run_stage(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument(
        "--event-id-fraction", type=float, default=0.1, help="share of rows carrying a client event id"
    )
    parser.add_argument("--requests", type=int, default=2000, help="warm recommendation requests")
    parser.add_argument("--model", choices=sorted(TRAINING_CONFIGS), default="als", help="what to train")
    parser.add_argument("--json", type=Path, help="also write every stage's result here")
    parser.add_argument(
        "--events", type=int, default=100, help="real-time JSON events posted after the files (0: none)"
    )
    parser.add_argument("--events-per-request", type=int, default=1, help="events in one request")
    parser.add_argument(
        "--events-path",
        choices=["queued", "direct"],
        default="queued",
        help="queued: handed off and compacted in batches; direct: each request stored on its own",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="stop after the drop-folder files are ingested (no events, preparation, training or serving)",
    )
    args = parser.parse_args(argv)
    # A stopped run still stops its moto server (the ``finally`` below runs on SIGTERM too).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = Size(args.rows, args.users, args.items, args.event_id_fraction)
    started = time.perf_counter()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        folder = Path(scratch)
        generated = time.perf_counter()
        files = generate(size, folder, now)
        took = time.perf_counter() - generated
        print(f"generated {size.rows:,} rows in {len(files)} file(s) in {took:.1f} s")  # noqa: T201
        port = _free_port()
        env = {**os.environ, **_environment(port)}
        os.environ.update(_environment(port))
        server = subprocess.Popen(
            [sys.executable, "-m", "embedrec_local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        results: list[StageResult] = []
        try:
            _wait_for(port, server)
            items_key, interaction_keys = _setup_tenant(folder, files, now)
            results += _run_child(["ingest", "--keys", items_key], env)
            for key in interaction_keys:  # one container per file, as parallel deliveries would be
                results += _run_child(["ingest", "--keys", key], env)
                _print_table(results[-1:])
            if not args.ingest_only:
                if args.events:
                    stream = [
                        "--events",
                        str(args.events),
                        "--events-per-request",
                        str(args.events_per_request),
                    ]
                    sizes = ["--users", str(size.users), "--items", str(size.items)]
                    results += _run_child(["events", *stream, "--events-path", args.events_path, *sizes], env)
                    _print_table(results[-2:])
                results += _run_child(["prepare"], env)
                _print_table(results[-1:])
                results += _run_child(["train", "--model", args.model], env)
                results += _run_child(["serve", "--requests", str(args.requests)], env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a loaded machine: the results are in, do not lose them
                server.kill()
                server.wait()
    _print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    within = sum(r.within_limit for r in results)
    print(  # noqa: T201
        f"bench-scale: rows={size.rows} users={size.users} items={size.items} "
        f"within_limits={within}/{len(results)} peak_rss_mb={max(r.peak_rss_mb for r in results):.0f} "
        f"wall_s={time.perf_counter() - started:.0f}"
    )
    return 0 if within == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
