"""The training window: anchored on the data or on ``as_of``, and said the same way to the trainer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from pydantic import ValidationError

from functions.ingestion.store.uploads import InteractionSpan
from functions.training.config import DatasetOptions, TrainingConfigIn, trainer_config
from functions.training.dataset import (
    WINDOW_METADATA_KEY,
    describe_shortfall,
    resolve_window,
    with_window_metadata,
)
from training_jobs import snapshot

SPAN = InteractionSpan(datetime(2025, 1, 1, 10, tzinfo=UTC), datetime(2025, 3, 31, 18, 30, tzinfo=UTC))


def test_the_default_window_ends_just_after_the_newest_interaction() -> None:
    window = resolve_window(SPAN, window_days=90, as_of=None)

    assert window.end == SPAN.last + timedelta(milliseconds=1)
    assert window.start == window.end - timedelta(days=90)
    assert window.anchor == "newest_interaction"


def test_as_of_sets_the_end_whatever_the_data() -> None:
    as_of = datetime(2026, 12, 2, tzinfo=UTC)

    window = resolve_window(SPAN, window_days=30, as_of=as_of)

    assert (window.start, window.end, window.anchor) == (as_of - timedelta(days=30), as_of, "as_of")


def test_a_short_window_names_its_dates_the_data_span_and_the_fix() -> None:
    window = resolve_window(SPAN, window_days=90, as_of=datetime(2026, 12, 2, tzinfo=UTC))

    message = describe_shortfall("0 interactions", window, SPAN)

    assert message == (
        "0 interactions between 2026-09-03 and 2026-12-02; your data spans 2025-01-01..2025-03-31; "
        "set config.window_days or as_of"
    )


def test_as_of_takes_a_whole_day_or_an_instant_and_never_reaches_the_trainer() -> None:
    day = TrainingConfigIn.model_validate({"as_of": "2025-03-31", "window_days": 60, "epochs": 3})
    instant = DatasetOptions.model_validate({"as_of": "2025-03-31T12:00:00Z", "epochs": 3})

    assert day.as_of == date(2025, 3, 31)
    assert day.window_end() == datetime(2025, 4, 1, tzinfo=UTC)  # the whole day is in
    assert instant.window_end() == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert day.as_overrides() == {"epochs": 3}
    assert day.dataset_options() == {"window_days": 60, "as_of": "2025-03-31"}
    assert trainer_config({"epochs": 3, **day.dataset_options()}) == {"epochs": 3}


@pytest.mark.parametrize("as_of", ["2025-03-31T12:00:00", "1999-12-31", 5, "soon"])
def test_an_as_of_without_a_zone_or_before_2000_is_refused(as_of: object) -> None:
    with pytest.raises(ValidationError):
        TrainingConfigIn.model_validate({"as_of": as_of})


def test_the_trainer_reads_the_window_prepare_wrote() -> None:
    window = resolve_window(SPAN, window_days=90, as_of=None)
    table = with_window_metadata(pa.table({"user_id": ["u1"]}), window)

    assert snapshot.WINDOW_METADATA_KEY == WINDOW_METADATA_KEY
    assert snapshot.snapshot_window(table) == {"window": window.as_dict()}
    assert snapshot.snapshot_window(pa.table({"user_id": ["u1"]})) == {}
