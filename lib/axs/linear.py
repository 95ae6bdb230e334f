"""The paper's linear baselines (sections 3.1 and 3.2), one scikit-learn model per element.

* **LR**: simple linear regression from the count rate in the channel of the
  element's K-L3 (K-alpha1) line to its concentration.
* **LASSO**: L1-penalised linear regression from the whole (standardised)
  spectrum to each element's (standardised) concentration.

Both take a ``normalisation`` (:mod:`axs.normalisation`) applied to every
measurement before anything else, in ``fit`` and in ``predict``
(:func:`axs.normalisation.model_spectra`: X is (n, channels) or (n, m,
channels), m measurements per sample); its state is fitted in ``fit`` on the
training spectra and saved with the model (``normalisation_state``). Each
element is fitted on the rows where its concentration is known (NaN cells of
Y left out).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoCV, LinearRegression
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from axs.lines import line_energy_kev
from axs.arrays import check_targets
from axs.model_files import save_skops
from axs.normalisation import check_normalisation, fit_normalisation, model_name, model_spectra


def _reject_unlabelled(name: str, X_unlabelled) -> None:
    if X_unlabelled is not None:
        raise ValueError(f"X_unlabelled: {name} learns from labelled spectra only; only models with a decoder (axs.model_registry) use unlabelled ones")


class SkopsSaved:
    """``save(path)`` for scikit-learn based models: the fitted object as a skops archive (no pickle), read back
    by :func:`axs.models.load_model` trusting only the types of :data:`axs.model_files.TRUSTED_TYPES`.
    Also the geometry normalisation both linear models share: fitted on the training spectra, kept in
    ``normalisation_state`` (a dict of floats, saved with the model)."""

    normalisation_state: dict = {}

    def save(self, path) -> None:
        save_skops(self, path)

    def _fit_normalisation(self, X) -> None:
        self.normalisation_state = fit_normalisation(X, self.energies_kev, self.hyperparameters["normalisation"])

    def _input(self, X) -> np.ndarray:
        """(n, channels) float64: X's measurements normalised, then combined per sample."""
        return model_spectra(X, self.energies_kev, self.hyperparameters["normalisation"],
                             self.normalisation_state).astype(np.float64)


class LineRegression(SkopsSaved):
    """LR: per element, y = w x + c with x the counts/s in the channel nearest the element's K-L3 line.

    Applicable only where the packaged transition table has a K-L3 line
    between ``min_line_energy_kev`` (below ~1 keV air and the detector window
    absorb nearly all of it) and the last channel; otherwise (Li, Be: no K-L3 in
    xraylib; Hf, Pb, Re, Ta, Th, Tl, U, W...: K-L3 above the spectrum) the
    element is not applicable and its predictions are NaN, as the paper leaves
    LR's cells blank. ``half_window_channels`` > 0 sums that many channels either side.
    """

    def __init__(self, energies_kev, elements, seed: int = 0, *, min_line_energy_kev: float = 1.0,
                 half_window_channels: int = 0, normalisation: str = "none"):
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.seed = seed
        self.hyperparameters = {"min_line_energy_kev": float(min_line_energy_kev),
                                "half_window_channels": int(half_window_channels),
                                "normalisation": check_normalisation(normalisation)}
        self.name = model_name("lr", normalisation)
        energies = np.array([line_energy_kev(e, "KL3") for e in self.elements])
        self.line_energy_kev = dict(zip(self.elements, energies.tolist()))
        usable = (np.isfinite(energies) & (energies >= min_line_energy_kev) & (energies <= self.energies_kev.max()))
        self.applicable = dict(zip(self.elements, usable.tolist()))
        self.line_channel = {e: int(np.argmin(np.abs(self.energies_kev - energy)))
                             for e, energy, ok in zip(self.elements, energies, usable) if ok}
        self.regressions: dict[str, LinearRegression] = {}

    def line_counts(self, X) -> np.ndarray:
        """(n, elements) counts/s (after the normalisation) at each applicable element's K-L3 channel
        (NaN columns where not applicable)."""
        X = self._input(X)
        w = self.hyperparameters["half_window_channels"]
        counts = np.full((X.shape[0], len(self.elements)), np.nan)
        for j, element in enumerate(self.elements):
            if element in self.line_channel:
                c = self.line_channel[element]
                counts[:, j] = X[:, max(c - w, 0): c + w + 1].sum(axis=1)
        return counts

    def fit(self, X, Y, X_unlabelled=None, verbose=0):
        _reject_unlabelled(self.name, X_unlabelled)
        self._fit_normalisation(X)
        counts = self.line_counts(X)
        Y = check_targets(Y, counts.shape[0], len(self.elements), allow_missing=True)
        known = ~np.isnan(Y)
        self.regressions = {e: LinearRegression().fit(counts[known[:, j]][:, [j]], Y[known[:, j], j])
                            for j, e in enumerate(self.elements) if self.applicable[e]}
        return self

    def predict(self, X) -> np.ndarray:
        counts = self.line_counts(X)
        out = np.full(counts.shape, np.nan)
        for j, element in enumerate(self.elements):
            if element in self.regressions:
                out[:, j] = self.regressions[element].predict(counts[:, [j]])
        return out


class LassoRegression(SkopsSaved):
    """LASSO: per element, scikit-learn Lasso on the standardised spectrum to the standardised concentration.

    ``alpha`` None picks each element's penalty by ``cv_folds``-fold (seeded)
    cross-validation inside the training data (LassoCV over ``n_alphas``
    values from alpha_max down to ``eps`` x alpha_max; below 1e-2 x alpha_max
    coordinate descent slows down a lot on 1024 collinear channels for no gain
    on held-out error); a number fixes it for all elements.

    The elements are independent fits, so they run on ``n_jobs`` threads
    (None: every core this process may use; scikit-learn's coordinate descent
    releases the GIL). Each element's fit is the same computation whatever the
    number of threads, so the fitted model does not depend on ``n_jobs`` (a
    setting of the machine, not a hyperparameter).
    """

    def __init__(self, energies_kev, elements, seed: int = 0, *, alpha: float | None = None, n_alphas: int = 30,
                 eps: float = 1e-2, cv_folds: int = 5, max_iter: int = 5000, normalisation: str = "none",
                 n_jobs: int | None = None):
        self.n_jobs = len(os.sched_getaffinity(0)) if n_jobs is None else int(n_jobs)
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.seed = seed
        self.hyperparameters = {"alpha": alpha, "n_alphas": int(n_alphas), "eps": float(eps),
                                "cv_folds": int(cv_folds), "max_iter": int(max_iter),
                                "normalisation": check_normalisation(normalisation)}
        self.name = model_name("lasso", normalisation)
        self.regressions: list = []

    def fit(self, X, Y, X_unlabelled=None, verbose=0):
        _reject_unlabelled(self.name, X_unlabelled)
        self._fit_normalisation(X)
        X = self._input(X)
        Y = check_targets(Y, X.shape[0], len(self.elements), allow_missing=True).astype(np.float64)
        self.x_scaler = StandardScaler().fit(X)
        self.y_scaler = StandardScaler().fit(Y)      # ignores NaN
        Z, T = self.x_scaler.transform(X), self.y_scaler.transform(Y)
        h = self.hyperparameters
        with warnings.catch_warnings():      # the filters are global (Python 3.11), so the threads see it
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.regressions = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                delayed(self._fit_element)(Z, T[:, j]) for j in range(len(self.elements)))
        if verbose:
            for element, model in zip(self.elements, self.regressions):
                print(f"lasso {element}: alpha={model.alpha_ if h['alpha'] is None else model.alpha:.3g}")
        return self

    def _fit_element(self, Z: np.ndarray, t: np.ndarray):
        """One element's Lasso (or LassoCV) on the rows where its standardised concentration ``t`` is known."""
        h = self.hyperparameters
        if h["alpha"] is None:
            folds = KFold(h["cv_folds"], shuffle=True, random_state=self.seed)
            model = LassoCV(alphas=h["n_alphas"], eps=h["eps"], cv=folds, max_iter=h["max_iter"])
        else:
            model = Lasso(alpha=h["alpha"], max_iter=h["max_iter"])
        known = ~np.isnan(t)
        return model.fit(Z[known], t[known])

    def predict(self, X) -> np.ndarray:
        Z = self.x_scaler.transform(self._input(X))
        T = np.column_stack([m.predict(Z) for m in self.regressions])
        return self.y_scaler.inverse_transform(T)
