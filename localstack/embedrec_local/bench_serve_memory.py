"""Benchmark: a large tenant's cold load and warm serving, with the process's memory, in-process.

``python -m embedrec_local.bench_serve_memory build --users 2000000 --items 1000000 --dir DIR`` writes a
synthetic version (``embedrec_local.synthetic_models``: HNSW index, M=32, as training builds above its
exact threshold) twice under ``DIR``: ``external/`` as training publishes it now (the tower's tables in
``user_tower.onnx.data``) and ``embedded/`` as versions exported before that (one self-contained
``user_tower.onnx``). Building takes minutes at that size; it is done once.

``python -m embedrec_local.bench_serve_memory measure --dir DIR/external`` then, in a fresh process,
loads the version through the serving loader from a reader over the folder (no S3, so the figure is
the loader's own work: hash checks, unpacking, parsing, id indexes) and answers ``--requests`` known
users (a third with a category filter) with ``rank_for_user``. It prints one line: load seconds, warm
p50/p99 ms, and memory as the kernel counts it — anonymous (what the process owns; what an
out-of-memory kill counts), file-backed (mapped pages, which the kernel drops under pressure) and the
peak resident size.

``python -m embedrec_local.bench_serve_memory compare --dir DIR/embedded`` answers the same requests from
the mapped bundle and from the version built wholly in memory (as serving did before), alternating
request by request in one process, and prints both latencies and their median ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from contract import layout
from embedrec_local import synthetic_models as synthetic

TENANT = "tenant_large"
VERSION = "lightgcn_v1"


class FolderObjects:
    """An object reader over a local folder laid out like the artifacts bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bucket = "folder"

    def get_bytes(self, key: str) -> bytes:
        from functions.common.errors import NotFoundError

        path = self.root / key
        if not path.is_file():
            raise NotFoundError(key)
        return path.read_bytes()

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def download(self, key: str, destination: Path) -> str:
        digest = hashlib.sha256()
        with (self.root / key).open("rb") as source, destination.open("wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()


def _memory() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
                fields[name] = int(value.split()[0]) / 1024
    return fields


def build(users: int, items: int, folder: Path, seed: int) -> None:
    """Write both variants of one synthetic version under ``folder``."""
    started = time.perf_counter()
    world = synthetic.make_world(items, users, seed=seed)
    print(f"world {time.perf_counter() - started:.0f}s", flush=True)  # noqa: T201
    started = time.perf_counter()
    files = synthetic.artifact_set(
        world,
        tenant_id=TENANT,
        version=VERSION,
        index_kind="hnsw" if items > 100_000 else "flat_ip",
        index_params={"M": 32, "efConstruction": 40, "efSearch": 128},
        external_tower=True,
    )
    print(f"artifacts {time.perf_counter() - started:.0f}s", flush=True)  # noqa: T201
    external = folder / "external" / layout.version_prefix(TENANT, VERSION)
    external.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (external / name).write_bytes(data)
    tower = synthetic.user_tower_onnx(world.user_vectors, world.item_vectors)
    del world
    embedded = folder / "embedded" / layout.version_prefix(TENANT, VERSION)
    embedded.mkdir(parents=True, exist_ok=True)
    for name in (layout.ITEM_INDEX, layout.LOOKUP, layout.POPULAR):
        shutil.copyfile(external / name, embedded / name)
    (embedded / layout.USER_TOWER).write_bytes(tower)
    document = json.loads(files[layout.MANIFEST])
    document["files"].pop(layout.USER_TOWER_DATA, None)
    document["files"][layout.USER_TOWER] = {
        "sha256": hashlib.sha256(tower).hexdigest(),
        "bytes": len(tower),
    }
    (embedded / layout.MANIFEST).write_text(json.dumps(document))
    sizes = {name: round((external / name).stat().st_size / 2**20) for name in sorted(files)}
    print(f"written: {sizes} MiB; embedded tower {len(tower) >> 20} MiB", flush=True)  # noqa: T201


def measure(folder: Path, requests: int, seed: int) -> None:
    """Load the version in this (fresh) process and answer warm requests; print one line."""
    from functions.common.observability import logger
    from functions.serving.domain import RecommendationQuery
    from functions.serving.filters import ItemFilters
    from functions.serving.loader import load_bundle
    from functions.serving.ranking import rank_for_user
    from functions.training.store.model_registry import ActivePointer

    logger.setLevel("WARNING")
    before = _memory()
    pointer = ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)
    started = time.perf_counter()
    bundle = load_bundle(FolderObjects(folder), TENANT, pointer)  # type: ignore[arg-type]
    load_s = time.perf_counter() - started
    loaded = _memory()
    rng = np.random.default_rng(seed)
    users = bundle.users.user_ids
    now = datetime(2025, 3, 1, tzinfo=UTC)
    timings = []
    for n in range(requests):
        user = str(users[int(rng.integers(0, users.size))])
        filters = ItemFilters(categories=("Laptops",)) if n % 3 == 0 else ItemFilters()
        query = RecommendationQuery(user, 10, filters)
        begun = time.perf_counter()
        rank_for_user(bundle, query, [], now=now, half_life_hours=24)
        timings.append((time.perf_counter() - begun) * 1000)
    warm = sorted(timings[requests // 10 :])  # the first tenth warms pages and filter bitmaps
    served = _memory()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(  # noqa: T201
        f"serve-memory: load_s={load_s:.1f} index={bundle.search.kind} items={bundle.search.size} "
        f"users={bundle.users.size} p50_ms={statistics.median(warm):.2f} "
        f"p99_ms={warm[int(len(warm) * 0.99)]:.2f} "
        f"anon_mb_loaded={loaded['RssAnon'] - before['RssAnon']:.0f} "
        f"file_mb_loaded={loaded['RssFile'] - before['RssFile']:.0f} "
        f"anon_mb_served={served['RssAnon'] - before['RssAnon']:.0f} "
        f"file_mb_served={served['RssFile'] - before['RssFile']:.0f} "
        f"peak_rss_mb={peak:.0f} baseline_rss_mb={before['VmRSS']:.0f}",
        flush=True,
    )


def in_memory_bundle(files: dict[str, bytes], tenant_id: str, version: str) -> Any:
    """A version built wholly in RAM from its files' bytes, as serving built it before it mapped files
    (the reference the mapped bundle is compared with; a self-contained ``user_tower.onnx``)."""
    import faiss

    from functions.serving.bundle import ItemCatalog, ModelBundle, UserHistory
    from functions.serving.popular import PopularLists
    from functions.serving.search import IndexKind, VectorSearch
    from functions.serving.tower import UserTower

    manifest = json.loads(files[layout.MANIFEST])
    index = faiss.deserialize_index(np.frombuffer(files[layout.ITEM_INDEX], dtype=np.uint8))
    kind: IndexKind = "flat_ip" if isinstance(index, faiss.IndexFlat) else "hnsw"
    params = manifest["index"].get("params", {})
    search = VectorSearch(index, kind, ef_search=params.get("efSearch"))
    with np.load(io.BytesIO(files[layout.LOOKUP]), allow_pickle=False) as lookup:
        arrays = {name: np.array(lookup[name]) for name in lookup.files}
    catalog = ItemCatalog(
        arrays["item_ids"], arrays["titles"], arrays["categories"], arrays["brands"], arrays["prices"]
    )
    users = UserHistory(
        arrays["user_ids"],
        arrays["history_indptr"],
        arrays["history_items"],
        arrays["history_types"],
        catalog.size,
    )
    return ModelBundle(
        tenant_id=tenant_id,
        version=version,
        model_type="lightgcn",
        manifest_key=layout.manifest_key(tenant_id, version),
        trained_until=None,
        catalog=catalog,
        users=users,
        popular=PopularLists.parse(json.loads(files[layout.POPULAR])),
        search=search,
        tower=UserTower(files[layout.USER_TOWER], dim=index.d),
        popular_centroid=np.zeros(index.d, np.float32),
    )


def compare(folder: Path, requests: int, seed: int) -> None:
    """Warm latency of the mapped bundle against the in-memory one, request by request, alternating
    (so both see the same machine); ``folder`` must hold a self-contained tower (``embedded/``)."""
    from functions.common.observability import logger
    from functions.serving.domain import RecommendationQuery
    from functions.serving.filters import ItemFilters
    from functions.serving.loader import load_bundle
    from functions.serving.ranking import rank_for_user
    from functions.training.store.model_registry import ActivePointer

    logger.setLevel("WARNING")
    prefix = folder / layout.version_prefix(TENANT, VERSION)
    files = {path.name: path.read_bytes() for path in prefix.iterdir()}
    reference = in_memory_bundle(files, TENANT, VERSION)
    del files
    pointer = ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)
    mapped = load_bundle(FolderObjects(folder), TENANT, pointer)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    now = datetime(2025, 3, 1, tzinfo=UTC)
    timings: dict[str, list[float]] = {"mapped": [], "in_memory": []}
    for n in range(requests):
        user = str(reference.users.user_ids[int(rng.integers(0, reference.users.size))])
        filters = ItemFilters(categories=("Laptops",)) if n % 3 == 0 else ItemFilters()
        query = RecommendationQuery(user, 10, filters)
        order = [("mapped", mapped), ("in_memory", reference)]
        for name, bundle in order if n % 2 else order[::-1]:
            begun = time.perf_counter()
            answer = rank_for_user(bundle, query, [], now=now, half_life_hours=24)
            timings[name].append((time.perf_counter() - begun) * 1000)
        assert answer.items  # both answered
    parts = []
    for name, values in timings.items():
        warm = sorted(values[requests // 10 :])
        parts.append(
            f"{name}_p50_ms={statistics.median(warm):.3f} {name}_p99_ms={warm[int(len(warm) * 0.99)]:.3f}"
        )
    ratios = [a / b for a, b in zip(timings["mapped"], timings["in_memory"], strict=True)]
    last_half = statistics.median(ratios[requests // 2 :])  # after the mapped pages were touched once
    print(  # noqa: T201
        f"serve-compare: {' '.join(parts)} median_ratio={statistics.median(ratios):.3f} "
        f"median_ratio_second_half={last_half:.3f}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["build", "measure", "compare"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.command == "build":
        build(args.users, args.items, args.dir, args.seed)
        return 0
    import faiss

    faiss.omp_set_num_threads(1)
    if args.command == "measure":
        measure(args.dir, args.requests, args.seed)
    else:
        compare(args.dir, args.requests, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
