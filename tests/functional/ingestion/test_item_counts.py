"""Item counts as one delta per upload: sums, retries, and folding into the base."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pytest

from embedrec_local.provision import LocalNames
from functions.common import aws, resources
from functions.ingestion import item_counts
from functions.ingestion.item_counts import ItemCounts
from functions.ingestion.store.data_store import CatalogVersion, DataStore

TENANT = "tenant_counts"


def _counts(**weights: float) -> pa.Table:
    return pa.table({"item_id": list(weights), "weight": [float(w) for w in weights.values()]})


def _as_dict(table: pa.Table | None) -> dict[str, float]:
    assert table is not None
    return dict(zip(table["item_id"].to_pylist(), table["weight"].to_pylist(), strict=True))


def _keys(bucket: str, prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(obj["Key"] for obj in listed)


@pytest.fixture
def counts(aws_env: LocalNames) -> ItemCounts:
    return ItemCounts(DataStore(aws.s3_client(), aws_env.bucket(resources.DATA_BUCKET)))


def test_uploads_add_up_and_a_retried_upload_counts_once(counts: ItemCounts) -> None:
    now = datetime.now(UTC)
    counts.add(TENANT, "upload_a", _counts(i1=1, i2=4))
    counts.add(TENANT, "upload_b", _counts(i1=2))
    counts.add(TENANT, "upload_b", _counts(i1=2))  # the same upload again (an SQS retry)

    assert _as_dict(counts.read(TENANT, now)) == {"i1": 3.0, "i2": 4.0}

    counts.remove(TENANT, "upload_b")  # a failed upload undoes its counts
    assert _as_dict(counts.read(TENANT, now)) == {"i1": 1.0, "i2": 4.0}


def test_no_upload_means_no_counts(counts: ItemCounts) -> None:
    assert counts.read(TENANT, datetime.now(UTC)) is None


def test_old_deltas_are_folded_into_the_base_and_the_sums_do_not_move(
    counts: ItemCounts, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_counts, "FOLD_AT", 3)
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    for n in range(4):
        counts.add(TENANT, f"upload_{n}", _counts(i1=1, **{f"x{n}": n + 1}))
    expected = {"i1": 4.0, "x0": 1.0, "x1": 2.0, "x2": 3.0, "x3": 4.0}

    # Given deltas too young to fold (their uploads may still be undone), reading folds nothing
    assert _as_dict(counts.read(TENANT, datetime.now(UTC))) == expected
    assert _keys(bucket, resources.item_counts_key(TENANT)) == []

    # When they are old enough, the reader folds them into the base and deletes them
    later = datetime.now(UTC) + item_counts.FOLD_AFTER + timedelta(seconds=1)
    assert _as_dict(counts.read(TENANT, later)) == expected
    assert _keys(bucket, resources.item_count_deltas_prefix(TENANT)) == []
    assert _keys(bucket, resources.item_counts_key(TENANT)) == [resources.item_counts_key(TENANT)]

    # Then the base plus new deltas still add up, and a retry of a folded upload's key is not lost
    counts.add(TENANT, "upload_9", _counts(i1=10))
    assert _as_dict(counts.read(TENANT, later)) == {**expected, "i1": 14.0}


def test_a_reader_that_finds_a_delta_folded_meanwhile_reads_again(
    counts: ItemCounts, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_counts, "FOLD_AT", 1)
    counts.add(TENANT, "upload_a", _counts(i1=1))
    counts.add(TENANT, "upload_b", _counts(i1=2))
    store = DataStore(aws.s3_client(), aws_env.bucket(resources.DATA_BUCKET))
    later = datetime.now(UTC) + item_counts.FOLD_AFTER + timedelta(seconds=1)
    # Another publisher folds (and deletes the deltas) right after this reader read the base.
    read_base = store.read_versioned
    raced: list[bool] = []

    def read_then_fold(key: str) -> CatalogVersion:
        found = read_base(key)
        if not raced:
            raced.append(True)
            ItemCounts(store).read(TENANT, later)
        return found

    monkeypatch.setattr(store, "read_versioned", read_then_fold)
    assert _as_dict(ItemCounts(store).read(TENANT, datetime.now(UTC))) == {"i1": 3.0}
    assert (
        raced
        and _keys(aws_env.bucket(resources.DATA_BUCKET), resources.item_count_deltas_prefix(TENANT)) == []
    )
