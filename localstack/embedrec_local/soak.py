"""``make soak``: a bounded load of events and recommendation calls on loopback, watching errors,
latency and the stack's memory.

Starts the embedded stack, trains a model on the default sample through the real workflow, then
drives a mix of 80 % ``POST /api/v1/recommendations`` and 20 % ``POST /api/v1/interactions`` (clicks of
random users on random items, which also invalidate those users' cached answers) with ``wrk`` for
``--seconds`` (5 minutes by default), sampling the stack process's resident memory every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from embedrec_local.bench_http import UNTHROTTLED, _prepare
from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import free_port, spawn_local_stack

_LUA = """
math.randomseed(7)
local n = 0
request = function()
  n = n + 1
  local user = string.format("user_%%04d", math.random(1, %(users)d))
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}
  if n %% 5 == 0 then
    local item = string.format("item_%%04d", math.random(1, %(items)d))
    local body = '{"user_id": "' .. user .. '", "item_id": "' .. item .. '", "interaction_type": "click"}'
    return wrk.format("POST", "/api/v1/interactions", headers, body)
  end
  return wrk.format("POST", "/api/v1/recommendations", headers, '{"user_id": "' .. user .. '", "count": 10}')
end
"""


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a benchmark reports


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print a summary line; exits 1 when errors or memory growth exceed the bounds."""
    parser = argparse.ArgumentParser(prog="soak")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-error-rate", type=float, default=0.001)
    parser.add_argument(
        "--max-growth-mb",
        type=float,
        default=150.0,
        help="bound on the stack's resident memory growth after warm-up",
    )
    args = parser.parse_args(argv)
    port = free_port()
    admin_key = "adm_soak_" + os.urandom(8).hex()
    stack = spawn_local_stack(port, admin_key, env=UNTHROTTLED)
    client = EmbedrecClient(f"http://127.0.0.1:{port}")
    samples: list[float] = []
    stop = threading.Event()
    try:
        client.wait_until_healthy()
        with tempfile.TemporaryDirectory(prefix="embedrec-soak-") as tmp:
            token = _prepare(client, admin_key, Path(tmp))
            script = Path(tmp) / "soak.lua"
            script.write_text(_LUA % {"users": 10_000, "items": 5_000, "token": token})
            target = f"http://127.0.0.1:{port}"
            subprocess.run(
                ["wrk", "-t1", "-c2", "-d10s", "-s", str(script), target], check=True, capture_output=True
            )  # warm-up: model, caches, connection pools
            baseline = _rss_mb(stack.pid)

            def sample() -> None:
                while not stop.wait(10):
                    samples.append(_rss_mb(stack.pid))

            threading.Thread(target=sample, daemon=True).start()
            result = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "--latency",
                    "--timeout",
                    "5s",
                    "-s",
                    str(script),
                    target,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            stop.set()
        _say(result.stdout)
        total = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
        errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)) else 0
        socket_errors = sum(
            int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", result.stdout)
        )
        p99 = re.search(r"99%\s+([\d.]+\w+)", result.stdout)
        peak = max(samples or [baseline])
        summary = {
            "requests": total,
            "error_rate": round((errors + socket_errors) / max(total, 1), 5),
            "p99": p99.group(1) if p99 else "?",
            "rss_baseline_mb": round(baseline, 1),
            "rss_peak_mb": round(peak, 1),
            "rss_growth_mb": round(peak - baseline, 1),
            "seconds": args.seconds,
        }
        _say(json.dumps(summary))
        ok = summary["error_rate"] <= args.max_error_rate and summary["rss_growth_mb"] <= args.max_growth_mb
        return 0 if ok else 1
    finally:
        stop.set()
        client.close()
        stack.terminate()
        stack.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
