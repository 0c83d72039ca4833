"""``make demo``: the walkthrough on the embedded local stack, narrated step by step.

Part 1 (tenant, admin, login, sample data, uploads, API keys) runs now; training, serving and
analytics join the demo as those capabilities land.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import free_port

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
    env = {**os.environ, "EMBEDREC_ADMIN_KEY": admin_key}
    stack = subprocess.Popen(
        [sys.executable, "-m", "embedrec_local.cli", "local", "--port", str(port)], env=env
    )
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
        _say(
            "demo finished: start the stack yourself with `make run` (embedrec local) to explore "
            "http://127.0.0.1:8000/docs"
        )
    finally:
        client.close()
        stack.terminate()
        stack.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
