"""LASSO's per-element fits on threads (axs.linear): the fitted model does not depend on the number of threads."""

import numpy as np

from axs.linear import LassoRegression

ENERGIES = 0.16 * np.arange(64) + 0.02
ELEMENTS = ("Fe", "Sr", "Zr", "K")


def test_lasso_on_two_threads_fits_exactly_what_one_thread_fits():
    rng = np.random.default_rng(3)
    X = rng.poisson(20.0, size=(40, ENERGIES.size)).astype(np.float64)
    weights = rng.normal(size=(ENERGIES.size, len(ELEMENTS))) * (rng.random((ENERGIES.size, 1)) < 0.1)
    Y = X @ weights + rng.normal(scale=5.0, size=(40, len(ELEMENTS)))
    Y[rng.random(Y.shape) < 0.15] = np.nan                     # each element fits its own rows
    fits = [LassoRegression(ENERGIES, ELEMENTS, seed=1, n_alphas=5, cv_folds=3, n_jobs=n).fit(X, Y)
            for n in (1, 2)]
    assert fits[0].n_jobs == 1 and fits[1].n_jobs == 2
    for one, two in zip(*(f.regressions for f in fits)):
        assert one.alpha_ == two.alpha_
        np.testing.assert_array_equal(one.coef_, two.coef_)
    np.testing.assert_array_equal(fits[0].predict(X), fits[1].predict(X))
    assert np.any(fits[0].predict(X) != fits[0].predict(X)[0])   # not a constant prediction
