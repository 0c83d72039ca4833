"""Pure statistics for A/B test results: two-proportion z-test, a z-test on means, and the winner rule.

Large-sample (normal) approximations, which fit recommendation traffic (thousands of impressions per
arm); with too little data every function answers "not significant" rather than a misleading number.

- Proportions (CTR, conversion rate): the test statistic uses the pooled standard error
  ``sqrt(p(1-p)(1/n_c + 1/n_t))`` (under H0 both arms share ``p``); the confidence interval of the
  difference uses the unpooled one ``sqrt(p_c(1-p_c)/n_c + p_t(1-p_t)/n_t)`` (Wald).
- Means (revenue per impression): Welch's statistic with normal quantiles, from per-arm sums and
  sums of squares (``var = (Σx² − n·mean²)/(n−1)``).
- Relative lift is ``(treatment − control) / control``; its interval is the difference's interval
  divided by the control value (the control treated as known: a first-order approximation).
- p-values are two-sided. With several treatments each is compared with the control at
  ``alpha / (number of comparisons)`` (Bonferroni), so the chance of a false winner stays ≤ alpha.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control on one metric."""

    control_value: float
    treatment_value: float
    absolute_difference: float
    relative_lift: float | None  # None when the control's value is 0
    ci_low: float | None  # interval of the absolute difference (None without enough data)
    ci_high: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    z: float | None
    p_value: float | None
    confidence_level: float
    significant: bool


def z_critical(alpha: float) -> float:
    """The two-sided normal quantile for ``alpha`` (1.959964 for 0.05)."""
    return _NORMAL.inv_cdf(1.0 - alpha / 2.0)


def two_sided_p_value(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def two_proportion_test(
    control_successes: int,
    control_trials: int,
    treatment_successes: int,
    treatment_trials: int,
    *,
    alpha: float = ALPHA,
) -> Comparison:
    """Compare two proportions (clicks or purchases per impression)."""
    p_c = control_successes / control_trials if control_trials else 0.0
    p_t = treatment_successes / treatment_trials if treatment_trials else 0.0
    consistent = 0 <= control_successes <= control_trials and 0 <= treatment_successes <= treatment_trials
    if control_trials <= 0 or treatment_trials <= 0 or not consistent:
        # No trials, or more successes than trials (purchases attributed without recorded impressions).
        return _comparison(p_c, p_t, None, None, alpha)
    pooled = (control_successes + treatment_successes) / (control_trials + treatment_trials)
    pooled_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control_trials + 1.0 / treatment_trials))
    unpooled_se = math.sqrt(p_c * (1.0 - p_c) / control_trials + p_t * (1.0 - p_t) / treatment_trials)
    return _comparison(p_c, p_t, pooled_se or None, unpooled_se, alpha)


def mean_difference_test(
    control_sum: float,
    control_sum_sq: float,
    control_n: int,
    treatment_sum: float,
    treatment_sum_sq: float,
    treatment_n: int,
    *,
    alpha: float = ALPHA,
) -> Comparison:
    """Compare two means (revenue per impression) from their sums and sums of squares."""
    mean_c = control_sum / control_n if control_n else 0.0
    mean_t = treatment_sum / treatment_n if treatment_n else 0.0
    if control_n < 2 or treatment_n < 2:
        return _comparison(mean_c, mean_t, None, None, alpha)
    var_c = max(0.0, (control_sum_sq - control_n * mean_c * mean_c) / (control_n - 1))
    var_t = max(0.0, (treatment_sum_sq - treatment_n * mean_t * mean_t) / (treatment_n - 1))
    se = math.sqrt(var_c / control_n + var_t / treatment_n)
    return _comparison(mean_c, mean_t, se or None, se, alpha)


def _comparison(
    control: float, treatment: float, test_se: float | None, interval_se: float | None, alpha: float
) -> Comparison:
    difference = treatment - control
    z = difference / test_se if test_se else None
    p_value = two_sided_p_value(z) if z is not None else None
    ci_low = ci_high = None
    if interval_se is not None:
        half_width = z_critical(alpha) * interval_se
        ci_low, ci_high = difference - half_width, difference + half_width
    relative = difference / control if control else None
    relative_low = ci_low / control if control and ci_low is not None else None
    relative_high = ci_high / control if control and ci_high is not None else None
    return Comparison(
        control_value=control,
        treatment_value=treatment,
        absolute_difference=difference,
        relative_lift=relative,
        ci_low=ci_low,
        ci_high=ci_high,
        relative_ci_low=relative_low,
        relative_ci_high=relative_high,
        z=z,
        p_value=p_value,
        confidence_level=1.0 - alpha,
        significant=p_value is not None and p_value < alpha,
    )


def comparison_alpha(variants: int, alpha: float = ALPHA) -> float:
    """The per-comparison alpha when ``variants - 1`` treatments are each compared with the control."""
    return alpha / max(1, variants - 1)


def pick_winner(control_id: str, comparisons: Mapping[str, Comparison]) -> str | None:
    """The winning variant, only when the evidence is significant.

    The treatment with the largest significant improvement over the control wins; the control wins
    when every treatment is significantly worse; otherwise there is no winner (yet).
    """
    better = {vid: c for vid, c in comparisons.items() if c.significant and c.absolute_difference > 0}
    if better:
        return max(better, key=lambda vid: better[vid].absolute_difference)
    if comparisons and all(c.significant and c.absolute_difference < 0 for c in comparisons.values()):
        return control_id
    return None
