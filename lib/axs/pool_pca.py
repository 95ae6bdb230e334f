"""A semi-supervised baseline without a decoder: principal components of the unlabelled pool, then LASSO.

The label-efficiency study asks whether AXS's decoder turns unlabelled spectra into better predictions.
The plainest way to use a pool without any physics: learn the directions in which spectra vary from the
pool (standardised channels, then PCA, both fitted on the labelled and unlabelled spectra together) and
fit the paper's LASSO (:class:`axs.linear.LassoRegression`, its penalty chosen per element by inner CV) on
the labelled spectra's component scores. Without a pool it is PCA then LASSO on the labelled spectra alone,
so the pool's effect on it is measured the same way as on AXS.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from axs.linear import LassoRegression
from axs.normalisation import model_name, model_spectra


class PoolPCALasso(LassoRegression):
    """PCA (``n_components``, at most one fewer than the spectra it is fitted on) of the labelled plus unlabelled
    spectra, then per-element LASSO on the labelled spectra's scores; ``fit(X, Y, X_unlabelled=...)``."""

    def __init__(self, energies_kev, elements, seed: int = 0, *, n_components: int = 20, **lasso):
        super().__init__(energies_kev, elements, seed, **lasso)
        if int(n_components) < 1:
            raise ValueError(f"n_components: expected a positive integer, got {n_components}")
        self.hyperparameters["n_components"] = int(n_components)
        self.name = model_name("pca_lasso", self.hyperparameters["normalisation"])
        self.components = None

    def _spectra(self, X, name: str = "X") -> np.ndarray:
        """(n, channels) float64: X's measurements ((n, channels) or (n, m, channels)) normalised, then combined
        per sample, as every model reads them (axs.normalisation.model_spectra)."""
        return model_spectra(X, self.energies_kev, self.hyperparameters["normalisation"],
                             getattr(self, "normalisation_state", None) or {}, name).astype(np.float64)

    def fit(self, X, Y, X_unlabelled=None, verbose=0):
        spectra = self._spectra(X)
        if X_unlabelled is not None:
            spectra = np.concatenate([spectra, self._spectra(X_unlabelled, "X_unlabelled")])
        n = min(self.hyperparameters["n_components"], len(spectra) - 1, spectra.shape[1])
        self.components = make_pipeline(StandardScaler(), PCA(n, random_state=self.seed)).fit(spectra)
        return super().fit(X, Y, None, verbose)     # LASSO on the labelled spectra's scores (self._input)

    def _input(self, X) -> np.ndarray:
        return self.components.transform(self._spectra(X))
