"""Per-element prediction intervals by split-conformal regression on the out-of-fold residuals.

The conformity score of a labelled core is its absolute out-of-fold residual
|y - y_hat| (wt%), from the fold model that never saw it (section 4's
cross-validation). For a level ``1 - alpha`` the interval of a new prediction
is ``y_hat +- s``, with ``s`` the ceil((n + 1)(1 - alpha))-th smallest of the
n stored scores of that element (crepes' :class:`~crepes.ConformalRegressor`);
the lower end is cut at 0 (a concentration is not negative). Given
exchangeability of the new core with the training cores, the interval holds
the true concentration with probability at least ``1 - alpha``; the scores are
stored, so any level can be chosen at prediction time.

:func:`axs.evaluation.interval_coverage` checks this on held-out folds: fold j's
intervals are calibrated on the other folds' residuals only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from crepes import ConformalRegressor

#: Interval level when none is given (``axs predict --level``).
DEFAULT_LEVEL = 0.9


def conformity_scores(Y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """|Y - predicted| (n, elements), NaN where the model gives no prediction (LR's inapplicable elements)."""
    return np.abs(np.asarray(Y, dtype=np.float64) - np.asarray(predicted, dtype=np.float64))


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1); ValueError otherwise."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a coverage between 0 and 1 (e.g. 0.9), got {level}")
    return level


def conformal_intervals(predicted: np.ndarray, scores: Sequence[np.ndarray], level: float = DEFAULT_LEVEL
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper), each (n, elements), around ``predicted`` (n, elements) at ``level``.

    ``scores[e]``: the calibration scores of element e (NaNs ignored; none:
    NaN intervals). Too few scores for the level give infinite half-widths
    (crepes' rule), never a narrower interval.
    """
    level = check_level(level)
    predicted = np.asarray(predicted, dtype=np.float64)
    lower = np.full_like(predicted, np.nan)
    upper = np.full_like(predicted, np.nan)
    for e, element_scores in enumerate(scores):
        element_scores = np.asarray(element_scores, dtype=np.float64)
        element_scores = element_scores[np.isfinite(element_scores)]
        if element_scores.size == 0:
            continue
        regressor = ConformalRegressor().fit(residuals=element_scores)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="the no. of calibration examples is too small")
            bounds = regressor.predict_int(predicted[:, e], confidence=level, y_min=0.0)
        lower[:, e], upper[:, e] = bounds[:, 0], bounds[:, 1]
    missing = ~np.isfinite(predicted)
    lower[missing] = upper[missing] = np.nan
    return lower, upper
