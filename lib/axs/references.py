"""References the models are judged against, and the paired interval that compares them (stand-in only).

Each needs the stand-in's ground truth (``truth.nc`` copied by
:func:`axs.dataset.prepare_truth`); none is a model, none ever counts as a
win in Table 1, and none is an input to a model. Rows of the score tables:

* ``floor`` (:func:`axs.evaluation.floor_predictions`), called in the report
  the **assay-and-heterogeneity reference**: each core's true surface
  composition (mean over its orientations) mapped to the assay by one line per
  element fitted on the training folds. What it leaves is what the surface
  does not say about the assay: the grains the beam happens to see (surface
  against bulk), the lab's assay noise and its per-core digestion recovery. It
  is not a bound: a model that learns rock types can beat it, because the
  recovery of a resistate mineral (zircon) differs between rock types.
* :data:`FAMILY_REFERENCE`, the **family-aware reference**: the same true
  surface composition plus the rock type, mapped to the assay by a line per
  element *and rock type* (:class:`FamilyCalibration`), fitted on an
  independent stand-in draw (``data-reference/``), so it uses no assay of the
  evaluated cores.
* :data:`ORACLE`, **LASSO with the true path**: the scatter-and-path
  normalisation of :mod:`axs.normalisation` applied with each measurement's
  TRUE distance and dust (information no instrument has), then LASSO, out of
  fold. The gap between ``lasso_path`` and it is what a better estimate of the
  path could still gain.

:func:`paired_ratio` compares two predictors on the same cores: the ratio of
their mean squared errors with a paired bootstrap 95 % interval over cores,
and the mean per-core difference of squared errors with its t interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs.crossval import out_of_fold_predictions
from axs.assays import read_assays
from axs.comparisons import paired_interval
from axs.dataset import NETCDF_ENGINE, impute_censored
from axs.evaluation import SurfaceCalibration, floor_scores
from axs.linear import LassoRegression
from axs.normalisation import combine_measurements, fit_path, measurement_rows, path_correction

#: Names of the reference rows (they contain "oracle" and "reference", so no one mistakes them for models).
ORACLE = "lasso_oracle"
FAMILY_REFERENCE = "family_reference"
#: Fewest assayed cores of a rock type for its own line; rarer rock types take the line of all cores.
MIN_FAMILY_SAMPLES = 8


# -- the oracle ---------------------------------------------------------------------------------------

def true_path_spectra(X, energies_kev, distance_cm, dust_g_cm2, train) -> np.ndarray:
    """(n, channels) spectra corrected with the TRUE path of each measurement, then combined per sample.

    ``X`` (n, m, channels) counts/s (NaN rows: no measurement), ``distance_cm``
    and ``dust_g_cm2`` (n, m) the truth; the path model's state
    (:func:`axs.normalisation.fit_path`: its air and dust legs, the dust's
    reference) is fitted on the ``train`` samples (boolean (n,)) only.
    """
    X = np.asarray(X, dtype=np.float64)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    rows, sample = measurement_rows(X, len(energies_kev))
    present = np.isfinite(X).all(axis=2)
    distance = np.asarray(distance_cm, dtype=np.float64)[present]
    dust = np.asarray(dust_g_cm2, dtype=np.float64)[present]
    fitted = np.asarray(train, dtype=bool)[sample]
    state = fit_path(rows[fitted], energies_kev, distance[fitted], dust[fitted])
    corrected = path_correction(rows, energies_kev, distance, dust - state["dust_offset_g_cm2"], state)
    return combine_measurements(corrected, sample, X.shape[0])


def oracle_predictions(X, energies_kev, Y, folds, distance_cm, dust_g_cm2, elements: Sequence[str],
                       seed: int = 0, **lasso) -> np.ndarray:
    """Out-of-fold (n, elements) predictions of LASSO on spectra corrected with the true path (:data:`ORACLE`).

    For each fold the path state is fitted on the other folds, the spectra of
    all cores corrected with their true geometry, and a
    :class:`~axs.linear.LassoRegression` (``lasso`` keywords, e.g. the
    pipeline's ``train.lasso``) fitted on the other folds predicts the fold.
    """
    folds = np.asarray(folds)
    out = np.full(np.asarray(Y).shape, np.nan)
    for j in np.unique(folds):
        test = folds == j
        spectra = true_path_spectra(X, energies_kev, distance_cm, dust_g_cm2, ~test)
        model = LassoRegression(energies_kev, elements, seed + int(j), **lasso)
        out[test] = model.fit(spectra[~test], np.asarray(Y)[~test]).predict(spectra[test])
    return out


def oracle_from_truth(truth_path: str | Path, ds: xr.Dataset, elements: Sequence[str] | None = None, seed: int = 0,
                      **lasso) -> xr.DataArray | None:
    """:func:`oracle_predictions` for a prepared dataset ``ds`` (with ``measurement_cps``) on ``elements``
    (None: all), as a (sample, element) DataArray in wt% over all of ds's elements (NaN for the others);
    None when the truth file or its per-measurement geometry is absent."""
    truth_path = Path(truth_path)
    if not truth_path.exists() or "measurement_cps" not in ds:
        return None
    with xr.open_dataset(truth_path, engine=NETCDF_ENGINE) as truth:
        if "distance_cm" not in truth or "dust_g_cm2" not in truth:
            return None
        geometry = truth[["distance_cm", "dust_g_cm2"]].sel(sample=ds["sample"],
                                                             orientation=ds["orientation"]).load()
    X = ds["measurement_cps"].transpose("sample", "orientation", "channel").to_numpy()
    every = ds["concentration_pct"].transpose("sample", "element")
    measured = every if elements is None else every.sel(element=list(elements))
    predicted = oracle_predictions(X, ds["energy_kev"].to_numpy(), measured.to_numpy(), ds["fold"].to_numpy(),
                                   geometry["distance_cm"].transpose("sample", "orientation").to_numpy(),
                                   geometry["dust_g_cm2"].transpose("sample", "orientation").to_numpy(),
                                   measured["element"].to_numpy().tolist(), seed, **lasso)
    return measured.copy(data=predicted).reindex(element=every["element"])


def reference_predictions(truth_path: str | Path, ds: xr.Dataset, reference_dir: str | Path,
                          oracle_elements: Sequence[str] | None = None, seed: int = 0, **lasso
                          ) -> dict[str, xr.DataArray]:
    """The references beside the floor that these data allow, name -> (sample, element) wt% predictions:
    :data:`ORACLE` (on ``oracle_elements``; ``lasso``: its LassoRegression settings) and
    :data:`FAMILY_REFERENCE`; an empty dict without a truth file (measured data)."""
    out = {ORACLE: oracle_from_truth(truth_path, ds, oracle_elements, seed, **lasso),
           FAMILY_REFERENCE: family_reference_predictions(reference_dir, truth_path, ds["concentration_pct"])}
    return {name: p for name, p in out.items() if p is not None}


def with_references(scores: xr.Dataset, measured: xr.DataArray, predictions: dict[str, xr.DataArray],
                    folds: xr.DataArray) -> xr.Dataset:
    """``scores`` with a row for each reference of ``predictions`` appended (:func:`reference_scores`)."""
    if not predictions:
        return scores
    return xr.concat([scores, reference_scores(measured, predictions, folds)], dim="model")


# -- the family-aware reference -----------------------------------------------------------------------

class FamilyCalibration:
    """Per element and rock type, the least-squares line from true surface concentration to assay (wt%).

    A rock type with fewer than ``min_samples`` known assays of an element
    (and a rock type never seen in ``fit``) takes the line fitted on all cores.
    """

    def __init__(self, min_samples: int = MIN_FAMILY_SAMPLES):
        self.min_samples = int(min_samples)

    def fit(self, surface_pct, family, assay_pct) -> "FamilyCalibration":
        surface, assay = np.asarray(surface_pct, np.float64), np.asarray(assay_pct, np.float64)
        family = np.asarray(family).astype(str)
        self.pooled_ = SurfaceCalibration().fit(surface, assay)
        self.lines_ = {}
        for f in np.unique(family):
            rows = family == f
            line = SurfaceCalibration().fit(surface[rows], assay[rows])
            enough = np.isfinite(assay[rows]).sum(axis=0) >= self.min_samples
            line.slope_ = np.where(enough, line.slope_, self.pooled_.slope_)
            line.intercept_ = np.where(enough, line.intercept_, self.pooled_.intercept_)
            self.lines_[f] = line
        return self

    def predict(self, surface_pct, family) -> np.ndarray:
        surface = np.asarray(surface_pct, np.float64)
        family = np.asarray(family).astype(str)
        out = self.pooled_.predict(surface)
        for f, line in self.lines_.items():
            rows = family == f
            out[rows] = line.predict(surface[rows])
        return out


def reference_draw(data_dir: str | Path) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """(true surface wt% (sample, element) averaged over orientations, rock type (sample,), assay wt%
    (sample, element), censored values imputed as in :func:`axs.dataset.build_dataset`) of an independent
    stand-in draw with its truth (``data-reference/``: ``assays.csv``, ``assay_limits.csv``, ``truth/truth.nc``;
    no spectra)."""
    data_dir = Path(data_dir)
    limits = data_dir / "assay_limits.csv"
    read = read_assays(data_dir / "assays.csv", limits)
    values = impute_censored(read.values_pct, read.censored, read.lower_pct, read.upper_pct, limits)
    assays = xr.DataArray(values.to_numpy(np.float64), dims=("sample", "element"),
                          coords={"sample": values.index.to_numpy(str), "element": values.columns.to_numpy(str)})
    with xr.open_dataset(data_dir / "truth" / "truth.nc", engine=NETCDF_ENGINE) as truth:
        truth = truth.sel(sample=assays["sample"])
        surface = truth["surface_pct"].mean("orientation").load()
        rock = truth["rock_type"].load()
    return surface, rock, assays


def family_reference_predictions(reference_dir: str | Path, truth_path: str | Path,
                                 measured: xr.DataArray) -> xr.DataArray | None:
    """:data:`FAMILY_REFERENCE` predictions (sample, element) wt% for the cores of ``measured``: their true
    surface composition and rock type (``truth_path``, from prepare) through a :class:`FamilyCalibration`
    fitted on the independent draw in ``reference_dir``; None when either is absent."""
    reference_dir, truth_path = Path(reference_dir), Path(truth_path)
    if not (reference_dir / "truth" / "truth.nc").exists() or not truth_path.exists():
        return None
    surface_ref, rock_ref, assay_ref = reference_draw(reference_dir)
    elements = measured["element"].to_numpy()
    calibration = FamilyCalibration().fit(surface_ref.sel(element=elements).transpose("sample", "element"),
                                          rock_ref, assay_ref.sel(element=elements).transpose("sample", "element"))
    with xr.open_dataset(truth_path, engine=NETCDF_ENGINE) as truth:
        surface = truth["surface_pct"].sel(sample=measured["sample"], element=elements).load()
        rock = truth["rock_type"].sel(sample=measured["sample"]).load()
    y = measured.transpose("sample", "element")
    return y.copy(data=calibration.predict(surface.transpose("sample", "element").to_numpy(), rock.to_numpy()))


def reference_scores(measured: xr.DataArray, predictions: dict[str, xr.DataArray], folds: xr.DataArray
                     ) -> xr.Dataset:
    """``mse``, ``se`` and ``fold_mse`` of each reference row (name -> (sample, element) predictions), scored
    on the same folds as the models (:func:`axs.evaluation.floor_scores`)."""
    return xr.concat([floor_scores(measured, p, folds, name=name) for name, p in predictions.items()], dim="model")


# -- paired comparison --------------------------------------------------------------------------------

def paired_ratio(measured, predicted, reference, confidence: float = 0.95, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, float]:
    """MSE(predicted) / MSE(reference) over the cores with a measured value, with paired intervals.

    ``ratio_low``/``ratio_high``: percentile bootstrap over cores (each
    resample keeps a core's two squared errors together), seeded.
    ``difference`` (wt%²): the mean per-core difference of squared errors
    (predicted minus reference), with ``difference_low``/``difference_high``
    its t interval (:func:`axs.comparisons.paired_interval`). ``n``: the cores used.
    """
    y = np.asarray(measured, np.float64)
    a = (np.asarray(predicted, np.float64) - y) ** 2
    b = (np.asarray(reference, np.float64) - y) ** 2
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = len(a)
    out = {"n": n, "ratio": np.nan, "ratio_low": np.nan, "ratio_high": np.nan,
           "difference": np.nan, "difference_low": np.nan, "difference_high": np.nan}
    if n < 3 or b.mean() <= 0:
        return out
    alpha = 1.0 - confidence
    out["ratio"] = float(a.mean() / b.mean())
    picks = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    ratios = a[picks].mean(axis=1) / np.maximum(b[picks].mean(axis=1), np.finfo(float).tiny)
    out["ratio_low"], out["ratio_high"] = (float(v) for v in np.quantile(ratios, [alpha / 2, 1 - alpha / 2]))
    difference = paired_interval(a, b, level=confidence).iloc[0]
    out["difference"] = float(difference["diff"])
    out["difference_low"], out["difference_high"] = float(difference["lo"]), float(difference["hi"])
    return out


def references_table(measured: xr.DataArray, predicted: xr.DataArray, best: pd.Series,
                     references: dict[str, xr.DataArray], seed: int = 0) -> pd.DataFrame:
    """Per element of ``best`` (element -> best model, :func:`axs.evaluation.best_model`) and per reference
    row: the best model's MSE over the reference's with :func:`paired_ratio`'s intervals
    (``reports/tables/references.csv``). A ratio below 1 whose interval excludes 1 beats the reference."""
    rows = []
    for element, model in best.items():
        y = measured.sel(element=element).to_numpy()
        p = predicted.sel(model=model, element=element).to_numpy()
        for name, reference in references.items():
            r = reference.sel(sample=measured["sample"], element=element).to_numpy()
            rows.append({"element": element, "best": model, "reference": name,
                         **paired_ratio(y, p, r, seed=seed)})
    return pd.DataFrame(rows, columns=["element", "best", "reference", "n", "ratio", "ratio_low", "ratio_high",
                                       "difference", "difference_low", "difference_high"])
