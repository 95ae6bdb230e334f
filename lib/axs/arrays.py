"""Checks of the arrays every model takes: spectra (n, channels) and concentrations (n, elements).

Kept apart from :mod:`axs.training` so that the linear models and the peak
fitter check their inputs without importing TensorFlow.
"""

from __future__ import annotations

import numpy as np


def check_spectra(X, n_channels: int, name: str = "X") -> np.ndarray:
    """X as a float32 (n, channels) array; ValueError naming the argument otherwise."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != n_channels:
        raise ValueError(f"{name}: expected shape (n_samples, {n_channels}) spectra, got {X.shape}")
    if not np.all(np.isfinite(X)):
        row = int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])
        raise ValueError(f"{name}: row {row} has a non-finite count")
    return X


def check_targets(Y, n_samples: int, n_outputs: int, name: str = "Y", allow_missing: bool = False) -> np.ndarray:
    """Y as a float32 (n, elements) array of concentrations; ValueError naming the argument otherwise.

    ``allow_missing``: NaN marks a concentration the lab did not report (the models leave that cell out
    of their fit); infinities are always an error, and so is an element with no value at all.
    """
    Y = np.asarray(Y, dtype=np.float32)
    if Y.ndim != 2 or Y.shape != (n_samples, n_outputs):
        raise ValueError(f"{name}: expected shape ({n_samples}, {n_outputs}) concentrations, got {Y.shape}")
    bad = np.isinf(Y) if allow_missing else ~np.isfinite(Y)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{name}: row {row}, column {col} is not a finite concentration")
    if allow_missing and n_samples and np.isnan(Y).all(axis=0).any():
        col = int(np.flatnonzero(np.isnan(Y).all(axis=0))[0])
        raise ValueError(f"{name}: column {col} has no known concentration")
    return Y
