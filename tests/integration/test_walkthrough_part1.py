"""Part 1 and 4 of the walkthrough against the running local stack, over HTTP."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.demo import run_walkthrough
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_health_answers_when_ready(api: EmbedrecClient) -> None:
    assert api.request("GET", "/health") == {"status": "healthy"}


def test_part1_tenant_user_login_generate_upload_and_keys(
    api: EmbedrecClient, stack: RunningStack, tmp_path: Path
) -> None:
    result = run_walkthrough(api, stack.admin_key, tmp_path, users=10_000, items=5_000, interactions=100_000)

    reports = result["reports"]
    assert isinstance(reports, dict)
    assert (reports["items"]["status"], reports["items"]["accepted"], reports["items"]["rejected"]) == (
        "success",
        5_000,
        0,
    )
    assert reports["interactions"]["accepted"] + reports["interactions"]["rejected"] == 100_000
    assert reports["interactions"]["status"] == "success"
    assert api.request("GET", f"/api/v1/uploads/{reports['items']['upload_id']}")["accepted"] == 5_000
    keys = api.request("GET", "/api/v1/api-keys")["api_keys"]
    assert [k["status"] for k in keys] == ["revoked"]


def test_presigned_upload_goes_through_the_drop_folder(api: EmbedrecClient, stack: RunningStack) -> None:
    slug = f"dropper-{os.urandom(3).hex()}"
    tenant = api.create_tenant(stack.admin_key, name="Dropper", slug=slug, plan="starter")
    email = f"{slug}@example.com"
    api.create_user(
        stack.admin_key, tenant_id=tenant["id"], email=email, password="Dropper-Pass-42", role="admin"
    )
    api.login(email, "Dropper-Pass-42")
    ticket = api.request("POST", "/api/v1/uploads", json={"kind": "items"})
    csv = (
        b"item_id,title,category,price,brand,description\n"
        b"item_1,Speaker,Audio,99.5,Sony,ok\n"
        b"item_2,X,Audio,-3,Sony,bad\n"
    )

    put = httpx.put(ticket["url"], content=csv, headers=ticket["headers"], timeout=30)
    assert put.status_code == 200, put.text

    deadline = time.monotonic() + 120  # the ingest function may start cold
    while time.monotonic() < deadline:
        response = api.request("GET", f"/api/v1/uploads/{ticket['upload_id']}", expect=(200, 404))
        if response and response.get("status", "pending") != "pending":
            break
        time.sleep(0.3)
    else:
        pytest.fail("the drop-folder upload was never ingested")
    assert (response["status"], response["accepted"], response["rejected"]) == ("partial", 1, 1)
    assert response["source"] == "drop-folder"


def test_every_data_call_needs_a_credential(api: EmbedrecClient) -> None:
    for method, path in (
        ("POST", "/api/v1/items"),
        ("POST", "/api/v1/interactions"),
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/uploads/upload_000000000000"),
    ):
        api.request(method, path, expect=(401,))
