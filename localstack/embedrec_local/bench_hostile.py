"""``make bench-hostile``: the worst-case table of docs/reliability.md (hostile input, time, status).

Starts the embedded stack, opens a shop, then sends each hostile request over loopback HTTP and
times the answer; drop-folder cases are PUT through a presigned URL and timed until their report is
final. Prints a Markdown table: input, status, answer size, seconds. Every case must answer a 4xx
(or a report) within a second; the run exits 1 when one does not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx

from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import free_port, spawn_local_stack
from functions.identity.callers import CallerResolver
from functions.identity.key_material import generate_key
from functions.identity.models import ApiKey, Permission, Plan, Tenant

BUDGET_S = 1.0
PASSWORD = "Hostile-Bench-4242"
ITEMS_HEADER = b"item_id,title,category,price,brand"
EVENT = {"user_id": "u1", "item_id": "i1", "interaction_type": "purchase"}


@dataclass(frozen=True)
class Outcome:
    """One timed case."""

    case: str
    status: str
    size: int
    seconds: float


def _csv(columns: int) -> bytes:
    return ITEMS_HEADER + b"," + b",".join(b"c%d" % i for i in range(columns)) + b"\ni1,T,C,1,B\n"


def _cases() -> list[tuple[str, str, str, dict[str, str], bytes]]:
    """(label, app path, method, extra headers, body) of each request-borne hostile input."""
    csv_type = {"Content-Type": "text/csv"}
    json_type = {"Content-Type": "application/json"}
    unclosed = b"\n".join([ITEMS_HEADER, b'a0,"T,C,1,B', *(b"a%d,T,C,1,B" % i for i in range(1, 50_000))])
    deep_list = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"user_id": "u1", "filters": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}"
    long_id = "x" * 10_000
    return [
        ("CSV header, 26,000 made-up columns (270 KB)", "/api/v1/items", "POST", csv_type, _csv(26_000)),
        ("CSV header, 800,000 made-up columns (7.9 MB)", "/api/v1/items", "POST", csv_type, _csv(800_000)),
        (
            "CSV header, 40,000 repeated columns",
            "/api/v1/items",
            "POST",
            csv_type,
            ITEMS_HEADER + b"," + b",".join([b"dup"] * 40_000) + b"\n",
        ),
        (
            "CSV, one 8 MB line",
            "/api/v1/items",
            "POST",
            csv_type,
            ITEMS_HEADER + b"\ni1," + b"t" * 8_000_000 + b",C,1,B\n",
        ),
        ("CSV, a quote never closed, then 50,000 rows", "/api/v1/items", "POST", csv_type, unclosed),
        ("JSON events nested 100,000 deep", "/api/v1/interactions", "POST", json_type, deep_list),
        (
            "JSON body nested 100,000 deep (recommendations)",
            "/api/v1/recommendations",
            "POST",
            json_type,
            deep_object,
        ),
        (
            "JSON event, revenue 1e300",
            "/api/v1/interactions",
            "POST",
            json_type,
            json.dumps(EVENT | {"revenue": 1e300}).encode(),
        ),
        (
            "JSON event, revenue with 4,000 digits",
            "/api/v1/interactions",
            "POST",
            json_type,
            b'{"user_id":"u1","item_id":"i1","interaction_type":"view","revenue":' + b"9" * 4_000 + b"}",
        ),
        (
            "recommendations, count: true",
            "/api/v1/recommendations",
            "POST",
            json_type,
            b'{"user_id": "u1", "count": true}',
        ),
        (
            "API key with a 100,000-entry permission list",
            "/api/v1/api-keys",
            "POST",
            json_type,
            json.dumps({"name": "k", "permissions": ["admin"] * 100_000}).encode(),
        ),
        (
            "recommendations, 500 excluded ids of 10,000 characters",
            "/api/v1/recommendations",
            "POST",
            json_type,
            json.dumps({"user_id": "u1", "filters": {"exclude_ids": [long_id] * 500}}).encode(),
        ),
        (
            "10,000 events with 50 made-up keys each (8 MB)",
            "/api/v1/interactions",
            "POST",
            json_type,
            json.dumps([EVENT | {f"k{i}_{j}": 1 for j in range(50)} for i in range(10_000)]).encode(),
        ),
        (
            "10,000 events with 28 made-up keys each (3.4 MB, under the key bound)",
            "/api/v1/interactions",
            "POST",
            json_type,
            json.dumps([EVENT | {f"k{j}": 1 for j in range(28)} for _ in range(10_000)]).encode(),
        ),
        ("a 10,000-character upload id", f"/api/v1/uploads/{long_id}", "GET", {}, b""),
        (
            "500 events with 10,000-character user ids",
            "/api/v1/interactions",
            "POST",
            json_type,
            json.dumps([EVENT | {"user_id": long_id}] * 500).encode(),
        ),
    ]


def _drop(client: EmbedrecClient, http: httpx.Client, label: str, body: bytes) -> Outcome:
    """PUT a file through a presigned URL; the time until its report is final."""
    ticket = client.request("POST", "/api/v1/uploads", json={"kind": "items"})
    start = time.perf_counter()
    put = httpx.put(ticket["url"], content=body, headers=ticket["headers"], timeout=60)
    put.raise_for_status()
    while True:
        report = http.get(f"/api/v1/uploads/{ticket['upload_id']}", headers=client._headers(None))
        if report.json().get("status") != "pending" or time.perf_counter() - start > 30:
            break
        time.sleep(0.02)
    return Outcome(
        label, f"report: {report.json().get('status')}", len(report.content), time.perf_counter() - start
    )


def run(client: EmbedrecClient, base_url: str) -> list[Outcome]:
    """Every case once, after one warm-up request per app."""
    outcomes: list[Outcome] = []
    with httpx.Client(base_url=base_url, timeout=120) as http:
        auth = client._headers(None)
        http.get("/api/v1/models", headers=auth)
        http.post("/api/v1/recommendations", json={"user_id": "u1"}, headers=auth)
        for label, path, method, headers, body in _cases():
            start = time.perf_counter()
            response = http.request(method, path, content=body or None, headers={**auth, **headers})
            seconds = time.perf_counter() - start
            outcomes.append(Outcome(label, str(response.status_code), len(response.content), seconds))
        outcomes.append(_drop(client, http, "drop folder: CSV header, 26,000 made-up columns", _csv(26_000)))
        outcomes.append(
            _drop(client, http, "drop folder: CSV header, 800,000 made-up columns", _csv(800_000))
        )
    return outcomes


class _Keys:
    """An in-memory key table (the warm path must not read it at all)."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def find_by_hash(self, key_hash: str) -> ApiKey:  # noqa: ARG002 - one key
        return self.key


class _Tenants:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    def get(self, tenant_id: str) -> Tenant:  # noqa: ARG002 - one tenant
        return self.tenant


def time_warm_resolve(calls: int = 200_000, repeats: int = 5) -> float:
    """Microseconds per warm ``CallerResolver.resolve_warm`` of an API key (best of ``repeats``): the
    per-request cost of the cache, revocation generation check included."""
    now = datetime.now(UTC)
    material = generate_key()
    key = ApiKey(
        "key_1", "t1", "k", material.prefix, material.key_hash, frozenset({Permission.READ}), "active", now
    )
    keys, tenants = _Keys(key), _Tenants(Tenant("t1", "T", "t", Plan.PRO, "active", {}, now))
    resolver = CallerResolver(lambda: cast(Any, tenants), lambda: cast(Any, keys), lambda: "s", quotas=None)
    resolver.resolve(material.secret)
    best = min(timeit.repeat(lambda: resolver.resolve_warm(material.secret), number=calls, repeat=repeats))
    return best / calls * 1e6


def table(outcomes: list[Outcome]) -> str:
    """The Markdown table of docs/reliability.md."""
    lines = ["| hostile input | answer | body bytes | seconds |", "|---|---|---:|---:|"]
    lines += [f"| {o.case} | {o.status} | {o.size:,} | {o.seconds:.3f} |" for o in outcomes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the cases against a fresh embedded stack; exit 1 if one is slower than the budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    port = free_port()
    admin_key = "adm_bench_" + os.urandom(8).hex()
    # The plan's request quota would answer 429 to a burst of cases; capacity is what is measured.
    stack = spawn_local_stack(port, admin_key, env={"EMBEDREC_REQUEST_QUOTAS": "false"})
    base_url = f"http://127.0.0.1:{port}"
    client = EmbedrecClient(base_url)
    try:
        client.wait_until_healthy()
        client.open_shop(admin_key, "Hostile", password=PASSWORD)
        outcomes = run(client, base_url)
    finally:
        client.close()
        stack.terminate()
        stack.wait(timeout=15)
    sys.stdout.write(table(outcomes) + "\n")
    sys.stdout.write(f"warm API-key resolution: {time_warm_resolve():.2f} us per request\n")
    slow = [o for o in outcomes if o.seconds > BUDGET_S]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
