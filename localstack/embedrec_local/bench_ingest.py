"""Benchmark: an interactions CSV through validation to Parquet, in-process on one core.

``python -m embedrec_local.bench_ingest [--rows 100000]`` builds a seeded, realistic CSV in memory
(the walkthrough's columns, a popularity-skewed catalogue, a view→click→purchase funnel, 90 days of
timestamps), then times ``validate_interactions_csv`` plus ``pyarrow.parquet.write_table`` into a
``BytesIO`` plus encoding the per-user recent-events feed entries (``feed_ms``; the DynamoDB writes
themselves are not in it). The last line is the summary ``rows=<n> rows_per_s=<x> peak_mb=<y>``
where ``peak_mb`` is the process's peak resident set size (what a Lambda memory setting has to cover).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contract.interactions import INTERACTION_TYPES
from functions.ingestion.feed import feed_packs, feed_rows
from functions.ingestion.store.recent_activity import FEED_DEPTH
from functions.ingestion.validation import validate_interactions_csv

_TYPES = np.array(INTERACTION_TYPES)
# A funnel: most interactions are views, few are purchases.
_TYPE_WEIGHTS = np.array([0.70, 0.18, 0.07, 0.05])


@dataclass(frozen=True)
class BenchResult:
    """Timings of one benchmark run (best-of and median over the repeats)."""

    rows: int
    csv_mb: float
    validate_s: float
    parquet_s: float
    feed_s: float
    total_s: float
    parquet_mb: float
    accepted: int
    rejected: int
    peak_rss_mb: float
    baseline_rss_mb: float
    arrow_peak_mb: float

    @property
    def rows_per_s(self) -> float:
        """End-to-end throughput (validation + Parquet + feed entries) of the median run."""
        return self.rows / self.total_s


def make_interactions_csv(
    rows: int,
    *,
    users: int = 10_000,
    items: int = 5_000,
    seed: int = 7,
    end: datetime = datetime(2025, 1, 31, tzinfo=UTC),
    bad_fraction: float = 0.0,
) -> tuple[bytes, frozenset[str]]:
    """A seeded interactions CSV in the walkthrough's columns, and the catalogue's item ids.

    ``bad_fraction`` of the rows get one broken field, to time the error path too.
    """
    rng = np.random.default_rng(seed)
    # Zipf-like popularity over items and activity over users, as in real shops.
    item_weights = 1.0 / np.arange(1, items + 1) ** 0.9
    user_weights = 1.0 / np.arange(1, users + 1) ** 0.6
    item_idx = rng.choice(items, size=rows, p=item_weights / item_weights.sum())
    user_idx = rng.choice(users, size=rows, p=user_weights / user_weights.sum())
    kinds = rng.choice(len(_TYPES), size=rows, p=_TYPE_WEIGHTS)
    seconds = rng.integers(0, 90 * 24 * 3600, size=rows)
    start = end - timedelta(days=90)
    stamps = np.datetime64(start.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]")
    stamp_text = np.datetime_as_string(stamps, unit="s")
    ratings = rng.integers(1, 6, size=rows)
    broken = rng.random(rows) < bad_fraction
    out = bytearray(b"user_id,item_id,interaction_type,timestamp,rating\n")
    # Encoded in chunks so that generating a large file does not dominate the peak memory measured.
    for chunk in range(0, rows, 10_000):
        lines = []
        for i in range(chunk, min(chunk + 10_000, rows)):
            kind = int(kinds[i])
            rating = f"{ratings[i]}.0" if kind == 3 else ""
            kind_text = "like" if broken[i] else _TYPES[kind]
            lines.append(
                f"user_{user_idx[i]:05d},item_{item_idx[i]:05d},{kind_text},{stamp_text[i]}Z,{rating}\n"
            )
        out += "".join(lines).encode()
    catalogue = frozenset(f"item_{i:05d}" for i in range(items))
    return bytes(out), catalogue


def _pin_to_one_core() -> None:
    # The goal is per core: keep pyarrow and the process on a single CPU.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})


def run_benchmark(rows: int, *, repeats: int = 5, bad_fraction: float = 0.0, seed: int = 7) -> BenchResult:
    """Time validation + Parquet for a generated CSV; ``repeats`` runs, medians reported."""
    data, catalogue = make_interactions_csv(rows, seed=seed, bad_fraction=bad_fraction)
    now = datetime(2025, 2, 1, tzinfo=UTC)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    validate_times: list[float] = []
    parquet_times: list[float] = []
    feed_times: list[float] = []
    parquet_size = 0
    accepted = rejected = 0
    for _ in range(repeats):
        started = time.perf_counter()
        result = validate_interactions_csv(data, upload_id="bench", now=now, known_item_ids=catalogue)
        validated = time.perf_counter()
        sink = io.BytesIO()
        pq.write_table(result.table, sink, compression="zstd")
        written = time.perf_counter()
        feed_packs(feed_rows(result.table, FEED_DEPTH))
        fed = time.perf_counter()
        validate_times.append(validated - started)
        parquet_times.append(written - validated)
        feed_times.append(fed - written)
        parquet_size = sink.tell()
        accepted, rejected = result.accepted, result.rejected
        del result, sink
    totals = [v + p + f for v, p, f in zip(validate_times, parquet_times, feed_times, strict=True)]
    return BenchResult(
        rows=rows,
        csv_mb=len(data) / 2**20,
        validate_s=statistics.median(validate_times),
        parquet_s=statistics.median(parquet_times),
        feed_s=statistics.median(feed_times),
        total_s=statistics.median(totals),
        parquet_mb=parquet_size / 2**20,
        accepted=accepted,
        rejected=rejected,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20,
        baseline_rss_mb=baseline_rss,
        arrow_peak_mb=pa.default_memory_pool().max_memory() / 2**20,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints details and then the one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bad-fraction", type=float, default=0.0, help="share of rows with a broken field")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    args = parser.parse_args(argv)
    if not args.all_cores:
        _pin_to_one_core()
    result = run_benchmark(args.rows, repeats=args.repeats, bad_fraction=args.bad_fraction, seed=args.seed)
    print(  # noqa: T201
        f"csv={result.csv_mb:.1f}MB accepted={result.accepted} rejected={result.rejected} "
        f"validate_ms={result.validate_s * 1000:.1f} parquet_ms={result.parquet_s * 1000:.1f} "
        f"feed_ms={result.feed_s * 1000:.1f} "
        f"parquet={result.parquet_mb:.2f}MB arrow_peak_mb={result.arrow_peak_mb:.1f} "
        f"rss_before_mb={result.baseline_rss_mb:.1f} "
        f"(median of {args.repeats}, {'all cores' if args.all_cores else 'one core'})"
    )
    print(  # noqa: T201
        f"rows={result.rows} rows_per_s={result.rows_per_s:.0f} peak_mb={result.peak_rss_mb:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
