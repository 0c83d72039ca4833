"""Benchmark: how fast a catalogue change reaches serving, and what the check costs a warm request.

``python -m embedrec_local.bench_catalog [--items 5000 100000] [--trials 5]`` per catalogue size:

- **ingestion** — building the serving view from the catalogue table (``catalog/{tenant}/serving.json.gz``)
  after an upload: the columns, gzip'd JSON, and its size;
- **serving, on a change** — the conditional GET's body parsed into arrays, and the loaded version
  rebased on it (current details, availability bitmap, categories, popular lists, newcomers): paid by
  one request per container and version after each change;
- **serving, warm** — ``CatalogViews.current_model`` when no check is due (every request in between),
  and a due check that finds nothing changed (one 304 from moto S3 in-process: the request count, not
  the network time, is what carries over to AWS);
- **freshness** — on moto S3 with the default ``catalog_check_seconds``: a new view is written at a
  random moment while a request arrives every 100 ms; the time until a request sees the new price.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from contract import catalog_view, layout
from embedrec_local import synthetic_models as synthetic
from embedrec_local.bench_serve import TENANT, VERSION, _files, _MemoryObjects
from functions.ingestion.service import serving_columns
from functions.serving.catalog import CatalogViews, CurrentCatalog, rebase_model
from functions.serving.loader import load_bundle
from functions.serving.settings import ServingSettings
from functions.serving.store.model_store import TenantModel
from functions.serving.store.storage import ObjectReader
from functions.training.store.model_registry import ActivePointer


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201  (a command-line report)


def _ms(samples: Sequence[float]) -> str:
    return f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"


def _catalog_table(world: synthetic.SyntheticWorld, price_shift: float = 0.0) -> pa.Table:
    n = world.item_ids.size
    return pa.table(
        {
            "item_id": world.item_ids.tolist(),
            "title": world.titles.tolist(),
            "category": world.categories.tolist(),
            "price": (world.prices + price_shift).tolist(),
            "brand": world.brands.tolist(),
            "available": [index % 50 != 0 for index in range(n)],  # 2% unavailable
        }
    )


def run_size(n_items: int, repeats: int) -> dict[str, Any]:
    """Ingestion and serving costs of one catalogue size (in memory)."""
    world = synthetic.make_world(n_items, 1000, seed=3)
    files = _files(world, n_items)
    objects = _MemoryObjects(
        {layout.artifact_key(TENANT, VERSION, name): data for name, data in files.items()}
    )
    pointer = ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)
    bundle = load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]  # a reader over a dict
    model = TenantModel(bundle, bundle.popular)
    table = _catalog_table(world)
    counts = pa.table({"item_id": world.item_ids.tolist(), "weight": world.popularity.tolist()})
    build, parse, rebase = [], [], []
    data = b""
    for _ in range(repeats):
        started = time.perf_counter()
        data = catalog_view.encode(serving_columns(table, counts))
        build.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        current = CurrentCatalog(catalog_view.decode(data), "tag")
        parse.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        rebased = rebase_model(model, current)
        rebase.append((time.perf_counter() - started) * 1000)
    assert rebased.bundle is not None and not rebased.bundle.catalog.available.all()
    return {"items": n_items, "bytes": len(data), "build": build, "parse": parse, "rebase": rebase}


def run_moto(n_items: int, trials: int, check_seconds: float) -> dict[str, Any]:
    """Warm-path cost and freshness against moto S3, in-process."""
    import boto3
    from moto import mock_aws

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "x")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
    world = synthetic.make_world(n_items, 200, seed=4)
    objects = _MemoryObjects(
        {layout.artifact_key(TENANT, VERSION, k): v for k, v in _files(world, n_items).items()}
    )
    pointer = ActivePointer(VERSION, layout.manifest_key(TENANT, VERSION), 1)
    bundle = load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]  # a reader over a dict
    model = TenantModel(bundle, bundle.popular)
    key = layout.catalog_view_key(TENANT)
    counts = pa.table({"item_id": world.item_ids.tolist(), "weight": world.popularity.tolist()})
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")

        def publish(shift: float) -> None:
            body = catalog_view.encode(serving_columns(_catalog_table(world, shift), counts))
            s3.put_object(Bucket="data", Key=key, Body=body)

        publish(0.0)
        views = CatalogViews(ObjectReader(s3, "data"), check_seconds=check_seconds, max_tenants=4)
        views.current_model(TENANT, model)
        warm = []
        for _ in range(20_000):
            started = time.perf_counter()
            views.current_model(TENANT, model)
            warm.append((time.perf_counter() - started) * 1e6)
        due = []
        for _ in range(20):
            checking = CatalogViews(ObjectReader(s3, "data"), check_seconds=0, max_tenants=4)
            checking.current(TENANT)
            started = time.perf_counter()
            checking.current(TENANT)  # nothing changed: a 304
            due.append((time.perf_counter() - started) * 1000)
        delays = []
        rng = random.Random(7)
        for trial in range(1, trials + 1):
            time.sleep(rng.uniform(0, check_seconds))
            shift = 1000.0 * trial
            publish(shift)
            written = time.perf_counter()
            wanted = float(world.prices[1]) + shift
            while True:
                seen = views.current_model(TENANT, model)
                assert seen.bundle is not None
                if seen.bundle.catalog.price(1) == wanted:
                    delays.append(time.perf_counter() - written)
                    break
                time.sleep(0.1)
    return {"warm_us": warm, "due_ms": due, "delays_s": delays}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[5000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    check_seconds = float(ServingSettings.model_fields["catalog_check_seconds"].default)
    for n_items in args.items:
        result = run_size(n_items, args.repeats)
        _say(
            f"{n_items:>7} items: view {result['bytes'] / 1024:.0f} KiB; ingestion builds it in "
            f"{_ms(result['build'])}; serving parses it in {_ms(result['parse'])} and rebases a "
            f"version in {_ms(result['rebase'])}"
        )
    moto = run_moto(5000, args.trials, check_seconds)
    warm = np.asarray(moto["warm_us"])
    _say(
        f"warm request, no check due: median {np.median(warm):.1f} us, p99 {np.percentile(warm, 99):.1f} us; "
        f"a due check finding no change (one 304, moto in-process): {_ms(moto['due_ms'])}"
    )
    delays = moto["delays_s"]
    _say(
        f"freshness with catalog_check_seconds={check_seconds:g}, a request every 100 ms, {len(delays)} "
        f"changes at random moments: median {statistics.median(delays):.1f} s, max {max(delays):.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
