"""``make bench-http``: requests/s and latency of warm recommendation calls over loopback HTTP.

Starts the embedded stack, creates a shop, uploads the default sample, trains a model through the
real workflow, warms the serving path, then drives ``POST /api/v1/recommendations`` with ``wrk``
(Debian's package; a C load generator, so the measurement is not the client's) for a bounded time
at each of several connection counts (a saturated run shows capacity, a lighter one latency).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from embedrec_local.client import EmbedrecClient
from embedrec_local.sample_data import generate_sample_data
from embedrec_local.stack import free_port, spawn_local_stack

# Capacity, not the plan's request quota, is what the load tools measure.
UNTHROTTLED = {"EMBEDREC_REQUEST_QUOTAS": "false"}

_LUA = """
local users = {}
for i = 1, %(users)d do users[i] = string.format("user_%%04d", i) end
local n = 0
request = function()
  n = n + 1
  local body = '{"user_id": "' .. users[(n %% #users) + 1] .. '", "count": 10}'
  return wrk.format("POST", "/api/v1/recommendations",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}, body)
end
"""


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark reports


def _prepare(client: EmbedrecClient, admin_key: str, data_dir: Path) -> str:
    client.open_shop(admin_key, "Bench", plan="enterprise", password="Bench-Pass-4242")
    token = str(client.token)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(data_dir, end=today)
    client.upload_csv("items", data_dir / "items.csv")
    client.upload_csv("interactions", data_dir / "interactions.csv")
    job = client.request(
        "POST", "/api/admin/training/trigger", expect=(202,), json={"config": {"epochs": 10}}
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.request("GET", f"/api/admin/training/status/{job['job_id']}")
        if status["finished_at"]:
            break
        time.sleep(1)
    if not status.get("deployed"):
        raise RuntimeError(f"training did not deploy a model: {json.dumps(status)}")
    _say(f"model {status['model_version']} trained in {status['metrics'].get('training_time_seconds')} s")
    while (
        client.request("POST", "/api/v1/recommendations", json={"user_id": "user_0001"})["metadata"][
            "model_version"
        ]
        != status["model_version"]
    ):
        time.sleep(0.5)
    return token


def _wrk(script: Path, port: int, *, connections: int, seconds: int) -> str:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    result = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True
    )
    return result.stdout


def _summary(output: str, connections: int, args: argparse.Namespace) -> dict[str, str]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": rps.group(1) if rps else "?",
        "p50": p50.group(1) + p50.group(2) if p50 else "?",
        "p99": p99.group(1) + p99.group(2) if p99 else "?",
        "non_2xx": errors.group(1) if errors else "0",
        "connections": str(connections),
        "workers": str(args.workers),
        "seconds": str(args.seconds),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the HTTP benchmark: one wrk run and one summary line per connection count."""
    parser = argparse.ArgumentParser(prog="bench-http")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--connections", default="4,8,16", help="comma-separated connection counts, one run each"
    )
    parser.add_argument("--users", type=int, default=500, help="distinct warm users cycled through")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the local stack")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        _say("wrk is missing: apt-get install -y wrk")
        return 2
    port = free_port()
    admin_key = "adm_bench_" + os.urandom(8).hex()
    stack = spawn_local_stack(port, admin_key, workers=args.workers, env=UNTHROTTLED)
    client = EmbedrecClient(f"http://127.0.0.1:{port}")
    try:
        client.wait_until_healthy()
        with tempfile.TemporaryDirectory(prefix="embedrec-bench-") as tmp:
            token = _prepare(client, admin_key, Path(tmp))
            script = Path(tmp) / "recommend.lua"
            script.write_text(_LUA % {"users": args.users, "token": token})
            # One untimed pass warms the per-container response cache and the users' vectors.
            _wrk(script, port, connections=4, seconds=5)
            for connections in [int(c) for c in args.connections.split(",")]:
                output = _wrk(script, port, connections=connections, seconds=args.seconds)
                _say(output)
                _say(" ".join(f"{k}={v}" for k, v in _summary(output, connections, args).items()))
    finally:
        client.close()
        stack.terminate()
        stack.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
