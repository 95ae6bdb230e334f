"""Calibrating one model on a lab's own standards: ``axs calibrate DATA_DIR --model NAME -o MODEL_DIR``.

The export part of the pipeline for one model on one raw dataset in the documented
format (``docs/data-format.md``, read and checked by :func:`axs.dataset.build_dataset`):
the training stage's own cross-validation (:func:`axs.crossval.cross_validate`:
out-of-fold predictions of every sample and of every single measurement), the final
fit on every labelled sample and the export (:func:`axs.bundle.export_model`), so that
``axs predict MODEL_DIR ...`` works; and a short cross-validated accuracy table
(:func:`accuracy_table`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs import bundle, dataset, evaluation
from axs.crossval import cross_validate, spectra_per_sample


def accuracy_table(measured: xr.DataArray, predicted_pct: np.ndarray, folds: xr.DataArray, model: str
                   ) -> pd.DataFrame:
    """Cross-validated accuracy per element: ``element, n, rmse_pct, relative_mse`` (the MSE over that of
    the training-fold mean, :func:`axs.evaluation.relative_mse`: below 1 the model beats the mean),
    from :func:`axs.evaluation.cv_scores`; sorted by relative MSE."""
    predicted = xr.DataArray(np.asarray(predicted_pct)[None], dims=("model", "sample", "element"),
                             coords={"model": [model], "sample": measured["sample"], "element": measured["element"]})
    scores = evaluation.cv_scores(measured, predicted, folds)
    elements = list(measured["element"].to_numpy())
    relative = evaluation.relative_mse(scores, [model], elements).sel(model=model).to_numpy()
    table = pd.DataFrame({"element": elements, "n": np.isfinite(measured.to_numpy()).sum(axis=0),
                          "rmse_pct": np.sqrt(scores["mse"].sel(model=model, element=elements).to_numpy()),
                          "relative_mse": relative})
    return table.sort_values("relative_mse", na_position="last").reset_index(drop=True)


def calibrate(data_dir: str | Path, model: str, out_dir: str | Path, *, n_folds: int = 10, fold_seed: int = 0,
              seed: int = 0, hyperparameters: dict | None = None, max_flag_rate: float = 0.02
              ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Train ``model`` (a name of :data:`axs.models.MODEL_NAMES`, registry defaults overridden by
    ``hyperparameters``) on the raw dataset ``data_dir`` and export it to ``out_dir`` for ``axs predict``.

    The export part of the pipeline for one model: :func:`axs.dataset.build_dataset` (everything
    checked first; DataError naming file, line and field), ``n_folds``-fold cross-validation seeded by
    ``fold_seed`` (:func:`cross_validate`, fold j's model seeded ``seed + j``), the final fit on every
    labelled sample (seed ``seed``), and :func:`axs.bundle.export_model` with the out-of-fold results of
    averages and single measurements. Nothing is written before the export, which is all or nothing.
    Returns the :func:`accuracy_table` and the export's held-out flag rates.
    """
    from axs.models import make_model

    ds = dataset.with_folds(dataset.build_dataset(data_dir), n_folds, fold_seed)
    X = dataset.model_input(ds)              # (sample, orientation, channel), as the training stage reads it
    X_mean = ds["spectrum_cps"].to_numpy()   # each sample's mean raw spectrum: the applicability checks' input
    Y, folds = ds["concentration_pct"].to_numpy(), ds["fold"].to_numpy()
    energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
    X_single, position = dataset.single_spectra(ds)

    def new_model(j: int):
        return make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j,
                          **(hyperparameters or {}))

    fit_kwargs = {"verbose": 0}
    cv = cross_validate(new_model, X, Y, folds, fit_kwargs, X_single, position, spectra_per_sample(ds))
    final = new_model(0).fit(X, Y, **fit_kwargs)
    figures = bundle.export_model(final, out_dir, X_mean, Y, folds, cv.predicted, tube=ds.attrs.get("tube", ""),
                                  oof_reconstruction=cv.reconstruction, max_flag_rate=max_flag_rate,
                                  single=cv.single)
    return accuracy_table(ds["concentration_pct"], cv.predicted, ds["fold"], model), figures

