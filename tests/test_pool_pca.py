"""The semi-supervised baseline without a decoder (axs.pool_pca): PCA learned from the pool, then LASSO."""

import numpy as np
import pytest

from axs.models import load_model, make_model, uses_unlabelled

ENERGIES = 0.16 * np.arange(64) + 0.5
ELEMENTS = ("Fe", "Zr")


def spectra(n, rng):
    """Spectra made of two line shapes with random amounts (the concentrations) plus Poisson-like noise."""
    channels = np.arange(ENERGIES.size)
    lines = np.stack([np.exp(-0.5 * ((channels - 20) / 1.5) ** 2), np.exp(-0.5 * ((channels - 45) / 1.5) ** 2)])
    amounts = rng.uniform(1.0, 10.0, size=(n, 2))
    X = 50.0 + amounts @ lines * 100.0 + rng.normal(0.0, 3.0, size=(n, ENERGIES.size))
    return X, amounts


def test_the_pool_sets_the_components_and_the_lasso_learns_from_their_scores(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = spectra(12, rng)
    pool, _ = spectra(300, rng)
    X_test, Y_test = spectra(50, rng)
    model = make_model("pca_lasso", energies_kev=ENERGIES, elements=ELEMENTS, n_components=4, cv_folds=3,
                       n_alphas=5).fit(X, Y, X_unlabelled=pool)
    assert model.components[-1].n_samples_ == 12 + 300
    assert model.name == "pca_lasso" and uses_unlabelled("pca_lasso_scatter")
    predicted = model.predict(X_test)
    # the two line amounts span the top components: the fit recovers them far better than the mean would
    assert np.mean((predicted - Y_test) ** 2) < 0.05 * np.mean((Y_test - Y.mean(axis=0)) ** 2)
    alone = make_model("pca_lasso", energies_kev=ENERGIES, elements=ELEMENTS, n_components=40).fit(X, Y)
    assert alone.components[-1].n_components_ == 11            # at most one fewer than the spectra
    model.save(tmp_path / "m.skops")
    np.testing.assert_array_equal(load_model(tmp_path / "m.skops").predict(X_test), predicted)


def test_pca_lasso_scatter_normalises_and_bad_settings_are_named():
    rng = np.random.default_rng(1)
    X, Y = spectra(10, rng)
    assert make_model("pca_lasso_scatter", energies_kev=ENERGIES, elements=ELEMENTS).name == "pca_lasso_scatter"
    with pytest.raises(ValueError, match="n_components"):
        make_model("pca_lasso", energies_kev=ENERGIES, elements=ELEMENTS, n_components=0)
