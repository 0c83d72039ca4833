"""The web console end to end: log in, upload and read the report, train, preview, analytics, API keys.

Each test opens a fresh tab (logged out) on the same module-wide shop; screenshots of the main pages
land in ``docs/screenshots/``.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

pytest.importorskip(
    "playwright.sync_api", reason="no playwright package: run tests/e2e/console/install_browser.sh"
)
from playwright.sync_api import Page, expect  # noqa: E402

from embedrec_local.client import EmbedrecClient  # noqa: E402
from tests.e2e.console.conftest import PASSWORD, BrowserWatch, Shop, screenshot  # noqa: E402
from tests.integration.conftest import RunningStack  # noqa: E402

pytestmark = [pytest.mark.integration]

TRAINING_TIMEOUT_MS = 60_000


def open_console(page: Page, stack: RunningStack) -> None:
    page.goto(f"{stack.api_url}/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def log_in(page: Page, stack: RunningStack, shop: Shop) -> None:
    open_console(page, stack)
    page.get_by_label("E-mail").fill(shop.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()


def assert_clean(watch: BrowserWatch) -> None:
    """No request left the origin; no script error or CSP violation (HTTP 4xx logs are expected)."""
    assert watch.foreign_requests == []
    assert [text for text in watch.console_errors if "Failed to load resource" not in text] == []


def shop_client(stack: RunningStack, shop: Shop) -> EmbedrecClient:
    client = EmbedrecClient(stack.api_url)
    client.login(shop.email, PASSWORD)
    return client


def test_log_in_shows_the_apis_error_then_succeeds(
    page: Page, stack: RunningStack, shop: Shop, watch: BrowserWatch
) -> None:
    open_console(page, stack)
    screenshot(page, "login")
    page.get_by_label("E-mail").fill(shop.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#view-login [data-error]")).to_have_text("401 · invalid e-mail or password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    expect(page.locator("#session-who")).to_contain_text(shop.email)
    assert_clean(watch)


def test_upload_shows_the_validation_report(
    page: Page, stack: RunningStack, shop: Shop, watch: BrowserWatch
) -> None:
    log_in(page, stack, shop)

    page.get_by_label("Interactions CSV").set_input_files(shop.interactions_csv)
    page.get_by_role("button", name="Upload interactions").click()
    report = page.get_by_test_id("upload-report")
    expect(report).to_contain_text("Report: interactions")
    expect(report.locator("[data-field=accepted]")).to_have_text("20,000")

    page.get_by_label("Items CSV").set_input_files(shop.items_csv)
    page.get_by_role("button", name="Upload items").click()
    expect(report).to_contain_text("Report: items")
    expect(report.locator("[data-field=accepted]")).to_have_text("200")
    expect(report.locator("[data-field=rejected]")).to_have_text("1")
    expect(report).to_contain_text("partial")
    error_row = report.locator("table").first.locator("tbody tr")
    expect(error_row).to_have_count(1)
    expect(error_row).to_contain_text("201")  # the appended bad row
    expect(error_row).to_contain_text("price")
    expect(error_row).to_contain_text("price must be a number, got 'cheap'")
    screenshot(page, "data-report")
    assert_clean(watch)


def test_training_models_and_recommendations(
    page: Page, stack: RunningStack, shop: Shop, watch: BrowserWatch
) -> None:
    client = shop_client(stack, shop)  # the data, whatever order the tests ran in
    try:
        client.upload_csv("items", shop.items_csv)
        client.upload_csv("interactions", shop.interactions_csv)
    finally:
        client.close()
    log_in(page, stack, shop)

    # Recommendations before any model: the popular fallback, and the API's 422 detail for a bad filter.
    page.get_by_role("link", name="Recommendations").click()
    form = page.locator("#recs-form")
    form.get_by_label("Category").fill("Spaceships")
    form.get_by_role("button", name="Preview").click()
    expect(page.locator("#view-recommendations [data-error]")).to_contain_text("422 · unknown category")
    form.get_by_label("Category").fill("")
    form.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("recs")).to_contain_text("popular")

    # Training with live progress and the curve.
    page.get_by_role("link", name="Training").click()
    # one model (auto is the default): the epoch curve and the version names are LightGCN's
    page.locator("#training-form select[name=model_type]").select_option("lightgcn")
    page.get_by_label("Epochs").fill("100")  # small epochs: enough of them for a curve at one poll a second
    page.get_by_label("Embedding dim").fill("16")
    page.get_by_label("Patience").fill("0")
    page.get_by_role("button", name="Start training").click()
    job = page.locator("#training-job")
    expect(job).to_be_visible()
    expect(job).to_have_attribute("data-finished", "true", timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#job-percent")).to_have_text("100%")
    expect(page.locator("#job-epoch")).to_have_text("100 / 100")
    expect(page.locator("#training-chart svg .series.loss circle").first).to_be_visible()
    screenshot(page, "training")

    # A second, shorter run through the API: the models page then offers activate and roll back.
    client = shop_client(stack, shop)
    try:
        second = client.request(
            "POST",
            "/api/admin/training/trigger",
            expect=(202,),
            json={"model_type": "lightgcn", "config": {"epochs": 2, "embedding_dim": 16}},
        )
        deadline = time.monotonic() + TRAINING_TIMEOUT_MS / 1000
        while not client.request("GET", f"/api/admin/training/status/{second['job_id']}")["finished_at"]:
            assert time.monotonic() < deadline, "the second training run did not finish"
            time.sleep(0.5)
    finally:
        client.close()
    page.get_by_role("link", name="Models").click()
    rows = page.locator("#models-table tbody tr")
    v1 = rows.filter(has=page.get_by_text("lightgcn_v1", exact=True))  # v2's decision names v1 too
    v2 = rows.filter(has=page.get_by_text("lightgcn_v2", exact=True))
    expect(v2).to_be_visible()
    if v1.get_by_role("button").count():  # the gate deployed v2: roll back to v1 first
        v1.get_by_role("button", name="Roll back lightgcn_v1").click()
    expect(v1.locator(".badge")).to_have_text("active")
    v2.get_by_role("button", name="Activate lightgcn_v2").click()
    expect(v2.locator(".badge")).to_have_text("active")
    v1.get_by_role("button", name="Roll back lightgcn_v1").click()
    expect(v1.locator(".badge")).to_have_text("active")
    expect(v2.get_by_role("button", name="Activate lightgcn_v2")).to_be_visible()
    screenshot(page, "models")

    # Recommendations from the trained model, filtered by price (serving picks the model up within seconds).
    page.get_by_role("link", name="Recommendations").click()
    form.get_by_label("Count").fill("8")
    form.get_by_label("Max price").fill("2000")
    results = page.get_by_test_id("recs")
    deadline = time.monotonic() + 30
    while True:
        form.get_by_role("button", name="Preview").click()
        expect(results).to_be_visible()
        if "lightgcn" in results.inner_text() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
    expect(results).to_contain_text("lightgcn")
    rows = results.locator("tbody tr")
    expect(rows.first).to_be_visible()
    assert 1 <= rows.count() <= 8
    expect(rows.first).to_contain_text(re.compile(r"\$[\d,]+\.\d\d"))
    expect(rows.first).to_contain_text(re.compile(r"Because you|Popular|Similar|Trending", re.IGNORECASE))
    screenshot(page, "recommendations")

    # A click and a purchase on the first item, attributed to that response (as a shop's site would send).
    first = {
        "item_id": rows.first.locator("code").inner_text(),
        "price": float(rows.first.locator("td").nth(3).inner_text().strip("$").replace(",", "")),
        "recommendation_id": results.locator("dd code").inner_text(),
    }
    client = shop_client(stack, shop)
    try:
        for event in ("click", "purchase"):
            client.request(
                "POST",
                "/api/v1/interactions",
                json={
                    "user_id": "user_0001",
                    "item_id": first["item_id"],
                    "interaction_type": event,
                    "context": {
                        "source": "recommendations",
                        "position": 1,
                        "revenue": first["price"],
                        "recommendation_id": first["recommendation_id"],
                    },
                },
            )
    finally:
        client.close()

    # Analytics: the previews above were served and counted (their impressions are queued by serving; the
    # local stack delivers the queue to its consumer before the api function answers).
    page.get_by_role("link", name="Analytics").click()
    page.get_by_label("Period").select_option("7")
    # (before answering, the api waits for the local event sources to drain both queues: on the Lambda
    # runtime the compactor's and the consumer's containers may start cold first)
    expect(page.locator("#view-analytics")).to_have_attribute("data-days", "7", timeout=30_000)
    served = page.locator("#analytics-kpis .kpi").first
    expect(served).to_contain_text("Items served")
    expect(served.locator("strong")).not_to_have_text("0")
    expect(page.locator("#analytics-kpis")).to_contain_text("1 click")
    expect(page.locator("#analytics-top tbody tr").first).to_be_visible()
    expect(page.locator("#analytics-charts svg")).to_have_count(4)
    screenshot(page, "analytics", full_page=True)
    assert_clean(watch)


def test_api_key_is_shown_once_and_can_be_revoked(
    page: Page, stack: RunningStack, shop: Shop, watch: BrowserWatch
) -> None:
    log_in(page, stack, shop)
    page.get_by_role("link", name="API keys").click()
    name = f"Production - Website {time.time_ns() % 10_000}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("write").check()
    page.get_by_role("button", name="Create key").click()

    key = page.get_by_label("New API key")
    expect(key).to_have_value(re.compile(r"^sk_live_\w+"))
    secret = key.input_value()
    row = page.locator("#keys-table tbody tr", has_text=name)
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("read, write")
    assert secret not in page.locator("#keys-table").inner_text()  # the list shows the prefix only
    screenshot(page, "api-keys")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Revoke {name}").click()
    expect(row).to_contain_text("revoked")
    with httpx.Client(base_url=stack.api_url) as http:
        refused = http.get("/api/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401

    page.get_by_role("link", name="A/B tests").click()
    expect(page.locator("#ab-list")).to_contain_text("No A/B tests")
    page.get_by_role("link", name="API keys").click()
    expect(page.locator("#key-created")).to_be_hidden()  # shown once, not on the next visit
    assert_clean(watch)
