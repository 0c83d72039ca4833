"""Retraining schedules spread over the training window (pure: no AWS)."""

from __future__ import annotations

from collections import Counter

import pytest

from functions.common.errors import InvalidInputError
from functions.training.schedule import DEFAULT_WINDOW, TrainingWindow, schedule_expression


def test_tenants_spread_uniformly_over_the_window_and_each_keeps_its_minute() -> None:
    window = TrainingWindow.parse(DEFAULT_WINDOW)  # 01:00-05:00 UTC
    minutes = [window.minute_of(f"tenant_{i:06x}") for i in range(4000)]

    assert window.start == 60 and window.minutes == 240
    assert all(60 <= minute < 300 for minute in minutes)
    per_hour = Counter(minute // 60 for minute in minutes)
    assert sorted(per_hour) == [1, 2, 3, 4]
    assert min(per_hour.values()) > 0.8 * 1000 and max(per_hour.values()) < 1.2 * 1000
    assert max(Counter(minutes).values()) < 40  # no minute takes more than ~2x its share (~17)
    assert window.minute_of("tenant_abc") == window.minute_of("tenant_abc")


def test_cron_names_the_tenants_minute_and_a_window_may_cross_midnight() -> None:
    window = TrainingWindow.parse("23:30-00:30")
    minute = window.minute_of("tenant_x")
    assert minute >= 23 * 60 + 30 or minute < 30
    assert window.cron("tenant_x") == f"cron({minute % 60} {minute // 60} * * ? *)"


@pytest.mark.parametrize("text", ["1:00-5:00", "01:00-01:00", "25:00-02:00", "01:00"])
def test_a_malformed_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="training window"):
        TrainingWindow.parse(text)


def test_a_tenants_own_schedule_wins_and_is_validated() -> None:
    assert schedule_expression({"training_schedule": "cron(30 4 * * ? *)"}, "t1") == "cron(30 4 * * ? *)"
    assert schedule_expression({}, "t1") == TrainingWindow.parse(DEFAULT_WINDOW).cron("t1")
    with pytest.raises(InvalidInputError, match="training_schedule"):
        schedule_expression({"training_schedule": "every day"}, "t1")
