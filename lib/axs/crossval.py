"""Out-of-fold training, shared by the training stages (paper section 4).

For each fold *j*, a fresh model is fitted on the other folds and predicts
fold *j*, so every core gets a prediction from a model that never saw it.
The predictions are written as ``predictions.nc`` per model (with the folds
used) and read back by ``evaluate`` (:func:`axs.evaluation.load_predictions`).
Reading and scoring them (fold MSE, CV MSE and SE, the floor) is
:mod:`axs.evaluation`'s job, so changing how results are scored or reported
never re-runs training.

:func:`cross_validate` is what the training stage (and ``axs calibrate``) runs:
the out-of-fold predictions, each fold model's extras (a decoder's
reconstructions, theta and simulator parameters; training curves), and each
*single measurement* of the held-out samples predicted on its own
(:class:`SingleSpectra`): a field user usually measures a sample once, and one
spectrum is noisier than the average of the orientations a model learned from,
so :func:`axs.bundle.export_model` calibrates flags and intervals on these too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from axs import dataset
from axs.model_registry import reconstructs

#: The file a training stage writes its out-of-fold predictions to (:func:`predictions_dataset`).
PREDICTIONS_FILE = "predictions.nc"
#: ... and the per-fold training curves of a network (fold, epoch, series).
HISTORY_FILE = "training_history.csv"


def out_of_fold_predictions(make_model: Callable[[int], object], X: np.ndarray, Y: np.ndarray,
                            folds: np.ndarray, fit_kwargs: dict | None = None,
                            on_fold: Callable[[int, object, np.ndarray], None] | None = None,
                            test_folds: Sequence[int] | None = None) -> np.ndarray:
    """Predictions for every sample from a model that never saw it (k-fold cross-validation).

    ``make_model(j)`` returns a fresh model for fold ``j``; it is fitted on
    the samples whose fold is not ``j`` (``fit(X, Y, **fit_kwargs)``) and
    predicts those whose fold is ``j``. ``on_fold(j, model, test_mask)`` is
    called after each fold (to keep per-fold extras such as learned
    simulator parameters or reconstructions). ``test_folds``: the folds held
    out in turn (default all; the rows of the others stay NaN, for an
    experiment that tests a few folds). Returns (n_samples, n_outputs).
    """
    folds = np.asarray(folds)
    predicted = None
    for j in (np.unique(folds) if test_folds is None else test_folds):
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


@dataclass
class SingleSpectra:
    """Out-of-fold results of single measurements, for :func:`axs.bundle.export_model`'s ``single``.

    ``X`` (m, channels) counts/s on the model's grid; ``sample_position`` (m,)
    the row of each measurement's sample in the training arrays (its assay and
    fold); ``predicted`` (m, elements) wt%, each from the fold model that did not
    see its sample; ``reconstruction`` (m, channels) the same for a decoder
    model, else None; ``spectra_per_sample``: how many measurements a training
    sample averages (the median), below which a sample counts as single.
    """

    X: np.ndarray
    sample_position: np.ndarray
    predicted: np.ndarray
    reconstruction: np.ndarray | None
    spectra_per_sample: int


@dataclass
class CrossValidation:
    """What :func:`cross_validate` keeps: out-of-fold predictions (n, elements) wt%, and per fold the
    extras a model has (a decoder's reconstructions, theta and simulator parameters; training curves)."""

    predicted: np.ndarray
    reconstruction: np.ndarray | None = None
    theta: np.ndarray | None = None
    theta_elements: list[str] = field(default_factory=list)
    fold_parameters: dict[int, dict] = field(default_factory=dict)
    histories: dict[int, pd.DataFrame] = field(default_factory=dict)
    single: SingleSpectra | None = None


def cross_validate(make_model: Callable[[int], object], X: np.ndarray, Y: np.ndarray, folds: np.ndarray,
                   fit_kwargs: dict | None = None, X_single: np.ndarray | None = None,
                   single_position: np.ndarray | None = None, spectra_per_sample: int = 1) -> CrossValidation:
    """Out-of-fold predictions of every sample (:func:`axs.crossval.out_of_fold_predictions`) and what
    each fold model adds: a decoder model's reconstructions, theta (eq. 4) and simulator parameters, training
    curves, and, when ``X_single`` (m, channels) with ``single_position`` (m,) is given, each single
    measurement of the held-out samples predicted (and reconstructed) on its own.
    """
    X = np.asarray(X)
    probe = make_model(0)
    # the registry says which models reconstruct (a decoder's or the direct fit's theta), as in axs.predict
    decoder = reconstructs(probe.name)
    out = CrossValidation(predicted=np.empty(0))
    if decoder:
        out.theta_elements = list(probe.simulator_elements)
        out.reconstruction = np.full((len(X), X.shape[-1]), np.nan)   # one spectrum per sample, X 2-d or 3-d
        out.theta = np.full((len(X), len(out.theta_elements)), np.nan)
    single_folds = None if X_single is None else np.asarray(folds)[np.asarray(single_position)]
    single_predicted = None
    single_reconstruction = None if X_single is None or not decoder else np.full(np.shape(X_single), np.nan)

    def keep(j, fitted, test):
        nonlocal single_predicted
        if decoder:
            out.fold_parameters[j] = fitted.simulator_parameters()
            out.reconstruction[test] = fitted.reconstruct(X[test])
            out.theta[test] = fitted.theta(X[test])
        if getattr(fitted, "history", None):
            out.histories[j] = fitted.training_curves().assign(fold=j)
        if X_single is not None:
            rows = single_folds == j
            y = np.asarray(fitted.predict(X_single[rows]), dtype=np.float64)
            if single_predicted is None:
                single_predicted = np.full((len(X_single), y.shape[1]), np.nan)
            single_predicted[rows] = y
            if decoder:
                single_reconstruction[rows] = fitted.reconstruct(X_single[rows])

    out.predicted = out_of_fold_predictions(make_model, X, Y, folds, fit_kwargs=fit_kwargs, on_fold=keep)
    if X_single is not None:
        out.single = SingleSpectra(np.asarray(X_single), np.asarray(single_position), single_predicted,
                                   single_reconstruction, int(spectra_per_sample))
    return out


def spectra_per_sample(ds: xr.Dataset) -> int:
    """How many measurements a sample of the prepared dataset ``ds`` averages (the median over samples)."""
    return int(np.median(ds["n_orientations"].to_numpy()))


def predictions_dataset(ds: xr.Dataset, predicted_pct: np.ndarray, model: str,
                        reconstruction_cps: np.ndarray | None = None, theta: np.ndarray | None = None,
                        theta_elements: Sequence[str] = (), single_predicted_pct: np.ndarray | None = None,
                        single_reconstruction_cps: np.ndarray | None = None) -> xr.Dataset:
    """Out-of-fold predictions (sample, element) in wt% on the dataset's coordinates, with the folds used;
    decoder models add their out-of-fold spectrum reconstructions (sample, channel) in counts/s and their
    encoder's theta (sample, theta_element), the multipliers of eq. 4; ``single_predicted_pct``
    (measurement, element): each measurement of ``ds`` predicted on its own by the fold model that did not
    see its sample (``predicted_single_pct``, rows in the order of :func:`axs.dataset.single_spectra`, with
    coordinate ``measurement_sample``: each row's sample); ``single_reconstruction_cps`` (measurement, channel):
    a decoder model's reconstruction of each of those measurements (``reconstruction_single_cps``, float32: the
    per-orientation chi^2 of the reports)."""
    out = xr.Dataset(
        {"predicted_pct": (("sample", "element"), np.asarray(predicted_pct, dtype=np.float64),
                           {"units": "wt%", "long_name": f"{model}: out-of-fold prediction"}),
         "fold": ds["fold"]},
        coords={"sample": ds["sample"], "element": ds["element"]}, attrs={"model": model})
    if reconstruction_cps is not None:
        out["reconstruction_cps"] = (("sample", "channel"), np.asarray(reconstruction_cps, dtype=np.float64),
                                     {"units": "counts/s"})
        out = out.assign_coords(energy_kev=ds["energy_kev"])
    if theta is not None:
        out["theta"] = (("sample", "theta_element"), np.asarray(theta, dtype=np.float64),
                        {"long_name": "out-of-fold theta (eq. 4)"})
        out = out.assign_coords(theta_element=list(theta_elements))
    if single_predicted_pct is not None:
        out["predicted_single_pct"] = (("measurement", "element"), np.asarray(single_predicted_pct, np.float64),
                                       {"units": "wt%", "long_name": f"{model}: out-of-fold prediction of each "
                                        "measurement on its own"})
        _, position = dataset.single_spectra(ds)
        out = out.assign_coords(measurement_sample=("measurement", ds["sample"].to_numpy()[position]))
    if single_reconstruction_cps is not None:
        out["reconstruction_single_cps"] = (("measurement", "channel"),
                                            np.asarray(single_reconstruction_cps, dtype=np.float32),
                                            {"units": "counts/s", "long_name": f"{model}: out-of-fold "
                                             "reconstruction of each measurement on its own"})
    return out
