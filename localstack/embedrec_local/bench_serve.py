"""Benchmark: serving latency, ANN recall and cold load, in-process.

``python -m embedrec_local.bench_serve [--items 5000 1000000] [--requests 2000]`` builds a synthetic,
structured catalogue per size (``embedrec_local.synthetic_models``: 64-d vectors around topic centres),
exports a real artifact set (ONNX user tower, FAISS index, lookup.npz, popular.json, manifest with
hashes), loads it through the serving loader and then measures:

- **service latency** — ``RecommendationService.recommend`` per request (user lookup, recent events,
  ONNX fold-in, filter bitmap, FAISS search, reasons), the response cache off, for a mix of requests:
  known users, category / category+price filters, users with fresh events, cold users;
- **cache hits** — the same service with the response cache on, asking a cached question;
- **Recall@10** of the index path against exact brute force, unfiltered and filtered;
- **cold load** of a 5k-item tenant from moto S3: a fresh container's model store to the first answer,
  plus the app's import time in a fresh interpreter.

The 1M-item index is IVF-Flat (built here, bounded: k-means on a 100k sample); 5k items use the exact
``IndexFlatIP``, as training does below its threshold. FAISS and onnxruntime run on one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from contract import layout
from embedrec_local import synthetic_models as synthetic
from functions.common.errors import NotFoundError
from functions.common.observability import logger
from functions.serving.bundle import ModelBundle
from functions.serving.cache import ResponseCache
from functions.serving.domain import Ranking, RecommendationQuery, UserEvent, UserFeed
from functions.serving.filters import ItemFilters
from functions.serving.loader import load_bundle
from functions.serving.search import AllowedSet
from functions.serving.service import RecommendationService
from functions.serving.store.model_store import ModelStore
from functions.training.store.model_registry import ActivePointer

TENANT = "tenant_bench"
VERSION = "lightgcn_v1"


class _MemoryObjects:
    """An object reader over a dict (S3 stand-in for the latency runs)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.bucket = "memory"

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise NotFoundError(key) from None

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def download(self, key: str, destination: Path) -> str:
        data = self.get_bytes(key)
        destination.write_bytes(data)
        return hashlib.sha256(data).hexdigest()


class _Registry:
    def __init__(self, pointer: ActivePointer) -> None:
        self.pointer = pointer

    def active(self, _tenant_id: str) -> ActivePointer:
        return self.pointer


class _Events:
    """Recent events from memory: the service's DynamoDB query replaced by a dict lookup."""

    def __init__(self, events: dict[str, list[UserEvent]]) -> None:
        self.events = events

    def newest(self, _tenant_id: str, user_id: str, limit: int) -> list[UserEvent]:
        return self.events.get(user_id, [])[:limit]

    def feed(self, tenant_id: str, user_id: str, limit: int) -> UserFeed:
        return UserFeed(self.newest(tenant_id, user_id, limit))


@dataclass(frozen=True)
class Percentiles:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Percentiles:
        """Summarise samples (ms)."""
        data = np.asarray(samples)
        return cls(
            len(data), float(np.percentile(data, 50)), float(np.percentile(data, 99)), float(data.mean())
        )

    def row(self) -> str:
        """``p50 / p99 / mean`` for a table."""
        return f"{self.p50:.2f} / {self.p99:.2f} / {self.mean:.2f} ms (n={self.n})"


def _say(text: str) -> None:
    print(text, file=sys.__stdout__, flush=True)  # noqa: T201  # a benchmark reports on stdout


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _files(world: synthetic.SyntheticWorld, n_items: int) -> dict[str, bytes]:
    if n_items <= 100_000:
        return synthetic.artifact_set(world, tenant_id=TENANT, version=VERSION, index_kind="flat_ip")
    nlist = 2048
    return synthetic.artifact_set(
        world,
        tenant_id=TENANT,
        version=VERSION,
        index_kind="ivf",
        index_params={"nlist": nlist, "nprobe": 32},
        compress=False,
    )


def _requests(world: synthetic.SyntheticWorld, n: int, seed: int) -> list[tuple[str, RecommendationQuery]]:
    """A seeded mix of request kinds: (kind, query)."""
    rng = np.random.default_rng(seed)
    users = world.user_ids
    kinds = ["known", "category", "category+price", "fresh events", "cold"]
    out: list[tuple[str, RecommendationQuery]] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        user = str(users[rng.integers(0, users.size)])
        if kind == "known":
            out.append((kind, RecommendationQuery(user, 10)))
        elif kind == "category":
            category = synthetic.CATEGORIES[rng.integers(0, len(synthetic.CATEGORIES))]
            out.append((kind, RecommendationQuery(user, 10, ItemFilters(categories=(category,)))))
        elif kind == "category+price":
            out.append(
                (kind, RecommendationQuery(user, 10, ItemFilters(("Laptops", "Tablets"), 1000.0, 2000.0)))
            )
        elif kind == "fresh events":
            out.append((kind, RecommendationQuery(f"fresh_{i % 200}", 10)))
        else:
            out.append((kind, RecommendationQuery(f"cold_{i}", 10)))
    return out


def _fresh_events(world: synthetic.SyntheticWorld, seed: int) -> dict[str, list[UserEvent]]:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    events: dict[str, list[UserEvent]] = {}
    for user in range(200):
        items = rng.integers(0, world.item_ids.size, 5)
        events[f"fresh_{user}"] = [
            UserEvent(str(world.item_ids[item]), "click", now - timedelta(minutes=5 * j), f"k{j}")
            for j, item in enumerate(items)
        ]
    return events


def _service(
    objects: _MemoryObjects, events: dict[str, list[UserEvent]], cache_entries: int
) -> RecommendationService:
    store = ModelStore(
        _Registry(ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)),  # type: ignore[arg-type]
        objects,  # type: ignore[arg-type]
        objects,  # type: ignore[arg-type]
        refresh_seconds=3600,
        max_tenants=2,
    )
    cache: ResponseCache[Ranking] = ResponseCache(cache_entries, 60.0)
    return RecommendationService(
        store,
        _Events(events),  # type: ignore[arg-type]
        cache,
        recent_events_limit=20,
        fold_in_half_life_hours=24,
    )


def _recall(
    bundle: ModelBundle, world: synthetic.SyntheticWorld, queries: int, seed: int
) -> dict[str, float]:
    """Recall@10 of the serving search against exact brute force (unfiltered and filtered)."""
    rng = np.random.default_rng(seed)
    vectors = world.item_vectors
    filters = {
        "unfiltered": ItemFilters(),
        "one category (~12 %)": ItemFilters(categories=("Audio",)),
        "category+price": ItemFilters(("Laptops", "Tablets"), 1000.0, 2000.0),
    }
    out: dict[str, float] = {}
    for name, item_filters in filters.items():
        mask = bundle.catalog.filter_mask(item_filters)
        allowed = AllowedSet.from_mask(mask)
        hits = 0
        for user in rng.integers(0, world.user_ids.size, queries):
            query = bundle.tower.user_vector(int(user), np.empty(0, np.int64), np.empty(0, np.float32))
            got = bundle.search.search(query, allowed, 10).indices
            scores = np.where(mask, vectors @ query, -np.inf)
            exact = np.argpartition(-scores, 10)[:10]
            hits += len(set(got.tolist()) & set(exact.tolist()))
        out[name] = hits / (10 * queries)
    return out


def _import_time() -> float:
    code = (
        "import time; t = time.perf_counter(); import functions.serving.app; "
        "print((time.perf_counter() - t) * 1000)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def _cold_load_moto(files: dict[str, bytes], runs: int = 5) -> list[float]:
    """A fresh model store against moto S3/DynamoDB, to the first answer (ms), ``runs`` times."""
    import boto3
    from moto import mock_aws

    from functions.serving.store.storage import ObjectReader, RecentEventsReader, RegistryReader

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    timings: list[float] = []
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        ddb = boto3.resource("dynamodb")
        registry = ddb.create_table(
            TableName="registry",
            KeySchema=[
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant_id", "AttributeType": "S"},
                {"AttributeName": "version", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName="events",
            KeySchema=[
                {"AttributeName": "tenant_user", "KeyType": "HASH"},
                {"AttributeName": "event_key", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant_user", "AttributeType": "S"},
                {"AttributeName": "event_key", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        prefix = layout.version_prefix(TENANT, VERSION)
        for name, data in files.items():
            s3.put_object(Bucket="artifacts", Key=prefix + name, Body=data)
        registry.put_item(
            Item={
                "tenant_id": TENANT,
                "version": "ACTIVE",
                "active_version": VERSION,
                "manifest_key": prefix + layout.MANIFEST,
                "revision": 1,
            }
        )
        for _run in range(runs):
            started = time.perf_counter()
            store = ModelStore(
                RegistryReader(registry),
                ObjectReader(s3, "artifacts"),
                ObjectReader(s3, "artifacts"),
                refresh_seconds=30,
                max_tenants=2,
            )
            service = RecommendationService(
                store,
                RecentEventsReader(boto3.client("dynamodb"), "events"),
                ResponseCache(100, 60),
                recent_events_limit=20,
                fold_in_half_life_hours=24,
            )
            answer = service.recommend(TENANT, RecommendationQuery("user_0001", 10))
            timings.append((time.perf_counter() - started) * 1000)
            assert len(answer.items) == 10
    return timings


def run_size(n_items: int, n_requests: int, seed: int) -> dict[str, Any]:
    """Build, load and measure one catalogue size."""
    report: dict[str, Any] = {"items": n_items}
    n_users = 10_000 if n_items > 100_000 else 1_000
    started = time.perf_counter()
    world = synthetic.make_world(n_items, n_users, seed=seed)
    report["world_s"] = time.perf_counter() - started
    started = time.perf_counter()
    files = _files(world, n_items)
    report["export_s"] = time.perf_counter() - started
    report["artifact_mb"] = {name: round(len(data) / 1e6, 1) for name, data in files.items()}
    objects = _MemoryObjects(
        {layout.artifact_key(TENANT, VERSION, name): data for name, data in files.items()}
    )
    pointer = ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)
    started = time.perf_counter()
    bundle = load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]
    report["load_in_memory_s"] = time.perf_counter() - started
    report["index"] = bundle.search.kind
    _say(
        f"[{n_items:,} items] world {report['world_s']:.1f}s, export {report['export_s']:.1f}s, "
        f"load (verify+parse, no S3) {report['load_in_memory_s']:.2f}s, index {bundle.search.kind}"
    )
    del bundle

    events = _fresh_events(world, seed)
    service = _service(objects, events, cache_entries=0)
    service.recommend(TENANT, RecommendationQuery("user_0001", 10))  # load outside the timing
    requests = _requests(world, n_requests, seed)
    for _kind, query in requests[:200]:  # warm-up: filter bitmaps, allocator
        service.recommend(TENANT, query)
    by_kind: dict[str, list[float]] = {}
    all_samples: list[float] = []
    for kind, query in requests:
        elapsed = _timed(lambda query=query: service.recommend(TENANT, query))  # type: ignore[misc]
        by_kind.setdefault(kind, []).append(elapsed)
        all_samples.append(elapsed)
    report["latency"] = {
        "all": Percentiles.of(all_samples),
        **{k: Percentiles.of(v) for k, v in by_kind.items()},
    }
    cached = _service(objects, events, cache_entries=10_000)
    cached.recommend(TENANT, RecommendationQuery("user_0001", 10))
    cached.recommend(TENANT, RecommendationQuery("user_0002", 10))
    report["latency"]["cache hit"] = Percentiles.of(
        [_timed(lambda: cached.recommend(TENANT, RecommendationQuery("user_0002", 10))) for _ in range(500)]
    )
    model = service.models.get(TENANT).bundle
    assert model is not None
    report["recall_at_10"] = _recall(model, world, 300, seed)
    for name, stats in report["latency"].items():
        _say(f"  latency {name:<16} p50/p99/mean {stats.row()}")
    for name, value in report["recall_at_10"].items():
        _say(f"  Recall@10 {name:<22} {value:.3f}")
    if n_items <= 100_000:
        report["files"] = files
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, nargs="+", default=[5000, 1_000_000])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-cold", action="store_true", help="skip the moto cold-load measurement")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)
    logger.setLevel("WARNING")  # load messages would interleave with the report
    _say(f"python {sys.version.split()[0]}, faiss {faiss.__version__}, cores {os.cpu_count()}")
    summary: list[str] = []
    for n_items in args.items:
        # Powertools prints an EMF document every 100 values of a metric (as it does in a long-lived local
        # server); keep them out of the report, but keep paying for them inside the timings.
        with contextlib.redirect_stdout(io.StringIO()):
            report = run_size(n_items, args.requests, args.seed)
        overall = report["latency"]["all"]
        summary.append(
            f"items={n_items} p50_ms={overall.p50:.2f} p99_ms={overall.p99:.2f} "
            f"recall10={report['recall_at_10']['unfiltered']:.3f}"
        )
        if "files" in report and not args.no_cold:
            import_ms = _import_time()
            loads = _cold_load_moto(report["files"])
            _say(
                f"  cold: import functions.serving.app {import_ms:.0f} ms (fresh interpreter); "
                f"model store to first answer on moto S3: median {statistics.median(loads):.0f} ms, "
                f"max {max(loads):.0f} ms over {len(loads)} runs"
            )
            summary.append(f"cold_load_ms={statistics.median(loads):.0f} import_ms={import_ms:.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary.append(f"peak_rss_mb={peak_mb:.0f}")
    _say(" ".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
