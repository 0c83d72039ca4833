"""``make bench-lambda``: the serving figures on the Lambda-faithful runtime (``--runtime lambda``).

Starts the embedded stack with every function in emulated Lambda containers, opens a shop with a
5,000-item catalogue and publishes a 5,000-item model for it (the synthetic world of
``embedrec_local.synthetic_models``, written to S3 and activated in the registry exactly as training
publishes), then measures:

- cold start of ``serving`` (container spawn + import + the first answer, model load included; with
  SnapStart, as the template gives serving, the restore + the first answer; ``--no-snap-start``: a full init),
  ``--cold`` times, each after every container was reclaimed;
- warm invocations of ``POST /api/v1/recommendations`` one at a time, after ``--warm-up`` unmeasured
  ones: the client's latency, the invocation's duration to its response, and the work after the
  response (the impressions hand-off, on the after-response extension), p50/p99; what Lambda bills
  is the two together;
- throughput with 1, 4 and 8 containers (``wrk`` with as many connections; the fleet starts one
  container per concurrent request);
- peak RSS per function against its configured memory size;
- cost per million recommendations from the measured GB-seconds at Lambda's public price, with the
  requests (HTTP API, Lambda, SQS) and DynamoDB's request units (the analytics table's writes, as its
  consumer reports them, and serving's read), beside Amazon Personalize's published real-time price.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx

from contract import layout
from embedrec_local import synthetic_models as synthetic
from embedrec_local.client import EmbedrecClient
from embedrec_local.provision import LocalNames
from embedrec_local.stack import REGION, free_port, spawn_local_stack, stop_local_stack
from functions.common import resources
from functions.training.store.model_registry import ModelRegistry

# us-east-1 list prices (x86): Lambda duration and requests, HTTP API requests (first 300 M a month).
LAMBDA_USD_PER_GB_S = 0.0000166667
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
HTTP_API_USD_PER_MILLION_REQUESTS = 1.00
# SQS standard queue requests (each 64 KB chunk of a request is one): serving's SendMessage, and the
# consumer's ReceiveMessage and DeleteMessageBatch per batch.
SQS_USD_PER_MILLION_REQUESTS = 0.40
# DynamoDB on demand: write and read request units. The impressions consumer reports the write units
# of its transactions (``AnalyticsWriteUnits``); serving reads the user's newest events with one
# eventually consistent Query of under 4 KB (half a read unit).
DYNAMODB_USD_PER_MILLION_WRITE_UNITS = 0.625
DYNAMODB_USD_PER_MILLION_READ_UNITS = 0.125
SERVING_READ_UNITS_PER_REQUEST = 0.5
# Amazon Personalize, real-time recommendations of a campaign: $0.0417 per TPS-hour (first 20K
# TPS-hours a month). Fully used, one TPS-hour serves 3,600 requests.
PERSONALIZE_USD_PER_TPS_HOUR = 0.0417
UNTHROTTLED = {"EMBEDREC_REQUEST_QUOTAS": "false"}
_LUA = """
local n = 0
request = function()
  n = n + 1
  local body = '{"user_id": "user_' .. string.format("%%05d", n %% %(users)d) .. '", "count": 10}'
  return wrk.format("POST", "/api/v1/recommendations",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}, body)
end
"""


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark reports


def _emf_values(log: Path, offset: int, name: str) -> list[float]:
    """The values of metric ``name`` in the EMF lines the containers printed after ``offset``."""
    values: list[float] = []
    with log.open(encoding="utf-8", errors="replace") as lines:
        lines.seek(offset)
        for line in lines:
            if line.startswith('{"_aws"') and f'"{name}"' in line:
                value = json.loads(line).get(name)
                values.extend(value if isinstance(value, list) else [value])
    return [float(v) for v in values]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Bench:
    """The stack under measurement and its shop."""

    def __init__(self, port: int, moto_port: int, admin_key: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.moto = f"http://127.0.0.1:{moto_port}"
        self.admin_key = admin_key
        self.client = EmbedrecClient(self.url)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        self.token = ""

    def stats(self) -> dict[str, dict[str, Any]]:
        response = self.http.get("/_local/lambda/stats")
        response.raise_for_status()
        stats: dict[str, dict[str, Any]] = response.json()
        return stats

    def reclaim(self) -> None:
        self.http.post("/_local/lambda/reclaim").raise_for_status()

    def impressions_mapping(self, *, enabled: bool) -> None:
        """Turn the impressions consumer's event source mapping on or off."""
        action = "enable" if enabled else "disable"
        self.http.post(f"/_local/lambda/event-source-mappings/impressions/{action}").raise_for_status()

    def drain_impressions(self) -> None:
        """Every handed-off impression delivered: the local stack drains the queue before an api answer."""
        self.http.get(
            "/api/v1/analytics/summary?days=1", headers={"Authorization": f"Bearer {self.token}"}
        ).raise_for_status()

    def recommend(self, user: str) -> float:
        started = time.perf_counter()
        response = self.http.post(
            "/api/v1/recommendations",
            json={"user_id": user, "count": 10},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"recommendation failed: {response.status_code} {response.text[:300]}")
        return elapsed

    def prepare(self, items: int, users: int, workdir: Path) -> str:
        """A shop with ``items`` catalogue rows and an active ``items``-item model; returns the version."""
        tenant_id = self.client.open_shop(
            self.admin_key, "Bench", plan="enterprise", password="Bench-Pass-4242"
        )
        self.token = str(self.client.token)
        world = synthetic.make_world(items, users, seed=11, with_histories=False)
        catalogue = workdir / "items.csv"
        with catalogue.open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(["item_id", "title", "category", "price", "brand", "description"])
            for n, item_id in enumerate(world.item_ids):
                writer.writerow(
                    [item_id, world.titles[n], world.categories[n], f"{10 + n % 500}.99", "Brand", ""]
                )
        self.client.upload_csv("items", catalogue)
        version = "lightgcn_bench1"
        files = synthetic.artifact_set(world, tenant_id=tenant_id, version=version)
        names = LocalNames()
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fixed credentials
            region_name=REGION,
        )
        s3 = session.client("s3", endpoint_url=self.moto)
        prefix = layout.version_prefix(tenant_id, version)
        for name, data in files.items():
            if name != layout.MANIFEST:
                s3.put_object(Bucket=names.bucket(resources.ARTIFACTS_BUCKET), Key=prefix + name, Body=data)
        s3.put_object(
            Bucket=names.bucket(resources.ARTIFACTS_BUCKET),
            Key=prefix + layout.MANIFEST,
            Body=files[layout.MANIFEST],
        )
        table = session.resource("dynamodb", endpoint_url=self.moto).Table(
            names.table(resources.MODEL_REGISTRY)
        )
        registry = ModelRegistry(table)
        registry.switch_active(
            tenant_id,
            version,
            prefix + layout.MANIFEST,
            expected=registry.active(tenant_id),
            now=datetime.now(UTC),
        )
        return version


def _wrk(bench: Bench, script: Path, connections: int, seconds: int) -> dict[str, str]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        bench.url,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+\w+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": rps.group(1) if rps else "?",
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
        "non_2xx": errors.group(1) if errors else "0",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints one JSON document of every figure (docs/benchmarks.md quotes it)."""
    parser = argparse.ArgumentParser(prog="bench-lambda")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--cold", type=int, default=5, help="cold starts measured")
    parser.add_argument("--warm", type=int, default=500, help="warm requests measured (one at a time)")
    parser.add_argument("--warm-up", type=int, default=30, help="warm requests before those measured")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="pause between warm requests (0: back to back, each on the heels of the last one's work)",
    )
    parser.add_argument("--seconds", type=int, default=15, help="each throughput run")
    parser.add_argument("--containers", default="1,4,8", help="throughput runs: concurrent requests")
    parser.add_argument(
        "--no-snap-start",
        action="store_true",
        help="cold starts with a full init, as without SnapStart (the template gives serving SnapStart)",
    )
    parser.add_argument(
        "--pause-consumer",
        action="store_true",
        help="the impressions consumer's mapping off during the measured warm requests (in AWS it runs on "
        "other hosts and writes to DynamoDB, not to this moto on the same cores), then on and drained",
    )
    parser.add_argument(
        "--no-after-response",
        action="store_true",
        help="hand off impressions before the response, as without the after-response extension",
    )
    args = parser.parse_args(argv)
    port, moto_port = free_port(), free_port()
    admin_key = "adm_bench_" + os.urandom(8).hex()
    log = tempfile.NamedTemporaryFile("w", prefix="embedrec-bench-lambda-", suffix=".log", delete=False)  # noqa: SIM115
    env = {
        **UNTHROTTLED,
        "EMBEDREC_LAMBDA_MAX_CONTAINERS": str(max(int(c) for c in args.containers.split(","))),
        "EMBEDREC_LAMBDA_SNAP_START": "false" if args.no_snap_start else "true",
        "EMBEDREC_AFTER_RESPONSE": "false" if args.no_after_response else "true",
    }
    stack = spawn_local_stack(port, admin_key, moto_port=moto_port, runtime="lambda", env=env, stdout=log)
    bench = Bench(port, moto_port, admin_key)
    report: dict[str, Any] = {"items": args.items, "stack_log": log.name}
    try:
        bench.client.wait_until_healthy(timeout_s=300)
        with tempfile.TemporaryDirectory(prefix="embedrec-bench-") as tmp:
            report["model_version"] = bench.prepare(args.items, args.users, Path(tmp))
            bench.recommend("user_00000")  # the model is loaded once before the measured cold starts

            # Cold starts: every container reclaimed, then one request
            cold_client: list[float] = []
            cold_total: list[float] = []
            cold_cpu: list[float] = []
            for n in range(args.cold):
                bench.reclaim()
                cold_client.append(bench.recommend(f"user_{n:05d}"))
                serving = bench.stats()["serving"]
                # Spawn to ready (interpreter, imports) + the first invocation (model load, answer)
                cold_total.append(serving["init_ms"][-1] + serving["duration_ms"][-1])
                cold_cpu.append(serving["init_cpu_ms"][-1] + serving["cpu_ms"][-1])
            report["cold_start_ms"] = {
                "p50": round(statistics.median(cold_total), 1),
                "client_p50": round(statistics.median(cold_client), 1),
                "init_p50": round(statistics.median(bench.stats()["serving"]["init_ms"][-args.cold :]), 1),
                # The container's own CPU time for the same: what the load on the host does not inflate
                "cpu_p50": round(statistics.median(cold_cpu), 1),
                "init_cpu_p50": round(
                    statistics.median(bench.stats()["serving"]["init_cpu_ms"][-args.cold :]), 1
                ),
                "samples": args.cold,
                # SnapStart: each cold start is a restore (fork + after-restore hooks) + the first answer
                "snap_start": bool(bench.stats()["serving"].get("snap_start")),
            }

            # Warm: one request at a time. The work after each response keeps its container busy for
            # a few ms, so back-to-back requests take turns on two containers: warm both up first.
            for n in range(args.warm_up):
                bench.recommend(f"user_{(n * 104729) % args.users:05d}")
            bench.drain_impressions()  # the warm-up's impressions are applied before the measured ones
            serving_before = bench.stats()["serving"]
            before = len(serving_before["duration_ms"])
            post_before = len(serving_before["post_response_ms"])
            consumer_before = len(bench.stats().get("impressions", {}).get("duration_ms", []))
            log.flush()
            time.sleep(1)  # the containers' log lines of the cold starts are in the file
            offset = Path(log.name).stat().st_size
            if args.pause_consumer:
                bench.impressions_mapping(enabled=False)
            client_ms = []
            for n in range(args.warm):
                client_ms.append(bench.recommend(f"user_{(n * 7919) % args.users:05d}"))
                time.sleep(args.gap_ms / 1000)
            time.sleep(0.5)  # the last responses' after-response work is done
            if args.pause_consumer:
                bench.impressions_mapping(enabled=True)
            serving = bench.stats()["serving"]
            durations = serving["duration_ms"][before:]
            post = serving["post_response_ms"][post_before:]
            cpu = [*serving["cpu_ms"][before:], *serving["post_response_cpu_ms"][post_before:]]
            time.sleep(0.5)
            writes = _emf_values(Path(log.name), offset, "ImpressionsWriteTime")
            answers = _emf_values(Path(log.name), offset, "RecommendationLatency")
            report["warm_ms"] = {
                "client_p50": round(_percentile(client_ms, 0.5), 2),
                "client_p99": round(_percentile(client_ms, 0.99), 2),
                # The runtime's duration: the event in, the response out
                "invocation_p50": round(_percentile(durations, 0.5), 2),
                "invocation_p99": round(_percentile(durations, 0.99), 2),
                # After the response, until the container could be frozen (PostRuntimeExtensionsDuration)
                "post_response_p50": round(_percentile(post, 0.5), 2) if post else None,
                "post_response_p99": round(_percentile(post, 0.99), 2) if post else None,
                # The container's CPU time per invocation, both parts (clock ticks of 10 ms: the mean)
                "invocation_cpu_mean": round(sum(cpu) / len(durations), 2) if cpu else None,
                "cold_starts_measured": serving["cold_starts"] - serving_before["cold_starts"],
                # Inside the invocation: building the answer, then handing off its impressions
                "answer_p50": round(_percentile(answers, 0.5), 2),
                "answer_p99": round(_percentile(answers, 0.99), 2),
                "impressions_write_p50": round(_percentile(writes, 0.5), 2),
                "impressions_write_p99": round(_percentile(writes, 0.99), 2),
                "samples": len(durations),
                "gap_ms": args.gap_ms,
                "consumer_paused": args.pause_consumer,
            }
            memory_gb = bench.stats()["serving"]["memory_mb"] / 1024
            # Billed: the duration and the work after the response, each rounded up to the millisecond
            billed_ms = sum(math.ceil(d) for d in durations) + sum(math.ceil(p) for p in post)
            billed_gb_s = billed_ms / len(durations) / 1000 * memory_gb
            # The impressions consumer's share: its invocations during the warm requests (the local
            # mapping delivers up to 10 messages per batch; in AWS a 1 s window gathers up to 100).
            bench.drain_impressions()
            time.sleep(0.5)  # the consumer's last metrics are in the log
            write_units = sum(_emf_values(Path(log.name), offset, "AnalyticsWriteUnits")) / len(durations)
            consumer = bench.stats().get("impressions", {})
            consumer_durations = consumer.get("duration_ms", [])[consumer_before:]
            consumer_gb_s = (
                sum(math.ceil(d) / 1000 * consumer["memory_mb"] / 1024 for d in consumer_durations)
                / len(durations)
                if consumer_durations
                else 0.0
            )
            consumer_invocations = len(consumer_durations) / len(durations)
            sqs_requests = 1 + 2 * consumer_invocations  # SendMessage; ReceiveMessage + DeleteMessageBatch
            dynamodb_cost = (
                DYNAMODB_USD_PER_MILLION_WRITE_UNITS * write_units
                + DYNAMODB_USD_PER_MILLION_READ_UNITS * SERVING_READ_UNITS_PER_REQUEST
            )
            lambda_cost = (
                (billed_gb_s + consumer_gb_s) * LAMBDA_USD_PER_GB_S * 1e6
                + LAMBDA_USD_PER_MILLION_REQUESTS * (1 + consumer_invocations)
                + HTTP_API_USD_PER_MILLION_REQUESTS
                + SQS_USD_PER_MILLION_REQUESTS * sqs_requests
            )
            report["cost_per_million_usd"] = {
                "billed_gb_s_per_request": round(billed_gb_s, 6),
                "consumer_gb_s_per_request": round(consumer_gb_s, 6),
                "consumer_invocations_per_request": round(consumer_invocations, 3),
                "lambda_duration": round((billed_gb_s + consumer_gb_s) * LAMBDA_USD_PER_GB_S * 1e6, 3),
                "lambda_requests": round(LAMBDA_USD_PER_MILLION_REQUESTS * (1 + consumer_invocations), 3),
                "http_api_requests": HTTP_API_USD_PER_MILLION_REQUESTS,
                "sqs_requests": round(SQS_USD_PER_MILLION_REQUESTS * sqs_requests, 3),
                "analytics_write_units_per_request": round(write_units, 2),
                "dynamodb": round(dynamodb_cost, 3),
                "total": round(lambda_cost + dynamodb_cost, 3),
                "personalize_fully_used_tps": round(PERSONALIZE_USD_PER_TPS_HOUR / 3600 * 1e6, 2),
            }

            # Throughput with 1, 4, 8 containers
            if shutil.which("wrk"):
                script = Path(tmp) / "recommend.lua"
                script.write_text(_LUA % {"users": args.users, "token": bench.token})
                runs = {}
                for connections in [int(c) for c in args.containers.split(",")]:
                    # Every container of the run started and warm first: cold starts are measured above
                    with ThreadPoolExecutor(connections) as warmers:
                        list(warmers.map(lambda n: bench.recommend(f"user_{n:05d}"), range(connections * 3)))
                    result = _wrk(bench, script, connections, args.seconds)
                    result["containers"] = str(bench.stats()["serving"]["containers"])
                    runs[str(connections)] = result
                report["throughput"] = runs
            else:
                report["throughput"] = "wrk missing (apt-get install -y wrk)"
            stats = bench.stats()
            report["functions"] = {
                name: {
                    "memory_mb": s["memory_mb"],
                    "peak_rss_mb": s["peak_rss_mb"],
                    "cold_starts": s["cold_starts"],
                    "init_p50_ms": round(statistics.median(s["init_ms"]), 1) if s["init_ms"] else None,
                    "invocations": s["invocations"],
                    "failures": s["failures"],
                }
                for name, s in stats.items()
                if s["invocations"] or s["cold_starts"]
            }
    finally:
        _say(json.dumps(report, indent=2))
        bench.client.close()
        bench.http.close()
        stop_local_stack(stack)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
