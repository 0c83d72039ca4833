"""The registry's ACTIVE pointer: one definition, read alike by the pipeline and by serving."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from functions.training.store.model_registry import ActivePointer

ROOT = Path(__file__).resolve().parents[3]


def test_an_item_becomes_its_pointer() -> None:
    item = {
        "tenant_id": "t1",
        "version": "ACTIVE",
        "active_version": "lightgcn_v3",
        "manifest_key": "models/t1/lightgcn_v3/manifest.json",
        "revision": Decimal(4),  # as boto3's resource API returns numbers
        "updated_at": "2025-06-01T12:00:00.000Z",
    }

    assert ActivePointer.from_item(item) == ActivePointer(
        "lightgcn_v3", "models/t1/lightgcn_v3/manifest.json", 4
    )


@pytest.mark.parametrize(
    "item",
    [None, {"active_version": "v1"}, {"manifest_key": "m"}, {"active_version": "", "manifest_key": "m"}],
)
def test_no_item_or_an_incomplete_one_is_no_pointer(item: dict[str, str] | None) -> None:
    assert ActivePointer.from_item(item) is None


def test_a_pointer_without_revision_counts_as_revision_0() -> None:
    assert ActivePointer.from_item({"active_version": "v1", "manifest_key": "m"}) == ActivePointer(
        "v1", "m", 0
    )


def test_the_pointer_is_defined_once() -> None:
    defined = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "functions").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name == "ActivePointer"
    ]
    assert defined == ["functions/training/store/model_registry.py"]
