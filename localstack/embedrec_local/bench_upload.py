"""``make bench-upload``: seconds to upload the walkthrough's interactions CSV over loopback HTTP.

Starts the embedded stack, generates the sample (default 100,000 interactions of 10,000 shoppers,
dated January-March 2025), then for each run opens a fresh shop, uploads ``items.csv`` and times
``POST /api/v1/interactions`` with the CSV: validation, Parquet, popularity, the per-user
recent-events feed and the upload record, as a shop sees it. The last line is the summary
``rows=<n> median_s=<x> min_s=<y>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from embedrec_local.client import EmbedrecClient
from embedrec_local.sample_data import generate_sample_data
from embedrec_local.stack import free_port, spawn_local_stack

PASSWORD = "Bench-Upload-42"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints each run, then the one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        generate_sample_data(
            data,
            users=max(10, args.rows // 10),
            items=5_000,
            interactions=args.rows,
            end=datetime(2025, 4, 1, tzinfo=UTC),
        )
        port, moto_port = free_port(), free_port()
        admin_key = "adm_bench_" + os.urandom(6).hex()
        process = spawn_local_stack(port, admin_key, moto_port=moto_port)
        api = EmbedrecClient(f"http://127.0.0.1:{port}", timeout=600)
        try:
            api.wait_until_healthy(timeout_s=120)
            seconds: list[float] = []
            for run in range(args.runs):
                api.token = None
                api.open_shop(admin_key, f"upload{run}", password=PASSWORD)
                api.upload_csv("items", data / "items.csv")
                started = time.perf_counter()
                report = api.upload_csv("interactions", data / "interactions.csv")
                seconds.append(time.perf_counter() - started)
                print(f"run {run}: {seconds[-1]:.2f} s, {report['accepted']} accepted", flush=True)  # noqa: T201
        finally:
            api.close()
            process.terminate()
            process.wait(timeout=15)
    print(  # noqa: T201
        f"rows={args.rows} median_s={statistics.median(seconds):.2f} min_s={min(seconds):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
