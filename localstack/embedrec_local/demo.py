"""``make demo``: the TechGadgets walkthrough on the embedded local stack, narrated step by step.

Part 1 (tenant, admin, login, sample data, uploads, API keys), Part 2 (training through the
workflow, with progress), Part 3 (recommendations: known, cold-start and filtered users, then a
click and a purchase that change the next answer) and Part 5 (analytics).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import free_port, spawn_local_stack

PASSWORD = "SecurePass123!"


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo narrates


def run_walkthrough(
    client: EmbedrecClient, admin_key: str, data_dir: Path, *, users: int, items: int, interactions: int
) -> dict[str, object]:
    """Part 1 of the walkthrough over HTTP; returns what it created."""
    _say("1.3 create the tenant")
    tenant = client.create_tenant(
        admin_key,
        name="TechGadgets Store",
        slug=f"techgadgets-{os.getpid()}",
        plan="pro",
        settings={"default_model": "lightgcn", "embedding_dimension": 64},
    )
    _say(f"    -> {tenant['id']} ({tenant['slug']}, plan {tenant['plan']}, {tenant['status']})")
    email = f"admin+{os.getpid()}@techgadgets.com"
    _say("1.4 create the admin account")
    client.create_user(admin_key, tenant_id=tenant["id"], email=email, password=PASSWORD, role="admin")
    client.login(email, PASSWORD)
    _say(f"    -> logged in as {email}")
    _say(f"1.5 generate sample data ({users} users, {items} items, {interactions} interactions)")
    from embedrec_local.sample_data import generate_sample_data

    started = time.perf_counter()
    # The window ends today, so the workflow's default 90-day window covers every interaction.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(data_dir, users=users, items=items, interactions=interactions, end=today)
    _say(f"    -> {data_dir} in {time.perf_counter() - started:.1f} s")
    reports = {}
    for kind, name in (("items", "items.csv"), ("interactions", "interactions.csv")):
        started = time.perf_counter()
        report = client.upload_csv(kind, data_dir / name)
        reports[kind] = report
        _say(
            f"1.6 upload {name}: status={report['status']} accepted={report['accepted']} "
            f"rejected={report['rejected']} ({time.perf_counter() - started:.1f} s)"
        )
    _say("4.1 create an API key and use it")
    key = client.request(
        "POST", "/api/v1/api-keys", json={"name": "Production - Website", "permissions": ["read", "write"]}
    )
    event = {
        "user_id": "user_0001",
        "item_id": "item_0001",
        "interaction_type": "click",
        "context": {"source": "recommendations", "position": 1},
    }
    tracked = client.request("POST", "/api/v1/interactions", token=key["key"], json=event)
    _say(f"    -> key {key['key_prefix']}… tracked a click: {tracked['status']}")
    client.request("DELETE", f"/api/v1/api-keys/{key['id']}")
    refused = client.request("POST", "/api/v1/interactions", token=key["key"], json=event, expect=(401,))
    _say(f"    -> revoked; the key is now refused: {refused['detail']}")
    return {"tenant": tenant, "email": email, "reports": reports}


def _bar(progress: int, width: int = 30) -> str:
    filled = width * progress // 100
    return "[" + "#" * filled + "." * (width - filled) + f"] {progress:3d}%"


def train_and_follow(client: EmbedrecClient, timeout_s: float = 600) -> dict[str, Any]:
    """2.1–2.2: trigger training and follow its progress until the workflow has decided."""
    job = client.request(
        "POST",
        "/api/admin/training/trigger",
        expect=(202,),
        json={"model_type": "lightgcn", "config": {"embedding_dim": 64, "num_layers": 3}},
    )
    _say(f"2.1 training queued: {job['job_id']} (estimated {job['estimated_duration_minutes']} min)")
    deadline, last = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.request("GET", f"/api/admin/training/status/{job['job_id']}")
        metrics = status["metrics"]
        line = (
            f"    {status['status']:<9} {_bar(status['progress'])} epoch {status['current_epoch'] or 0}"
            f"/{status['total_epochs'] or '?'} loss {metrics.get('train_loss', '-')} "
            f"val NDCG@10 {metrics.get('val_ndcg_10', '-')}"
        )
        if line != last:
            _say(line)
            last = line
        if status["finished_at"]:
            _say(
                f"2.2 {status['status']}: {status['model_version']} deployed={status['deployed']} "
                f"({status.get('decision') or status.get('error')}); trained in "
                f"{metrics.get('training_time_seconds', '?')} s"
            )
            return status
        time.sleep(1)
    raise TimeoutError("training did not finish in time")


def show_recommendations(client: EmbedrecClient, version: str | None) -> None:
    """3.1–3.3: known, cold-start and filtered users; then events that change the next answer."""
    deadline = time.monotonic() + 30
    while version and time.monotonic() < deadline:
        probe = client.request("POST", "/api/v1/recommendations", json={"user_id": "user_0001", "count": 3})
        if probe["metadata"]["model_version"] == version:
            break
        time.sleep(0.5)
    requests: list[tuple[str, dict[str, Any]]] = [
        ("3.1 user_0001", {"user_id": "user_0001", "count": 5}),
        ("3.2A new user (cold start)", {"user_id": "user_new", "count": 5}),
        (
            "3.2B laptops 1000-2000",
            {
                "user_id": "user_0001",
                "count": 5,
                "filters": {"category": "Laptops", "min_price": 1000, "max_price": 2000},
            },
        ),
    ]
    first: dict[str, Any] = {}
    for title, body in requests:
        answer = client.request("POST", "/api/v1/recommendations", json=body)
        meta = answer["metadata"]
        _say(f"{title}: {meta['algorithm']} {meta['model_version']} {meta['latency_ms']} ms")
        for item in answer["recommendations"][:5]:
            _say(
                f"    {item['title'][:40]:<40} {item['category']:<12} ${item['price']:>8.2f} "
                f"{item['score']:.3f}  {item['reason']}"
            )
        first = first or answer
    clicked = first["recommendations"][0]
    for event in ("click", "purchase"):
        client.request(
            "POST",
            "/api/v1/interactions",
            json={
                "user_id": "user_0001",
                "item_id": clicked["item_id"],
                "interaction_type": event,
                "context": {
                    "source": "recommendations",
                    "position": 1,
                    "revenue": clicked["price"],
                    "recommendation_id": first["metadata"]["recommendation_id"],
                },
            },
        )
    after = client.request("POST", "/api/v1/recommendations", json={"user_id": "user_0001", "count": 5})
    _say(
        f"3.3 user_0001 clicked and bought '{clicked['title']}'; the next answer "
        f"(cache_hit={after['metadata']['cache_hit']}) no longer offers it:"
    )
    for item in after["recommendations"][:5]:
        _say(f"    {item['title'][:40]:<40} {item['reason']}")


def show_analytics(client: EmbedrecClient) -> None:
    """5.1 and 6.3: what recommendations earned."""
    # No wait: the local stack delivers the impressions queue before the api function answers.
    summary = client.request("GET", "/api/v1/analytics/summary?days=1")
    _say(
        f"5.1 served {summary['recommendations_served']} items, CTR {summary['click_through_rate']:.3f}, "
        f"conversion {summary['conversion_rate']:.3f}, revenue ${summary['revenue']:.2f}"
    )
    top = client.request("GET", "/api/v1/analytics/top-products?days=1&limit=3")["top_products"]
    for product in top:
        _say(
            f"6.3 {str(product['title'])[:40]:<40} shown {product['recommendation_count']} "
            f"CTR {product['click_through_rate']:.2f} revenue ${product['revenue']:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Start the local stack in the background, run the walkthrough against it, and stop it."""
    parser = argparse.ArgumentParser(prog="embedrec-demo")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--interactions", type=int, default=100_000)
    args = parser.parse_args(argv)
    port = args.port or free_port()
    admin_key = os.environ.get("EMBEDREC_ADMIN_KEY") or "adm_demo_" + os.urandom(12).hex()
    log_path = Path(tempfile.gettempdir()) / "embedrec-demo-stack.log"
    log = log_path.open("w")  # the stack's own output (EMF metrics lines) stays out of the narration
    stack = spawn_local_stack(port, admin_key, stdout=log)
    client = EmbedrecClient(f"http://127.0.0.1:{port}")
    try:
        client.wait_until_healthy()
        with tempfile.TemporaryDirectory(prefix="embedrec-demo-") as tmp:
            run_walkthrough(
                client,
                admin_key,
                Path(tmp),
                users=args.users,
                items=args.items,
                interactions=args.interactions,
            )
        status = train_and_follow(client)
        show_recommendations(client, status["model_version"] if status["deployed"] else None)
        show_analytics(client)
        _say(
            "demo finished: start the stack yourself with `make run` (embedrec local) to explore "
            f"http://127.0.0.1:8000/docs; this run's stack log and metrics: {log_path} "
            f"(`embedrec metrics --emf {log_path}` loads them into a running stack's CloudWatch)"
        )
    finally:
        client.close()
        stack.terminate()
        stack.wait(timeout=10)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
