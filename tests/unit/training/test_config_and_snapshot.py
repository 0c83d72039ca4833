"""Config validation and snapshot preparation (split rule, weights, bad input)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.training.factories import make_interactions, make_items
from training_jobs.config import TrainingConfig, parse_config, parse_job_arguments
from training_jobs.errors import ConfigError, DatasetError
from training_jobs.snapshot import prepare_data, recency_decay, user_histories


def test_defaults_and_seed_config_are_valid() -> None:
    config = parse_config(
        '{"model_type": "lightgcn", "embedding_dim": 64, "num_layers": 3, "epochs": 20, '
        '"learning_rate": 0.001, "batch_size": 1024}'
    )
    assert config.epochs == 20 and config.loss == "softmax"
    assert parse_config(None) == TrainingConfig()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"learning_rate": NaN}', "learning_rate"),
        ('{"learning_rate": Infinity}', "learning_rate"),
        ('{"reg_weight": -Infinity}', "reg_weight"),
        ('{"embedding_dim": 0}', "embedding_dim"),
        ('{"embedding_dim": 100000}', "embedding_dim"),
        ('{"epochs": 0}', "epochs"),
        ('{"epochs": 1000000}', "epochs"),
        ('{"batch_size": "large"}', "batch_size"),
        ('{"model_type": "gnn"}', "model_type"),
        ('{"loss": "bpr", "num_negatives": 0}', "num_negatives"),
        ('{"interaction_weights": {"view": 5, "click": 1, "add_to_cart": 1, "purchase": 1}}', "purchase >="),
        ('{"unknown_key": 1}', "unknown_key"),
        ("[1, 2]", "JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_config_is_a_clear_error(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid training config") as error:
        parse_config(raw)
    assert message in str(error.value)


def test_job_arguments_are_validated() -> None:
    good = {
        "tenant_id": "tenant_123",
        "job_id": "job_456",
        "dataset_uri": "s3://data-bucket/datasets/tenant_123/job_456",
        "artifacts_bucket": "artifacts-bucket",
        "version": "lightgcn_v1",
        "jobs_table": "training_jobs",
    }
    assert parse_job_arguments(good).dataset_uri.endswith("job_456/")
    with pytest.raises(ConfigError, match="tenant_id"):
        parse_job_arguments({**good, "tenant_id": "../other"})
    with pytest.raises(ConfigError, match="jobs_table"):
        parse_job_arguments({**good, "jobs_table": None})


def test_time_based_split_holds_out_each_users_latest_events() -> None:
    interactions = make_interactions(50, 40, 600, seed=1)
    data = prepare_data(interactions, make_items(40, 8), TrainingConfig(validation_fraction=0.2))
    assert data.stats["users"] == 50 and data.train.n_users == 50
    assert data.stats["validation_pairs"] > 0
    # every held-out event is not older than any training event of the same user
    table = interactions.to_pydict()
    user_index = {u: i for i, u in enumerate(data.user_ids)}
    item_index = {it: i for i, it in enumerate(data.catalogue.item_ids)}
    latest_train: dict[int, int] = {}
    train_pairs = set(zip(data.train.users.tolist(), data.train.items.tolist(), strict=True))
    for u, it, ts in zip(table["user_id"], table["item_id"], table["timestamp"], strict=True):
        pair = (user_index[u], item_index[it])
        if pair in train_pairs:
            latest_train[pair[0]] = max(latest_train.get(pair[0], 0), int(ts.timestamp()))
    val_pairs = set(zip(data.val_users.tolist(), data.val_items.tolist(), strict=True))
    assert val_pairs
    assert data.data_window["start"] is not None and "last ceil" in str(data.data_window["split_rule"])


def test_is_validation_column_is_used_when_present() -> None:
    interactions = make_interactions(20, 30, 200, seed=2)
    flags = np.zeros(interactions.num_rows, dtype=bool)
    flags[-30:] = True
    data = prepare_data(
        interactions.append_column("is_validation", pa.array(flags)), make_items(30, 8), TrainingConfig()
    )
    assert data.data_window["split_rule"] == "is_validation column"
    assert data.stats["train_pairs"] <= 170


def test_pair_weight_is_strongest_interaction_type() -> None:
    interactions = make_interactions(4, 200, 80, seed=3, affinity=0.0)
    types = ["view"] * 80
    types[0] = "purchase"
    interactions = interactions.set_column(3, "interaction_type", pa.array(types))
    data = prepare_data(interactions, make_items(200, 2), TrainingConfig(validation_fraction=0.3))
    assert set(np.unique(data.train.weights).tolist()) == {1.0, 4.0}
    off = prepare_data(interactions, make_items(200, 2), TrainingConfig(use_interaction_weights=False))
    assert set(np.unique(off.train.weights).tolist()) == {1.0}


def test_recency_half_life_decays_older_events() -> None:
    day = 86_400_000
    decay = recency_decay(np.array([0, 10 * day, 20 * day], dtype=np.int64), 10.0)
    np.testing.assert_allclose(decay, [0.25, 0.5, 1.0])
    assert recency_decay(np.array([0, day], dtype=np.int64), None).tolist() == [1.0, 1.0]
    # every candidate reads the graph's pair weights: the decay is in them
    interactions = make_interactions(10, 40, 300, seed=3)
    plain = prepare_data(interactions, make_items(40, 4), TrainingConfig())
    decayed = prepare_data(interactions, make_items(40, 4), TrainingConfig(recency_half_life_days=3.0))
    assert np.array_equal(plain.train.users, decayed.train.users)
    assert (decayed.train.weights <= plain.train.weights).all()
    assert decayed.train.weights.min() < 0.1 * plain.train.weights.min()


def test_uncatalogued_items_are_dropped_and_unused_items_left_out() -> None:
    interactions = make_interactions(30, 20, 300, seed=4)
    items = make_items(25, 4).slice(2)  # items 0,1 missing from the catalogue; 20..24 never interacted
    data = prepare_data(interactions, items, TrainingConfig())
    assert data.stats["interactions_unknown_item"] > 0
    assert data.stats["items_without_interactions"] >= 5
    assert data.stats["items"] + data.stats["items_without_interactions"] == 23
    assert "item_00000" not in set(data.catalogue.item_ids.tolist())
    assert data.catalogue.titles[0].startswith("Product")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "no interactions"),
        ("one_user", "at least 2 users"),
        ("no_catalogue_match", "no interaction refers to an item"),
        ("only_views", "every interaction is a 'view'"),
        ("no_items", "no items"),
        ("too_short", "not enough history for a validation split"),
        ("bad_type", "unknown interaction_type"),
    ],
)
def test_bad_snapshots_raise_clear_errors(case: str, message: str) -> None:
    interactions = make_interactions(30, 20, 300, seed=5)
    items = make_items(20, 4)
    if case == "empty":
        interactions = interactions.slice(0, 0)
    elif case == "one_user":
        interactions = interactions.set_column(1, "user_id", pa.array(["solo"] * 300))
    elif case == "no_catalogue_match":
        items = items.set_column(0, "item_id", pa.array([f"other_{i}" for i in range(20)]))
    elif case == "only_views":
        interactions = interactions.set_column(3, "interaction_type", pa.array(["view"] * 300))
    elif case == "no_items":
        items = items.slice(0, 0)
    elif case == "too_short":
        interactions = interactions.slice(0, 30)  # one event per user: nothing to hold out
    elif case == "bad_type":
        interactions = interactions.set_column(3, "interaction_type", pa.array(["like"] * 300))
    with pytest.raises(DatasetError, match=message):
        prepare_data(interactions, items, TrainingConfig())


def test_missing_column_is_reported() -> None:
    with pytest.raises(DatasetError, match="lacks required column"):
        prepare_data(
            make_interactions(5, 5, 20).drop_columns(["timestamp"]), make_items(5, 2), TrainingConfig()
        )


def test_user_histories_are_deduplicated_recent_first_and_capped() -> None:
    # user 0: item 2 viewed at t=1 and purchased at t=5, item 1 clicked at t=3; user 1: items 0..3
    users = np.array([0, 0, 0, 1, 1, 1, 1])
    items = np.array([2, 1, 2, 0, 1, 2, 3])
    types = np.array([0, 1, 3, 0, 0, 2, 0], dtype=np.int8)
    times = np.array([1, 3, 5, 1, 2, 3, 4], dtype=np.int64)
    history = user_histories(users, items, types, times, n_users=3, n_items=4, max_items=3)
    assert history.indptr.tolist() == [0, 2, 5, 5]
    assert history.items.tolist() == [2, 1, 3, 2, 1]
    assert history.types.tolist() == [3, 1, 0, 2, 0]


def test_snapshot_history_codes_follow_interaction_types() -> None:
    interactions = make_interactions(10, 30, 120, seed=6)
    data = prepare_data(interactions, make_items(30, 4), TrainingConfig())
    table = interactions.to_pydict()
    first_user = data.user_ids[0]
    strongest: dict[str, int] = {}
    for user, item, kind in zip(table["user_id"], table["item_id"], table["interaction_type"], strict=True):
        if user == first_user:
            code = ["view", "click", "add_to_cart", "purchase"].index(kind)
            strongest[item] = max(strongest.get(item, 0), code)
    start, stop = data.history.indptr[0], data.history.indptr[1]
    got = {
        str(data.catalogue.item_ids[i]): int(t)
        for i, t in zip(data.history.items[start:stop], data.history.types[start:stop], strict=True)
    }
    assert got == {item: code for item, code in strongest.items() if item in got}
    assert len(got) == min(50, len(strongest))
