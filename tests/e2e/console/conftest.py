"""The console tier: the web console in headless Chromium (Debian's, driven by Playwright) on the local stack.

``install_browser.sh`` beside this file installs what it needs. Where chromium or the playwright package
is missing the tests skip, so the other tiers still pass. The ``stack`` fixture (the integration tier's)
comes from ``tests/e2e/conftest.py``; importing it here again would start a second stack.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.sample_data import generate_sample_data
from tests.integration.conftest import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request, Route

CHROMIUM = os.environ.get("EMBEDREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Console-Pass-42"
# The README's pictures are refreshed on purpose (`make screenshots`), not by every test run.
SCREENSHOTS = (
    Path(__file__).resolve().parents[3] / "docs" / "screenshots"
    if os.environ.get("EMBEDREC_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "embedrec-screenshots"
)


@dataclass
class Shop:
    """A fresh tenant with an admin account, and sample CSVs for it."""

    tenant_id: str
    email: str
    items_csv: Path
    interactions_csv: Path


@dataclass
class BrowserWatch:
    """What the browser did that a test may want to refuse: requests elsewhere, console errors."""

    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[BrowserContext]:
    """Debian's chromium with a fresh profile; skips the module where it or playwright is absent."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: run tests/e2e/console/install_browser.sh for the console tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: run tests/e2e/console/install_browser.sh")
    profile = tempfile.mkdtemp(prefix="embedrec-console-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 860},
                device_scale_factor=1,
                locale="en-GB",
                timezone_id="UTC",
            )
            context.set_default_timeout(15_000)
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def watch(stack: RunningStack) -> BrowserWatch:
    """Where the console may talk to: its own origin only."""
    parts = urlsplit(stack.api_url)
    return BrowserWatch(origin=f"{parts.scheme}://{parts.netloc}")


@pytest.fixture
def page(browser_context: BrowserContext, watch: BrowserWatch) -> Iterator[Page]:
    """A new tab (so a new sessionStorage: logged out) that refuses and records any foreign request."""
    tab = browser_context.new_page()

    def guard(route: Route, request: Request) -> None:
        url = request.url
        if url.startswith(watch.origin) or url.startswith("data:"):
            route.continue_()
        else:
            watch.foreign_requests.append(url)
            route.abort()

    tab.route("**/*", guard)
    tab.on("console", lambda message: message.type == "error" and watch.console_errors.append(message.text))
    tab.on("pageerror", lambda error: watch.console_errors.append(str(error)))
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def shop(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """A tenant and its admin; a small sample (one bad catalogue row) written as CSV."""
    client = EmbedrecClient(stack.api_url)
    try:
        slug = f"console-{os.urandom(3).hex()}"
        tenant = client.create_tenant(stack.admin_key, name="Console Gadgets", slug=slug, plan="pro")
        email = f"{slug}@example.com"
        client.create_user(
            stack.admin_key, tenant_id=tenant["id"], email=email, password=PASSWORD, role="admin"
        )
    finally:
        client.close()
    data = tmp_path_factory.mktemp("console-data")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(data, users=1000, items=200, interactions=20_000, end=today)
    items = data / "items.csv"
    with items.open("a", encoding="utf-8") as handle:
        handle.write("item_bad,Broken Gadget,Audio,cheap,Acme,a price that is not a number\n")
    return Shop(str(tenant["id"]), email, items, data / "interactions.csv")


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save ``docs/screenshots/<name>.png`` (the viewport unless ``full_page``: small files)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.mouse.move(0, 0)  # no hover state in the picture
    page.screenshot(path=str(path), animations="disabled", caret="hide", full_page=full_page)
    return path
