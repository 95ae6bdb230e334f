"""Cross-validation shared by the training stages and the evaluation (paper section 4).

Out-of-fold predictions: for each fold *j*, a fresh model is fitted on the
other folds and predicts fold *j*, so every core gets a prediction from a
model that never saw it. Scores: the fold error is the mean squared error
over the fold's held-out samples,

    CV_j = mean_s (y_se - y'_se)^2        (wt%^2)

the cross-validation error is their mean, CV = mean_j CV_j, and its standard
error is SE = SD{CV_1..CV_k} / sqrt(k) with the sample standard deviation
(ddof = 1). A model that gives NaN for an element (LR without a usable K-L3
line) is "not applicable" there: its MSE and SE are NaN. The training-fold mean
predictor (model :data:`MEAN`) is scored alongside every model.

Training stages depend on this module, not on :mod:`axs.evaluation` (tables,
figures' choices, metrics), so changing how results are reported never re-runs training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from axs.dataset import NETCDF_ENGINE

#: Name of the training-fold mean predictor and of the error floor in the score tables.
MEAN, FLOOR = "mean", "floor"
MSE_UNIT = "wt%^2"


class TrainingMeanPredictor:
    """Predicts, for every sample, the per-element mean of the training targets (the paper's baseline of removal)."""

    def fit(self, X, Y, **_):
        self.mean_ = np.nanmean(np.asarray(Y, dtype=np.float64), axis=0)
        return self

    def predict(self, X):
        return np.broadcast_to(self.mean_, (len(X), len(self.mean_))).copy()


def out_of_fold_predictions(make_model: Callable[[int], object], X: np.ndarray, Y: np.ndarray,
                            folds: np.ndarray, fit_kwargs: dict | None = None,
                            on_fold: Callable[[int, object, np.ndarray], None] | None = None) -> np.ndarray:
    """Predictions for every sample from a model that never saw it (k-fold cross-validation).

    ``make_model(j)`` returns a fresh model for fold ``j``; it is fitted on
    the samples whose fold is not ``j`` (``fit(X, Y, **fit_kwargs)``) and
    predicts those whose fold is ``j``. ``on_fold(j, model, test_mask)`` is
    called after each fold (to keep per-fold extras such as learned
    simulator parameters or reconstructions). Returns (n_samples, n_outputs).
    """
    folds = np.asarray(folds)
    predicted = None
    for j in np.unique(folds):
        test = folds == j
        model = make_model(int(j))
        model.fit(X[~test], Y[~test], **(fit_kwargs or {}))
        y = np.asarray(model.predict(X[test]), dtype=np.float64)
        if predicted is None:
            predicted = np.full((len(X), y.shape[1]), np.nan)
        predicted[test] = y
        if on_fold is not None:
            on_fold(int(j), model, test)
    return predicted


def fold_mse(measured: np.ndarray, predicted: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """CV_j per fold and element, (k, n_elements), wt%^2; NaN where any prediction in the fold is NaN."""
    folds = np.asarray(folds)
    squared = (np.asarray(predicted, dtype=np.float64) - np.asarray(measured, dtype=np.float64)) ** 2
    return np.stack([squared[folds == j].mean(axis=0) for j in np.unique(folds)])


def cv_scores(measured: xr.DataArray, predicted: xr.DataArray, folds: xr.DataArray) -> xr.Dataset:
    """``mse`` and ``se`` (model, element) from out-of-fold predictions (model, sample, element).

    The training-fold mean predictor is added as model :data:`MEAN`.
    """
    y = measured.transpose("sample", "element").to_numpy()
    k = folds.to_numpy()
    mean_pred = out_of_fold_predictions(lambda _: TrainingMeanPredictor(), y, y, k)
    models = list(predicted["model"].to_numpy()) + [MEAN]
    per_fold = np.stack([fold_mse(y, predicted.sel(model=m).transpose("sample", "element").to_numpy(), k)
                         for m in models[:-1]] + [fold_mse(y, mean_pred, k)])
    return _summarise(per_fold, models, measured["element"].to_numpy())


def floor_scores(measured: xr.DataArray, floor_predicted: xr.DataArray, folds: xr.DataArray) -> xr.Dataset:
    """``mse`` and ``se`` of the error floor (model :data:`FLOOR`), scored on the same folds."""
    y = measured.transpose("sample", "element").to_numpy()
    p = floor_predicted.sel(sample=measured["sample"], element=measured["element"]).transpose("sample", "element")
    per_fold = fold_mse(y, p.to_numpy(), folds.to_numpy())[None]
    return _summarise(per_fold, [FLOOR], measured["element"].to_numpy())


def _summarise(per_fold: np.ndarray, models: Sequence[str], elements) -> xr.Dataset:
    k = per_fold.shape[1]
    return xr.Dataset(
        {"mse": (("model", "element"), per_fold.mean(axis=1), {"units": MSE_UNIT}),
         "se": (("model", "element"), per_fold.std(axis=1, ddof=1) / np.sqrt(k), {"units": MSE_UNIT}),
         "fold_mse": (("model", "fold", "element"), per_fold, {"units": MSE_UNIT})},
        coords={"model": list(models), "element": list(elements), "fold": np.arange(k)},
    )


def predictions_path(artifacts_dir: str | Path, model: str) -> Path:
    """Where a model's out-of-fold predictions live: ``baselines/<model>/`` or, for AXS, ``train_axs/``."""
    artifacts_dir = Path(artifacts_dir)
    folder = artifacts_dir / "train_axs" if model == "axs" else artifacts_dir / "baselines" / model
    return folder / "predictions.nc"


def predictions_dataset(ds: xr.Dataset, predicted_pct: np.ndarray, model: str,
                        reconstruction_cps: np.ndarray | None = None) -> xr.Dataset:
    """Out-of-fold predictions (sample, element) in wt% on the dataset's coordinates, with the folds used;
    AXS adds its out-of-fold spectrum reconstructions (sample, channel) in counts/s."""
    out = xr.Dataset(
        {"predicted_pct": (("sample", "element"), np.asarray(predicted_pct, dtype=np.float64),
                           {"units": "wt%", "long_name": f"{model}: out-of-fold prediction"}),
         "fold": ds["fold"]},
        coords={"sample": ds["sample"], "element": ds["element"]}, attrs={"model": model})
    if reconstruction_cps is not None:
        out["reconstruction_cps"] = (("sample", "channel"), np.asarray(reconstruction_cps, dtype=np.float64),
                                     {"units": "counts/s"})
        out = out.assign_coords(energy_kev=ds["energy_kev"])
    return out


def load_predictions(artifacts_dir: str | Path, models: Sequence[str], folds: xr.DataArray) -> xr.DataArray:
    """Out-of-fold predictions of ``models`` as one DataArray (model, sample, element), wt%.

    Raises ValueError if a model's predictions were made with other folds than ``folds``.
    """
    arrays = []
    for model in models:
        with xr.open_dataset(predictions_path(artifacts_dir, model), engine=NETCDF_ENGINE) as p:
            p = p.load()
        if not np.array_equal(p["fold"].sel(sample=folds["sample"]).to_numpy(), folds.to_numpy()):
            raise ValueError(f"{model}: predictions were made with other cross-validation folds")
        arrays.append(p["predicted_pct"].sel(sample=folds["sample"]))
    return xr.concat(arrays, dim=xr.DataArray(list(models), dims="model", name="model"))
