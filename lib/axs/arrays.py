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


def check_targets(Y, n_samples: int, n_outputs: int, name: str = "Y") -> np.ndarray:
    """Y as a float32 (n, elements) array of concentrations; ValueError naming the argument otherwise."""
    Y = np.asarray(Y, dtype=np.float32)
    if Y.ndim != 2 or Y.shape != (n_samples, n_outputs):
        raise ValueError(f"{name}: expected shape ({n_samples}, {n_outputs}) concentrations, got {Y.shape}")
    if not np.all(np.isfinite(Y)):
        row, col = (int(v[0]) for v in np.nonzero(~np.isfinite(Y)))
        raise ValueError(f"{name}: row {row}, column {col} is not a finite concentration")
    return Y
