"""Scores and the paper's tables from out-of-fold predictions (section 4, Tables 1 and 2, appendix A.1).

Scores: the fold error is the mean squared error over the fold's held-out samples,

    CV_j = mean_s (y_se - y'_se)^2        (wt%^2)

the cross-validation error is their mean, CV = mean_j CV_j, and its standard
error is SE = SD{CV_1..CV_k} / sqrt(k) with the sample standard deviation
(ddof = 1). A model that gives NaN for an element (LR without a usable K-L3
line) is "not applicable" there: its MSE and SE are NaN. The training-fold mean
predictor (model :data:`MEAN`) is scored alongside every model. An element stays in the results only if
some model's CV MSE is below that of the training-fold mean predictor; the
others are listed as removed. The error floor (a predictor that knew each
core's true mean surface composition over its orientations and calibrated it
to the assays on the training folds; needs the stand-in's truth file) is
scored the same way (:func:`floor_scores`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs.crossval import out_of_fold_predictions

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


class SurfaceCalibration:
    """Per element, the least-squares line from true surface concentration to assay (both wt%).

    The line absorbs what no spectrum-based model has to reproduce but can
    learn from the assays: the lab's partial digestion of resistate minerals and
    other proportional biases. What is left is surface-vs-bulk heterogeneity and
    assay error.
    """

    def fit(self, X, Y, **_):
        x, y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        dx, dy = x - x.mean(axis=0), y - y.mean(axis=0)
        var = (dx * dx).sum(axis=0)
        self.slope_ = np.divide((dx * dy).sum(axis=0), var, out=np.zeros_like(var), where=var > 0)
        self.intercept_ = y.mean(axis=0) - self.slope_ * x.mean(axis=0)
        return self

    def predict(self, X):
        return self.intercept_ + self.slope_ * np.asarray(X, dtype=np.float64)


def floor_predictions(truth_path: str | Path, measured: xr.DataArray, folds: xr.DataArray) -> xr.DataArray | None:
    """Out-of-fold error-floor predictions (sample, element), wt%; None without a truth file.

    Each core's true surface composition averaged over its orientations
    (``surface_pct`` of the truth that ``prepare`` copied from the stand-in's
    truth file, :func:`axs.dataset.prepare_truth`), mapped to the assay by a
    :class:`SurfaceCalibration` fitted on the training folds only: the best a
    model could do if it read the surface perfectly. Without a truth file (a
    user's own data) there is no floor.
    """
    truth_path = Path(truth_path)
    if not truth_path.exists():
        return None
    with xr.open_dataset(truth_path, engine="netcdf4") as truth:
        surface = truth["surface_pct"].load()
    x = surface.sel(sample=measured["sample"], element=measured["element"]).transpose("sample", "element")
    y = measured.transpose("sample", "element")
    predicted = out_of_fold_predictions(lambda _: SurfaceCalibration(), x.to_numpy(), y.to_numpy(),
                                        folds.to_numpy())
    return y.copy(data=predicted)


def sample_families(ds: xr.Dataset, truth_path: str | Path) -> xr.DataArray:
    """Each sample's family for reporting: the dataset's ``family`` coordinate (measured data), else the
    rock type of the prepared ground truth (stand-in), else one family ``all``."""
    if "family" in ds.coords or "family" in ds:
        return ds["family"].astype(str)
    truth_path = Path(truth_path)
    if truth_path.exists():
        with xr.open_dataset(truth_path, engine="netcdf4") as truth:
            if "rock_type" in truth:
                return truth["rock_type"].sel(sample=ds["sample"]).load().astype(str).rename("family")
    return xr.DataArray(np.full(ds.sizes["sample"], "all"), coords={"sample": ds["sample"]}, dims="sample",
                        name="family")


def family_scores(measured: xr.DataArray, predicted: xr.DataArray, family: xr.DataArray,
                  elements: Sequence[str]) -> pd.DataFrame:
    """Out-of-fold MSE (wt%²) per family, element and model, long form ``family, element, model, n, mse``,
    with the mean predictor's MSE inside the family (``mean``: each family's own assay mean, an
    optimistic reference a model that only recognises the family would reach)."""
    rows = []
    for fam in sorted(set(family.to_numpy().tolist())):
        inside = (family == fam).to_numpy()
        for element in elements:
            y = measured.sel(element=element).to_numpy()[inside]
            ok = np.isfinite(y)
            rows.append((fam, element, MEAN, int(ok.sum()), float(np.var(y[ok])) if ok.any() else np.nan))
            for model in predicted["model"].to_numpy().tolist():
                p = predicted.sel(model=model, element=element).to_numpy()[inside]
                both = ok & np.isfinite(p)
                rows.append((fam, element, model, int(both.sum()),
                             float(np.mean((p[both] - y[both]) ** 2)) if both.any() else np.nan))
    return pd.DataFrame(rows, columns=["family", "element", "model", "n", "mse"])


def within_family_r(measured: xr.DataArray, predicted: xr.DataArray, family: xr.DataArray,
                    elements: Sequence[str], min_samples: int = 5) -> pd.DataFrame:
    """Pearson r of out-of-fold prediction with assay inside each family (rock type, matrix), long form:
    ``family, element, model, n, r``. A model that only separates families has r ~ 0 inside each;
    NaN where a family has fewer than ``min_samples`` values or a constant prediction or assay."""
    rows = []
    for fam in sorted(set(family.to_numpy().tolist())):
        inside = (family == fam).to_numpy()
        for element in elements:
            y = measured.sel(element=element).to_numpy()[inside]
            for model in predicted["model"].to_numpy().tolist():
                p = predicted.sel(model=model, element=element).to_numpy()[inside]
                ok = np.isfinite(y) & np.isfinite(p)
                r = np.nan
                if ok.sum() >= min_samples and np.std(y[ok]) > 0 and np.std(p[ok]) > 0:
                    r = float(np.corrcoef(y[ok], p[ok])[0, 1])
                rows.append((fam, element, model, int(ok.sum()), r))
    return pd.DataFrame(rows, columns=["family", "element", "model", "n", "r"])


def kept_and_removed(scores: xr.Dataset, models: Sequence[str]) -> tuple[list[str], list[str]]:
    """Elements where some model beats the training-fold mean predictor, and those where none does."""
    best = scores["mse"].sel(model=list(models)).min("model", skipna=True)
    beats = (best < scores["mse"].sel(model=MEAN)).to_numpy()
    elements = scores["element"].to_numpy().tolist()
    return ([e for e, b in zip(elements, beats) if b], [e for e, b in zip(elements, beats) if not b])


def best_model(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.Series:
    """The model with the lowest CV MSE for each element (ties go to the first model listed)."""
    mse = scores["mse"].sel(model=list(models), element=list(elements)).to_pandas()
    return mse.fillna(np.inf).idxmin(axis=0).rename("best")


def table1(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Table 1: for each model (in order) the elements where it has the best MSE, space-separated."""
    best = best_model(scores, models, elements)
    return pd.DataFrame({"model": list(models),
                         "best_on": [" ".join(e for e in elements if best[e] == m) for m in models]})


def table2(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Table 2 in long form: element, model, mse, se, unit, for each kept element and model.

    The floor follows the models when ``scores`` has it; a model not
    applicable to an element has empty mse and se.
    """
    names = list(models) + ([FLOOR] if FLOOR in scores["model"] else [])
    rows = [(e, m, float(scores["mse"].sel(model=m, element=e)), float(scores["se"].sel(model=m, element=e)),
             MSE_UNIT) for e in elements for m in names]
    return pd.DataFrame(rows, columns=["element", "model", "mse", "se", "unit"])


def table2_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as the paper prints it: one row per element, ``mse±se`` per model (blank: not applicable)."""
    text = [("" if np.isnan(m) else f"{m:.2e}±{s:.1e}") for m, s in zip(long["mse"], long["se"])]
    wide = long.assign(cell=text).pivot(index="element", columns="model", values="cell")
    return wide.reindex(index=list(dict.fromkeys(long["element"])), columns=list(dict.fromkeys(long["model"])))


def metrics(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per model: mean CV MSE over the kept elements it applies to, its relative MSE (MSE divided by
    the training-fold mean predictor's, averaged; scale-free across % and ppm elements), the number of
    elements it applies to, and its number of wins (Table 1)."""
    best = best_model(scores, models, elements)
    out = {}
    for m in models:
        mse = scores["mse"].sel(model=m, element=list(elements))
        ok = np.isfinite(mse.to_numpy())
        rel = (mse / scores["mse"].sel(model=MEAN, element=list(elements))).to_numpy()[ok]
        out[m] = {"mean_mse": float(mse.to_numpy()[ok].mean()) if ok.any() else float("nan"),
                  "mean_relative_mse": float(rel.mean()) if ok.any() else float("nan"),
                  "n_elements": int(ok.sum()),
                  "wins": int((best == m).sum())}
    return out


def write_metrics(values: dict, path: str | Path) -> None:
    """``metrics.json`` for ``dvc metrics show`` (NaN written as null)."""
    clean = json.loads(json.dumps(values), parse_constant=lambda _: None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")


def mse_per_element(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str],
                    relative: bool = False) -> pd.DataFrame:
    """Wide table for ``dvc plots``: one row per element, one MSE column per model (and the floor when
    present); ``relative`` divides by the training-fold mean predictor's MSE (1 = no better than the mean)."""
    names = list(models) + ([FLOOR] if FLOOR in scores["model"] else [])
    mse = scores["mse"].sel(model=names, element=list(elements))
    if relative:
        mse = mse / scores["mse"].sel(model=MEAN, element=list(elements))
    return mse.to_pandas().T.rename_axis(columns=None).reset_index()


def showcase_element(scores: xr.Dataset, elements: Sequence[str], better: str = "axs",
                     worse: str = "cnn") -> str | None:
    """Figure 2's element: where ``better`` gains most over ``worse``, measured in units of the
    training-fold mean predictor's MSE, among the elements where ``better`` beats that predictor.
    Without ``worse`` in ``scores``, the mean predictor stands in for it. None when there is no such element."""
    worse = worse if worse in scores["model"] else MEAN
    mean = scores["mse"].sel(model=MEAN, element=list(elements))
    good = (scores["mse"].sel(model=better, element=list(elements)) / mean).to_series()
    bad = (scores["mse"].sel(model=worse, element=list(elements)) / mean).to_series()
    gain = (bad - good)[(good < 1) & (bad > good)]
    return str(gain.idxmax()) if len(gain) else None


def relative_label_efficiency(table: pd.DataFrame, variance: pd.Series, visible_below: float = 0.5
                              ) -> pd.DataFrame:
    """The label-efficiency table (n_labelled, repeat, model, element, mse) with ``relative_mse`` = MSE over
    the held-out assays' variance (1: no better than the mean), for elements of non-zero variance, and
    ``visible``: whether some model reaches a relative MSE below ``visible_below`` with the most labels
    (the elements the spectra tell something about)."""
    variance = variance[variance > np.finfo(float).tiny]
    out = table[table["element"].isin(variance.index)].copy()
    out["relative_mse"] = out["mse"] / out["element"].map(variance)
    most = out[out["n_labelled"] == out["n_labelled"].max()]
    best = most.groupby(["element", "model"])["relative_mse"].mean().groupby("element").min()
    out["visible"] = out["element"].map(best < visible_below).fillna(False).astype(bool)
    return out
