"""Conformal prediction intervals: the quantile rule, and coverage on held-out folds."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.evaluation import interval_coverage
from axs.intervals import conformal_intervals, conformity_scores


def test_half_width_is_the_conformal_quantile_of_the_scores():
    scores = np.arange(1.0, 100.0)             # 99 calibration scores
    lower, upper = conformal_intervals(np.array([[200.0], [50.0]]), [scores], level=0.75)
    # ceil((99 + 1) * 0.75) = 75th smallest score (0.75: no rounding in crepes' (1 - level) * (n + 1))
    assert_allclose(upper[:, 0], [275.0, 125.0])
    assert_allclose(lower[:, 0], [125.0, 0.0])   # cut at zero: no negative concentration


def test_missing_predictions_and_too_few_scores():
    lower, upper = conformal_intervals(np.array([[1.0, np.nan, 1.0]]),
                                       [np.array([0.1, 0.2]), np.array([0.1]), np.array([])], level=0.9)
    assert np.isinf(upper[0, 0])                # 2 scores cannot give 90 %: the interval is unbounded
    assert np.isnan(lower[0, 1]) and np.isnan(upper[0, 2])


def test_bad_level_is_refused():
    with pytest.raises(ValueError, match="level: expected a coverage between 0 and 1"):
        conformal_intervals(np.ones((1, 1)), [np.ones(10)], level=90)


@pytest.mark.parametrize("level", [0.5, 0.9])
def test_held_out_coverage_is_close_to_the_level(level):
    rng = np.random.default_rng(1)
    n = 3000
    truth = rng.uniform(5, 10, (n, 3))
    predicted = truth + rng.normal(0, [0.1, 1.0, 0.5], (n, 3)) * rng.uniform(0.5, 1.5, (n, 1))
    predicted[:, 2] = np.nan                     # an element the model does not predict
    table = interval_coverage(truth, predicted, np.arange(n) % 10, ["Fe", "Zn", "Li"], "lasso", level)
    assert list(table.columns) == ["element", "model", "level", "spectra", "coverage"]
    assert list(table["element"]) == ["Fe", "Zn", "Li"] and set(table["model"]) == {"lasso"}
    assert_allclose(table["coverage"][:2], level, atol=0.03)
    assert np.isnan(table["coverage"][2])


def test_scores_are_absolute_residuals():
    assert_allclose(conformity_scores([[1.0, 2.0]], [[1.5, 1.0]]), [[0.5, 1.0]])
