"""The shared definitions: resource specs, S3 layout, serving routes, function registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.common import deployment, resources
from functions.common.routes import is_serving_path
from functions.common.settings import StorageSettings

ROOT = Path(__file__).parents[3]


def test_every_table_has_a_distinct_env_var_that_settings_read() -> None:
    env_vars = [spec.env_var for spec in resources.TABLES] + [spec.env_var for spec in resources.BUCKETS]
    fields = {f"EMBEDREC_{name.upper()}" for name in StorageSettings.model_fields}

    assert len(set(env_vars)) == len(env_vars)
    assert set(env_vars) <= fields


def test_attribute_definitions_cover_every_key_once() -> None:
    names = [key.name for key in resources.API_KEYS.attribute_definitions()]

    assert names == ["tenant_id", "key_id", "key_hash"]


def test_s3_layout_is_tenant_scoped() -> None:
    assert (
        resources.raw_key("t1", "items", "2025-01-07", "upload_1")
        == "raw/t1/items/2025-01-07/upload_1.parquet"
    )
    assert resources.catalog_key("t1") == "catalog/t1/items.parquet"
    assert resources.drop_key("t1", "interactions", "a.csv") == "incoming/t1/interactions/a.csv"
    assert resources.report_key("t1", "upload_1") == "reports/t1/upload_1.json"


@pytest.mark.parametrize(
    ("path", "serving"),
    [
        ("/api/v1/recommendations", True),
        ("/api/v1/items/item_0001/similar", True),
        ("/health", True),
        ("/api/v1/health", True),
        ("/api/v1/items", False),
        ("/api/v1/items/item_0001", False),
        ("/api/v1/items/a/b/similar", True),  # item "a/b", sent as one encoded segment "a%2Fb"
        ("/api/v1/items/a/b", False),
        ("/api/admin/tenants", False),
    ],
)
def test_serving_routes_are_matched_exactly(path: str, serving: bool) -> None:
    assert is_serving_path(path) is serving


def test_function_names_and_asl_placeholders_are_consistent() -> None:
    names = [spec.name for spec in deployment.FUNCTIONS]
    asl = (ROOT / deployment.TRAINING_WORKFLOW_ASL).read_text()
    placeholders = {spec.asl_placeholder for spec in deployment.PIPELINE_STEPS}

    assert len(set(names)) == len(names)
    assert all(f"${{{placeholder}}}" in asl for placeholder in placeholders)
    resources_in_asl = {
        state["Resource"] for state in json.loads(asl)["States"].values() if "Resource" in state
    }
    assert resources_in_asl == {f"${{{placeholder}}}" for placeholder in placeholders}
