"""The client examples of the documentation (Python, JavaScript, curl) run against the local stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embedrec_local.client import EmbedrecClient
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
ITEMS = (
    "item_id,title,category,price,brand,description\n"
    "item_0001,iPhone 15 Pro,Smartphones,999.99,Apple,Flagship\n"
    "item_0002,MacBook Pro,Laptops,2499.99,Apple,Laptop\n"
    "item_0003,AirPods Pro,Audio,249.99,Apple,Earbuds\n"
)


@pytest.fixture(scope="module")
def api_key(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    api = EmbedrecClient(stack.api_url)
    api.open_shop(stack.admin_key, "Examples", password="Examples-Pass-42")
    items = tmp_path_factory.mktemp("examples") / "items.csv"
    items.write_text(ITEMS)
    api.upload_csv("items", items)
    history = items.parent / "interactions.csv"  # a bulk upload: it builds the shop's popular list
    history.write_text(
        "user_id,item_id,interaction_type,timestamp\n"
        "u1,item_0003,purchase,2025-01-02T10:00:00Z\n"
        "u2,item_0003,purchase,2025-01-02T11:00:00Z\n"
        "u3,item_0001,purchase,2025-01-02T12:00:00Z\n"
    )
    api.upload_csv("interactions", history)
    key: str = api.request(
        "POST", "/api/v1/api-keys", json={"name": "examples", "permissions": ["read", "write"]}
    )["key"]
    api.close()
    return key


def _run(command: list[str], stack: RunningStack, key: str) -> str:
    env = {**os.environ, "EMBEDREC_API_URL": stack.api_url, "EMBEDREC_API_KEY": key}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=60).stdout


def test_python_example(stack: RunningStack, api_key: str) -> None:
    output = _run([sys.executable, str(EXAMPLES / "recommendations.py"), "user_new"], stack, api_key)

    assert output.splitlines()[0].startswith("AirPods Pro: $249.99")
    assert "tracked click: success" in output


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_javascript_example(stack: RunningStack, api_key: str) -> None:
    output = _run(["node", str(EXAMPLES / "recommendations.mjs"), "user_new"], stack, api_key)

    assert output.splitlines()[0].startswith("AirPods Pro: $249.99")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_example(stack: RunningStack, api_key: str) -> None:
    output = _run(["bash", str(EXAMPLES / "recommendations.sh"), "user_new"], stack, api_key)

    assert json.loads(output)["recommendations"][0]["title"] == "AirPods Pro"
