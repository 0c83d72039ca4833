"""The seeded sample-data generator: the walkthrough's file formats, and structure a model can learn."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedrec_local.sample_data import (
    DEFAULT_END,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    SampleDataSummary,
    generate_sample_data,
)

CATEGORIES = {
    "Smartphones",
    "Laptops",
    "Tablets",
    "Audio",
    "Wearables",
    "Cameras",
    "Gaming",
    "Accessories",
    "Smart Home",
    "Monitors",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class Generated:
    summary: SampleDataSummary
    items: list[dict[str, str]]
    interactions: list[dict[str, str]]
    users: list[dict[str, str]]


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _generate(directory: Path, **kwargs: Any) -> Generated:
    summary = generate_sample_data(directory, **kwargs)
    return Generated(
        summary=summary,
        items=_read(summary.items_path)[1],
        interactions=_read(summary.interactions_path)[1],
        users=_read(summary.users_path)[1],
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("small"), users=60, items=80, interactions=1_500, seed=7)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """Large enough for the statistics below to be stable, small enough to take about a second."""
    return _generate(tmp_path_factory.mktemp("medium"), users=2_000, items=800, interactions=80_000, seed=11)


# --- format ------------------------------------------------------------------------------------------


def test_files_have_the_walkthrough_headers(small: Generated) -> None:
    # Given the generated files, when reading their first lines, then the columns are the seed's, in order.
    summary = small.summary
    assert summary.items_path.read_text(encoding="utf-8").splitlines()[0] == (
        "item_id,title,category,price,brand,description"
    )
    assert summary.interactions_path.read_text(encoding="utf-8").splitlines()[0] == (
        "user_id,item_id,interaction_type,timestamp,rating"
    )
    assert _read(summary.users_path)[0] == list(USER_COLUMNS)
    assert tuple(_read(summary.items_path)[0]) == ITEM_COLUMNS
    assert tuple(_read(summary.interactions_path)[0]) == INTERACTION_COLUMNS
    assert {p.name for p in summary.output_dir.iterdir()} == {"items.csv", "interactions.csv", "users.csv"}


def test_counts_match_the_request_and_the_summary(small: Generated) -> None:
    assert len(small.items) == small.summary.n_items == 80
    assert len(small.users) == small.summary.n_users == 60
    assert len(small.interactions) == small.summary.n_interactions == 1_500
    assert sum(small.summary.interaction_type_counts.values()) == 1_500
    assert Counter(r["interaction_type"] for r in small.interactions) == small.summary.interaction_type_counts


def test_ids_are_zero_padded_sequences_and_interactions_reference_them(small: Generated) -> None:
    assert [r["item_id"] for r in small.items] == [f"item_{i:04d}" for i in range(1, 81)]
    assert [r["user_id"] for r in small.users] == [f"user_{i:04d}" for i in range(1, 61)]
    assert {r["item_id"] for r in small.interactions} <= {r["item_id"] for r in small.items}
    # interactions >= users: every user shows up at least once
    assert {r["user_id"] for r in small.interactions} == {r["user_id"] for r in small.users}


def test_ids_widen_past_four_digits(tmp_path: Path) -> None:
    data = _generate(tmp_path, users=3, items=10_001, interactions=5)
    assert data.items[0]["item_id"] == "item_0001"
    assert data.items[-1]["item_id"] == "item_10001"
    assert len({r["item_id"] for r in data.items}) == 10_001


def test_items_form_a_plausible_electronics_catalogue(medium: Generated) -> None:
    items = medium.items
    assert {r["category"] for r in items} == CATEGORIES
    for row in items:
        assert re.fullmatch(r"\d+\.\d{2}", row["price"]), row
        assert 0 < float(row["price"]) < 10_000
        assert row["title"].strip() and row["brand"] and row["description"].strip()
        assert row["title"].startswith(row["brand"]) or row["brand"] in {"Apple", "Google"}, row
    titles = [r["title"] for r in items]
    assert len(set(titles)) / len(titles) >= 0.98
    brands = {r["brand"] for r in items}
    assert {"Apple", "Samsung", "Sony", "Dell", "Lenovo", "Logitech"} <= brands

    def median_price(category: str) -> float:
        return float(np.median([float(r["price"]) for r in items if r["category"] == category]))

    assert median_price("Accessories") < 100 < 800 < median_price("Laptops")
    apple_phones = [r for r in items if r["brand"] == "Apple" and r["category"] == "Smartphones"]
    assert apple_phones and all("iPhone" in r["title"] for r in apple_phones)


def test_interactions_hold_valid_types_timestamps_and_ratings(small: Generated) -> None:
    summary = small.summary
    assert summary.window_end == DEFAULT_END
    assert summary.window_start == DEFAULT_END - timedelta(days=90)
    for row in small.interactions:
        assert row["interaction_type"] in {"view", "click", "purchase"}
        assert TIMESTAMP.match(row["timestamp"]), row
        moment = datetime.strptime(row["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert summary.window_start <= moment < summary.window_end
        if row["rating"]:
            assert row["interaction_type"] == "purchase"
            assert 1.0 <= float(row["rating"]) <= 5.0
    stamps = [r["timestamp"] for r in small.interactions]
    assert stamps == sorted(stamps)  # an event log, oldest first


def test_some_but_not_all_purchases_are_rated(medium: Generated) -> None:
    purchases = [r for r in medium.interactions if r["interaction_type"] == "purchase"]
    rated = [r for r in purchases if r["rating"]]
    assert 0.2 < len(rated) / len(purchases) < 0.7
    assert Counter(r["rating"] for r in rated).most_common(1)[0][0] in {"4.0", "5.0"}


def test_users_file_is_plausible(medium: Generated) -> None:
    first_seen: dict[str, str] = {}
    for row in medium.interactions:
        first_seen.setdefault(row["user_id"], row["timestamp"][:10])
    for row in medium.users:
        assert re.fullmatch(r"[A-Z]{2}", row["country"])
        assert row["segment"]
        assert row["signup_date"] <= first_seen[row["user_id"]]
    assert len({r["segment"] for r in medium.users}) >= 8


def test_add_to_cart_is_optional_and_sits_between_click_and_purchase(tmp_path: Path) -> None:
    data = _generate(tmp_path, users=200, items=150, interactions=6_000, include_add_to_cart=True)
    types = Counter(r["interaction_type"] for r in data.interactions)
    assert types["click"] > types["add_to_cart"] > types["purchase"] > 0
    carted: set[tuple[str, str]] = set()
    for row in data.interactions:
        key = (row["user_id"], row["item_id"])
        if row["interaction_type"] == "add_to_cart":
            carted.add(key)
        elif row["interaction_type"] == "purchase":
            assert key in carted


# --- arguments ------------------------------------------------------------------------------------------


def test_end_sets_the_window_and_naive_datetimes_are_utc(tmp_path: Path) -> None:
    aware = generate_sample_data(
        tmp_path / "a",
        users=5,
        items=5,
        interactions=50,
        days=3,
        end=datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    assert aware.window_end == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert aware.window_start == datetime(2025, 2, 26, 10, 0, tzinfo=UTC)
    stamps = [r["timestamp"] for r in _read(aware.interactions_path)[1]]
    assert "2025-02-26T10:00:00Z" <= min(stamps) and max(stamps) < "2025-03-01T10:00:00Z"
    naive = generate_sample_data(tmp_path / "n", users=5, items=5, interactions=50, end=datetime(2025, 3, 1))
    assert naive.window_end == datetime(2025, 3, 1, tzinfo=UTC)


def test_more_users_than_interactions_gives_distinct_users_one_each(tmp_path: Path) -> None:
    data = _generate(tmp_path, users=50, items=20, interactions=10)
    assert len(data.users) == 50
    assert len(data.interactions) == 10
    assert len({r["user_id"] for r in data.interactions}) == 10


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"users": 0}, "users must be at least 1"),
        ({"items": -3}, "items must be at least 1"),
        ({"interactions": 0}, "interactions must be at least 1"),
        ({"days": 0}, "days must be at least 1"),
        ({"interactions": 2.5}, "interactions must be an integer"),
        ({"users": True}, "users must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_sample_data(tmp_path, **given)
    assert not (tmp_path / "interactions.csv").exists()


# --- reproducibility ------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_sample_data(tmp_path / "a", users=120, items=90, interactions=3_000, seed=5)
    second = generate_sample_data(tmp_path / "b", users=120, items=90, interactions=3_000, seed=5)
    for name in ("items.csv", "interactions.csv", "users.csv"):
        assert (first.output_dir / name).read_bytes() == (second.output_dir / name).read_bytes(), name


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    first = generate_sample_data(tmp_path / "a", users=120, items=90, interactions=3_000, seed=5)
    other = generate_sample_data(tmp_path / "b", users=120, items=90, interactions=3_000, seed=6)
    for name in ("items.csv", "interactions.csv", "users.csv"):
        assert (first.output_dir / name).read_bytes() != (other.output_dir / name).read_bytes(), name


# --- behaviour: funnel, skew ------------------------------------------------------------------------------


def test_funnel_narrows_from_views_to_clicks_to_purchases(medium: Generated) -> None:
    types = Counter(r["interaction_type"] for r in medium.interactions)
    assert types["view"] > 3 * types["click"] > 0
    assert types["click"] > 3 * types["purchase"] > 0
    # A purchase follows a view or click of the same item by the same user.
    looked_at: set[tuple[str, str]] = set()
    preceded = purchases = 0
    for row in medium.interactions:
        key = (row["user_id"], row["item_id"])
        if row["interaction_type"] == "purchase":
            purchases += 1
            preceded += key in looked_at
        else:
            looked_at.add(key)
    assert preceded / purchases > 0.95


def test_item_popularity_is_skewed(medium: Generated) -> None:
    counts = Counter(r["item_id"] for r in medium.interactions)
    ordered = sorted([counts.get(r["item_id"], 0) for r in medium.items], reverse=True)
    top_decile = sum(ordered[: len(ordered) // 10]) / sum(ordered)
    assert top_decile > 0.35  # uniform popularity would give 0.10
    assert ordered[-len(ordered) // 2] < ordered[len(ordered) // 100] / 5


def test_user_activity_is_skewed(medium: Generated) -> None:
    counts = sorted(Counter(r["user_id"] for r in medium.interactions).values(), reverse=True)
    assert min(counts) >= 1
    assert sum(counts[: len(counts) // 10]) / sum(counts) > 0.25
    assert counts[0] > 5 * float(np.median(counts))


# --- behaviour: learnable structure ---------------------------------------------------------------------


def _category_matrix(data: Generated, item_order: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Interactions per (user, category); ``item_order`` replaces each interaction's item (for shuffling)."""
    category_of = {r["item_id"]: r["category"] for r in data.items}
    categories = sorted(CATEGORIES)
    user_index = {r["user_id"]: k for k, r in enumerate(data.users)}
    matrix = np.zeros((len(data.users), len(categories)))
    items = item_order or [r["item_id"] for r in data.interactions]
    for row, item in zip(data.interactions, items, strict=True):
        matrix[user_index[row["user_id"]], categories.index(category_of[item])] += 1
    return matrix, categories


def test_users_concentrate_on_few_categories_far_above_chance(medium: Generated) -> None:
    # Given each user's interactions per category, and the same with items shuffled across all rows
    observed, _ = _category_matrix(medium)
    shuffled_items = [r["item_id"] for r in medium.interactions]
    random.Random(0).shuffle(shuffled_items)
    shuffled, _ = _category_matrix(medium, shuffled_items)
    active = observed.sum(axis=1) >= 10

    # When measuring the share of a user's interactions in their favourite category
    def concentration(matrix: np.ndarray) -> float:
        return float((matrix[active].max(axis=1) / matrix[active].sum(axis=1)).mean())

    # Then real users are clearly more focused than the shuffled baseline
    assert concentration(observed) > concentration(shuffled) + 0.1


def test_segments_have_distinct_category_profiles(medium: Generated) -> None:
    observed, _ = _category_matrix(medium)
    overall = observed.sum(axis=0) / observed.sum()
    segments = np.array([r["segment"] for r in medium.users])

    def mean_distance(labels: np.ndarray) -> float:
        distances = []
        for segment in set(labels.tolist()):
            profile = observed[labels == segment].sum(axis=0)
            if profile.sum():
                distances.append(0.5 * np.abs(profile / profile.sum() - overall).sum())
        return float(np.mean(distances))

    shuffled = np.random.default_rng(0).permutation(segments)
    assert mean_distance(segments) > 3 * mean_distance(shuffled)


def test_item_similarity_beats_popularity_on_a_time_based_holdout(medium: Generated) -> None:
    # Given the first 80% of the event log for training and the rest for testing
    item_index = {r["item_id"]: k for k, r in enumerate(medium.items)}
    user_index = {r["user_id"]: k for k, r in enumerate(medium.users)}
    users = np.array([user_index[r["user_id"]] for r in medium.interactions])
    items = np.array([item_index[r["item_id"]] for r in medium.interactions])
    split = int(len(users) * 0.8)
    train = np.zeros((len(user_index), len(item_index)))
    train[users[:split], items[:split]] = 1.0
    test = np.zeros_like(train, dtype=bool)
    test[users[split:], items[split:]] = True
    test &= train == 0
    evaluated = np.flatnonzero((train.sum(axis=1) > 0) & test.any(axis=1))
    assert len(evaluated) > 300

    def hit_rate(scores: np.ndarray, k: int = 10) -> float:
        scores = np.where(train[evaluated] > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return float(np.take_along_axis(test[evaluated], top, axis=1).any(axis=1).mean())

    # When ranking by global popularity and by item-item cosine similarity (a minimal collaborative model)
    popularity = hit_rate(np.tile(train.sum(axis=0), (len(evaluated), 1)))
    norms = np.sqrt(train.sum(axis=0)) + 1e-9
    similarity = (train.T @ train) / np.outer(norms, norms)
    np.fill_diagonal(similarity, 0.0)
    collaborative = hit_rate(train[evaluated] @ similarity)

    # Then the collaborative model wins clearly: the data has structure beyond popularity
    assert popularity > 0.1
    assert collaborative > 1.15 * popularity


def test_device_buyers_turn_to_accessories_that_fit_their_device(medium: Generated) -> None:
    # Given accessories titled "... for <device> <variant>" and devices titled "[<brand>] <device> <variants>"
    titles = {r["item_id"]: r["title"] for r in medium.items}
    fit_labels = {
        item: title.split(" for ", 1)[1].rsplit(" ", 1)[0] + " "
        for item, title in titles.items()
        if " for " in title
    }

    def fits(accessory: str, device: str) -> bool:
        title = titles[device]
        return title.startswith(fit_labels[accessory]) or title.split(" ", 1)[1].startswith(
            fit_labels[accessory]
        )

    devices = {r["item_id"] for r in medium.items if r["category"] in {"Smartphones", "Tablets", "Wearables"}}
    fitting = {d: {a for a in fit_labels if fits(a, d)} for d in devices}
    fitting = {d: accessories for d, accessories in fitting.items() if accessories}

    # When looking at what each buyer of such a device touched after buying it
    history: dict[str, list[str]] = defaultdict(list)  # per user, items in time order
    purchases: list[tuple[str, str, int]] = []  # user, device, position in the user's history
    for row in medium.interactions:
        user, item = row["user_id"], row["item_id"]
        if row["interaction_type"] == "purchase" and item in fitting:
            purchases.append((user, item, len(history[user])))
        history[user].append(item)
    assert len(purchases) > 100
    hit = np.mean([bool(set(history[u][start:]) & fitting[d]) for u, d, start in purchases])

    # Then far more of them touch a fitting accessory than random customers do in their whole history
    rng = random.Random(0)
    customers = sorted(history)
    baseline = np.mean(
        [bool(set(history[rng.choice(customers)]) & fitting[d]) for _, d, _ in purchases for _ in range(5)]
    )
    assert hit > 2 * baseline
