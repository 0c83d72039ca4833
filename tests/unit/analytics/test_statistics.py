"""The A/B statistics against numbers worked out by hand (the arithmetic is in each test's comment)."""

from __future__ import annotations

import pytest

from functions.analytics.statistics import (
    Comparison,
    comparison_alpha,
    mean_difference_test,
    pick_winner,
    two_proportion_test,
    two_sided_p_value,
    z_critical,
)


def test_normal_quantile_and_p_value() -> None:
    assert z_critical(0.05) == pytest.approx(1.959964, abs=1e-6)
    # 2 * (1 - Phi(1)) = 2 * 0.158655 = 0.317311; 2 * (1 - Phi(1.959964)) = 0.05
    assert two_sided_p_value(1.0) == pytest.approx(0.317311, abs=1e-6)
    assert two_sided_p_value(-1.959964) == pytest.approx(0.05, abs=1e-6)


def test_two_proportion_test_significant_lift() -> None:
    # control 100/1000 = 0.10, treatment 130/1000 = 0.13, difference 0.03, relative lift 0.03/0.10 = 0.30
    # pooled p = 230/2000 = 0.115
    # SE0 = sqrt(0.115 * 0.885 * (1/1000 + 1/1000)) = sqrt(0.00020355) = 0.0142671
    # z = 0.03 / 0.0142671 = 2.10274; p = 2 * (1 - Phi(2.10274)) = 2 * 0.017744 = 0.03549
    # unpooled SE = sqrt(0.1*0.9/1000 + 0.13*0.87/1000) = sqrt(0.0002031) = 0.0142513
    # 95 % CI = 0.03 -/+ 1.959964 * 0.0142513 = 0.03 -/+ 0.027932 = [0.002068, 0.057932]
    result = two_proportion_test(100, 1000, 130, 1000)
    assert result.control_value == pytest.approx(0.10)
    assert result.treatment_value == pytest.approx(0.13)
    assert result.absolute_difference == pytest.approx(0.03)
    assert result.relative_lift == pytest.approx(0.30)
    assert result.z == pytest.approx(2.10274, abs=1e-4)
    assert result.p_value == pytest.approx(0.03549, abs=1e-4)
    assert result.ci_low == pytest.approx(0.002068, abs=1e-5)
    assert result.ci_high == pytest.approx(0.057932, abs=1e-5)
    # relative interval = absolute interval / 0.10
    assert result.relative_ci_low == pytest.approx(0.02068, abs=1e-4)
    assert result.relative_ci_high == pytest.approx(0.57932, abs=1e-4)
    assert result.confidence_level == pytest.approx(0.95)
    assert result.significant


def test_two_proportion_test_not_significant() -> None:
    # 100/1000 vs 110/1000: pooled 0.105, SE0 = sqrt(0.105 * 0.895 * 0.002) = sqrt(0.00018795) = 0.0137095
    # z = 0.01 / 0.0137095 = 0.72942; p = 2 * (1 - Phi(0.72942)) = 2 * 0.23287 = 0.4658
    result = two_proportion_test(100, 1000, 110, 1000)
    assert result.z == pytest.approx(0.72942, abs=1e-4)
    assert result.p_value == pytest.approx(0.4658, abs=1e-3)
    assert result.ci_low is not None and result.ci_low < 0 < (result.ci_high or 0)
    assert not result.significant


@pytest.mark.parametrize(
    ("control", "treatment"),
    [((0, 0), (0, 0)), ((0, 0), (5, 100)), ((0, 100), (0, 100)), ((3, 2), (1, 10))],
    ids=["no-data", "empty-control", "no-successes", "more-successes-than-trials"],
)
def test_two_proportion_test_without_enough_data_is_never_significant(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    result = two_proportion_test(*control, *treatment)
    assert result.p_value is None and result.z is None
    assert not result.significant


def test_mean_difference_test_from_sums() -> None:
    # control revenue per impression [0, 0, 10, 10]: sum 20, sum of squares 200, mean 5,
    #   variance (200 - 4 * 5^2) / 3 = 33.333
    # treatment [0, 10, 10, 20]: sum 40, sum of squares 600, mean 10, variance (600 - 4 * 10^2) / 3 = 66.667
    # SE = sqrt(33.333/4 + 66.667/4) = sqrt(25) = 5; z = (10 - 5) / 5 = 1; p = 0.317311
    # 95 % CI = 5 -/+ 1.959964 * 5 = [-4.79982, 14.79982]; relative lift 5 / 5 = 1.0
    result = mean_difference_test(20, 200, 4, 40, 600, 4)
    assert result.control_value == pytest.approx(5.0)
    assert result.treatment_value == pytest.approx(10.0)
    assert result.z == pytest.approx(1.0)
    assert result.p_value == pytest.approx(0.317311, abs=1e-6)
    assert result.ci_low == pytest.approx(-4.79982, abs=1e-5)
    assert result.ci_high == pytest.approx(14.79982, abs=1e-5)
    assert result.relative_lift == pytest.approx(1.0)
    assert not result.significant


def test_bonferroni_alpha() -> None:
    # three variants: two comparisons with the control, each at 0.05 / 2
    assert comparison_alpha(2) == pytest.approx(0.05)
    assert comparison_alpha(3) == pytest.approx(0.025)
    assert two_proportion_test(100, 1000, 130, 1000, alpha=0.025).confidence_level == pytest.approx(0.975)
    # p = 0.0355 is significant at 0.05 but not at 0.025
    assert not two_proportion_test(100, 1000, 130, 1000, alpha=0.025).significant


def _comparison(difference: float, significant: bool) -> Comparison:
    return Comparison(
        0.1, 0.1 + difference, difference, None, None, None, None, None, None, 0.01, 0.95, significant
    )


def test_winner_only_when_significant() -> None:
    assert pick_winner("control", {"treatment": _comparison(0.03, True)}) == "treatment"
    assert pick_winner("control", {"treatment": _comparison(0.03, False)}) is None
    assert pick_winner("control", {"treatment": _comparison(-0.03, True)}) == "control"
    # several treatments: the biggest significant improvement wins; control only if all are worse
    many = {"a": _comparison(0.02, True), "b": _comparison(0.05, True), "c": _comparison(0.09, False)}
    assert pick_winner("control", many) == "b"
    assert pick_winner("control", {"a": _comparison(-0.02, True), "b": _comparison(-0.01, False)}) is None
