"""Scores and the paper's tables from out-of-fold predictions (section 4, Tables 1 and 2, appendix A.1).

Scores: the fold error is the mean squared error over the fold's held-out samples,

    CV_j = mean_s (y_se - y'_se)^2        (wt%^2)

the cross-validation error is their mean, CV = mean_j CV_j, and its standard
error is SE = SD{CV_1..CV_k} / sqrt(k) with the sample standard deviation
(ddof = 1). A model that gives NaN for an element (LR without a usable K-L3
line) is "not applicable" there: its MSE and SE are NaN. The training-fold mean
predictor (model :data:`MEAN`) is scored alongside every model.

Missing assays: a NaN target (a blank cell, "not analysed") is left out of
every mean above, element by element, so the CV_j of an element is over the
held-out samples that have a value for it.

Which elements are scored (:func:`unscorable_elements`, then
:func:`removed_elements`): an element needs at least :data:`MIN_VALUES`
measured values (reported numbers: not blank, not censored), values that vary,
and at least :data:`MIN_VALUES_PER_FOLD` non-blank values in every fold;
and, once scored, some model's CV MSE below the training-fold mean
predictor's. The others are listed as removed with the reason. Ratios of
MSEs (relative MSE) are NaN where the denominator is below
:data:`MIN_MSE_PCT2`, never a division by ~0. The ``floor`` row, the
assay-and-heterogeneity reference (each core's true mean surface composition
over its orientations, calibrated to the assays on the training folds; needs
the stand-in's truth file), is scored the same way (:func:`floor_scores`), and
so are the references of :mod:`axs.references`. The floor holds grain
counting (surface against bulk), assay noise and the per-core digestion
recovery; it is not a bound: a model that learns rock types can beat it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs import dataset, model_registry, reconstruction_scores
from axs.crossval import HISTORY_FILE, PREDICTIONS_FILE, out_of_fold_predictions
from axs.dataset import NETCDF_ENGINE
from axs.intervals import DEFAULT_LEVEL, conformal_intervals, conformity_scores

#: Name of the training-fold mean predictor and of the error floor in the score tables.
MEAN, FLOOR = "mean", "floor"
MSE_UNIT = "wt%^2"

#: Fewest measured (not blank, not censored) values an element needs to be scored.
MIN_VALUES = 20
#: Fewest non-blank values an element needs in every cross-validation fold (so every CV_j exists).
MIN_VALUES_PER_FOLD = 1
#: An MSE below this (wt%^2; an RMS error of 1e-6 ppm, far below any assay's resolution) counts as
#: zero: a ratio over it is NaN. Guards every relative MSE against a constant (e.g. fully censored) target.
MIN_MSE_PCT2 = 1e-20
#: CV MSEs within this relative difference are a tie for the best model (the tables print four figures):
#: identical models differ by round-off (a path model that fell back on the scatter normalisation: 3e-6).
TIE_RTOL = 1e-4
#: Relative spread (max - min over max |value|) at or below which an element's values count as constant.
ZERO_VARIANCE_RTOL = 1e-9


class TrainingMeanPredictor:
    """Predicts, for every sample, the per-element mean of the training targets (the paper's baseline of removal)."""

    def fit(self, X, Y, **_):
        with warnings.catch_warnings():      # an element without values in the training folds: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean_ = np.nanmean(np.asarray(Y, dtype=np.float64), axis=0)
        return self

    def predict(self, X):
        return np.broadcast_to(self.mean_, (len(X), len(self.mean_))).copy()


def fold_mse(measured: np.ndarray, predicted: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """CV_j per fold and element, (k, n_elements), wt%^2, over the held-out samples that have a
    measured value (NaN targets are left out); NaN where a prediction for such a sample is NaN
    (model not applicable) or the fold has no value for the element."""
    folds = np.asarray(folds)
    y = np.asarray(measured, dtype=np.float64)
    has = np.isfinite(y)
    squared = np.where(has, (np.asarray(predicted, dtype=np.float64) - np.where(has, y, 0.0)) ** 2, 0.0)
    out = []
    for j in np.unique(folds):
        n = has[folds == j].sum(axis=0)
        total = squared[folds == j].sum(axis=0)          # NaN if any prediction for a valued sample is NaN
        out.append(np.divide(total, n, out=np.full(total.shape, np.nan), where=n > 0))
    return np.stack(out)


def cv_scores(measured: xr.DataArray, predicted: xr.DataArray, folds: xr.DataArray) -> xr.Dataset:
    """``mse`` and ``se`` (model, element) from out-of-fold predictions (model, sample, element).

    The training-fold mean predictor is added as model :data:`MEAN`. NaN
    targets are left out per element (:func:`fold_mse`).
    """
    y = measured.transpose("sample", "element").to_numpy()
    k = folds.to_numpy()
    mean_pred = out_of_fold_predictions(lambda _: TrainingMeanPredictor(), y, y, k)
    models = list(predicted["model"].to_numpy()) + [MEAN]
    per_fold = np.stack([fold_mse(y, predicted.sel(model=m).transpose("sample", "element").to_numpy(), k)
                         for m in models[:-1]] + [fold_mse(y, mean_pred, k)])
    return _summarise(per_fold, models, measured["element"].to_numpy())


def floor_scores(measured: xr.DataArray, floor_predicted: xr.DataArray, folds: xr.DataArray,
                 name: str = FLOOR) -> xr.Dataset:
    """``mse`` and ``se`` of the error floor (model :data:`FLOOR`), or of another reference row ``name``
    (:mod:`axs.references`), scored on the same folds."""
    y = measured.transpose("sample", "element").to_numpy()
    p = floor_predicted.sel(sample=measured["sample"], element=measured["element"]).transpose("sample", "element")
    per_fold = fold_mse(y, p.to_numpy(), folds.to_numpy())[None]
    return _summarise(per_fold, [name], measured["element"].to_numpy())


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
        """Least squares per element over the samples whose assay ``Y`` is not NaN (not analysed)."""
        x, y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        w = np.isfinite(y).astype(np.float64)
        n = np.maximum(w.sum(axis=0), 1.0)
        y = np.where(w > 0, y, 0.0)
        x_mean, y_mean = (x * w).sum(axis=0) / n, (y * w).sum(axis=0) / n
        dx, dy = (x - x_mean) * w, (y - y_mean) * w
        var = (dx * dx).sum(axis=0)
        self.slope_ = np.divide((dx * dy).sum(axis=0), var, out=np.zeros_like(var), where=var > 0)
        self.intercept_ = y_mean - self.slope_ * x_mean
        return self

    def predict(self, X):
        return self.intercept_ + self.slope_ * np.asarray(X, dtype=np.float64)


def floor_predictions(truth_path: str | Path, measured: xr.DataArray, folds: xr.DataArray) -> xr.DataArray | None:
    """Out-of-fold error-floor predictions (sample, element), wt%; None without a truth file.

    Each core's true surface composition averaged over its orientations
    (``surface_pct`` of the truth that ``prepare`` copied from the stand-in's
    truth file, :func:`axs.dataset.prepare_truth`), mapped to the assay by a
    :class:`SurfaceCalibration` fitted on the training folds only: the
    assay-and-heterogeneity reference, what one line per element makes of a
    perfectly read surface. It is not the best a model could do: a model that
    learns rock types can beat it (:mod:`axs.references`). Without a truth file
    (a user's own data) there is no floor.
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


def unscorable_elements(measured: xr.DataArray, censored: xr.DataArray, folds: xr.DataArray,
                        min_values: int = MIN_VALUES,
                        min_values_per_fold: int = MIN_VALUES_PER_FOLD) -> pd.DataFrame:
    """Elements that cannot be scored, before any model runs: a frame ``element, reason, n_values``.

    ``measured`` (sample, element) in wt%, NaN where not analysed; ``censored``
    (sample, element) -1/0/+1 as in the dataset; ``folds`` (sample). The first
    reason that applies is given: ``no values`` (every cell blank), ``fully
    censored`` (no measured value), ``too few values (n<MIN)`` (fewer than
    ``min_values`` measured values), ``zero variance`` (the non-blank values,
    censored ones imputed, are all equal), ``fewer than M values in fold j``.
    ``n_values`` counts the measured values.
    """
    y = measured.transpose("sample", "element").to_numpy().astype(np.float64)
    flag = censored.transpose("sample", "element").to_numpy()
    k = folds.sel(sample=measured["sample"]).to_numpy()
    has = np.isfinite(y)
    rows = []
    for e, element in enumerate(measured["element"].to_numpy().tolist()):
        values = y[has[:, e], e]
        n_measured = int((has[:, e] & (flag[:, e] == 0)).sum())
        per_fold = {int(j): int(has[k == j, e].sum()) for j in np.unique(k)}
        short = [j for j, n in per_fold.items() if n < min_values_per_fold]
        if not len(values):
            reason = "no values"
        elif n_measured == 0:
            reason = "fully censored"
        elif n_measured < min_values:
            reason = f"too few values (n={n_measured}<{min_values})"
        elif np.ptp(values) <= ZERO_VARIANCE_RTOL * np.max(np.abs(values)):
            reason = "zero variance"
        elif short:
            reason = f"fewer than {min_values_per_fold} values in fold {short[0]}"
        else:
            continue
        rows.append((element, reason, n_measured))
    return pd.DataFrame(rows, columns=["element", "reason", "n_values"])


def families_from_truth(truth_path: str | Path, samples: xr.DataArray) -> xr.DataArray | None:
    """The stand-in's rock type of each sample (``rock_type`` of its truth file) as a family for
    :func:`family_scores`, or None without a truth file. For reporting only: never a model input."""
    truth_path = Path(truth_path)
    if not truth_path.exists():
        return None
    with xr.open_dataset(truth_path, engine="netcdf4") as truth:
        if "rock_type" not in truth:
            return None
        return truth["rock_type"].sel(sample=samples).load().rename("family")


def truth_surface(truth_path: str | Path, samples: xr.DataArray) -> xr.DataArray:
    """The true mean surface composition (sample, element), wt%, from the prepared truth (stand-in only)."""
    with xr.open_dataset(truth_path, engine="netcdf4") as truth:
        return truth["surface_pct"].sel(sample=samples).load()


def sample_families(ds: xr.Dataset, truth_path: str | Path) -> xr.DataArray:
    """Each sample's family for reporting: the dataset's ``family`` coordinate when the data give one
    (``samples.csv``), else the stand-in's rock type (:func:`families_from_truth`), else ``all``."""
    if "family" in ds.coords and (ds["family"].astype(str) != "").all():
        return ds["family"].astype(str)
    from_truth = families_from_truth(truth_path, ds["sample"])
    if from_truth is not None:
        return from_truth.astype(str)
    return xr.DataArray(np.full(ds.sizes["sample"], "all"), coords={"sample": ds["sample"]}, dims="sample",
                        name="family")


def kept_and_removed(scores: xr.Dataset, models: Sequence[str]) -> tuple[list[str], list[str]]:
    """Elements where some model beats the training-fold mean predictor, and those where none does
    (including those where the mean predictor's MSE is NaN or below :data:`MIN_MSE_PCT2`)."""
    best = scores["mse"].sel(model=list(models)).min("model", skipna=True)
    mean = scores["mse"].sel(model=MEAN)
    beats = ((best < mean) & (mean >= MIN_MSE_PCT2)).to_numpy()
    elements = scores["element"].to_numpy().tolist()
    return ([e for e, b in zip(elements, beats) if b], [e for e, b in zip(elements, beats) if not b])


def removed_elements(scores: xr.Dataset, models: Sequence[str],
                     unscorable: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every removed element with its reason: ``element, reason`` (the ``removed_elements`` table).

    ``unscorable`` (from :func:`unscorable_elements`) comes first; then the
    scored elements of ``scores`` where no model beats the training-fold mean
    predictor (``no model beats the mean``).
    """
    rows = [] if unscorable is None else list(zip(unscorable["element"], unscorable["reason"]))
    done = {e for e, _ in rows}
    rows += [(e, "no model beats the mean") for e in kept_and_removed(scores, models)[1] if e not in done]
    return pd.DataFrame(rows, columns=["element", "reason"])


def relative_mse(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> xr.DataArray:
    """MSE over the training-fold mean predictor's MSE (model, element); NaN where that is below
    :data:`MIN_MSE_PCT2` (a constant target) or NaN, so no ratio divides by ~0."""
    mse = scores["mse"].sel(model=list(models), element=list(elements))
    mean = scores["mse"].sel(model=MEAN, element=list(elements))
    return mse / mean.where(mean >= MIN_MSE_PCT2)


def family_scores(measured: xr.DataArray, predicted: xr.DataArray, folds: xr.DataArray,
                  family: xr.DataArray) -> xr.Dataset:
    """Scores within each rock/matrix family, from the same out-of-fold predictions.

    A family's samples are spread over the folds, so its MSE pools the
    squared errors of its samples (NaN targets left out): ``mse`` is their
    mean, ``se`` their standard deviation (ddof = 1) over sqrt(n), ``n`` the
    number of values, and ``r`` the Pearson correlation of prediction with
    assay within the family (NaN with fewer than 3 values or a constant side),
    which shows whether a model learns within a family or only separates the
    families. Dimensions (model, family, element); the training-fold mean
    predictor is added as :data:`MEAN`. ``family`` (sample): e.g. the
    dataset's ``family`` coordinate, or the stand-in's rock type from its truth
    file (for reporting only).
    """
    y = measured.transpose("sample", "element").to_numpy().astype(np.float64)
    k = folds.sel(sample=measured["sample"]).to_numpy()
    fam = family.sel(sample=measured["sample"]).to_numpy().astype(str)
    mean_pred = out_of_fold_predictions(lambda _: TrainingMeanPredictor(), y, y, k)
    models = list(predicted["model"].to_numpy()) + [MEAN]
    preds = [predicted.sel(model=m, sample=measured["sample"]).transpose("sample", "element").to_numpy()
             for m in models[:-1]] + [mean_pred]
    families = sorted(set(fam))
    shape = (len(models), len(families), y.shape[1])
    mse, se, r = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    n = np.zeros(shape[1:], dtype=np.int64)
    for f, name in enumerate(families):
        for e in range(y.shape[1]):
            rows = (fam == name) & np.isfinite(y[:, e])
            n[f, e] = rows.sum()
            if not rows.any():
                continue
            for m, p in enumerate(preds):
                err = (p[rows, e] - y[rows, e]) ** 2
                mse[m, f, e] = err.mean()
                se[m, f, e] = err.std(ddof=1) / np.sqrt(len(err)) if len(err) > 1 else np.nan
                if len(err) >= 3 and np.ptp(p[rows, e]) > 0 and np.ptp(y[rows, e]) > 0:
                    r[m, f, e] = np.corrcoef(p[rows, e], y[rows, e])[0, 1]
    coords = {"model": models, "family": families, "element": measured["element"].to_numpy().tolist()}
    return xr.Dataset({"mse": (("model", "family", "element"), mse, {"units": MSE_UNIT}),
                       "se": (("model", "family", "element"), se, {"units": MSE_UNIT}),
                       "r": (("model", "family", "element"), r),
                       "n": (("family", "element"), n)}, coords=coords)


def family_table(fscores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """:func:`family_scores` in long form: ``family, element, model, n, mse, se, r, unit``."""
    rows = [(f, e, m, int(fscores["n"].sel(family=f, element=e)),
             *(float(fscores[v].sel(model=m, family=f, element=e)) for v in ("mse", "se", "r")), MSE_UNIT)
            for f in fscores["family"].to_numpy().tolist() for e in elements for m in [*models, MEAN]]
    return pd.DataFrame(rows, columns=["family", "element", "model", "n", "mse", "se", "r", "unit"])


def best_model(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.Series:
    """The model with the lowest CV MSE for each element; models within :data:`TIE_RTOL` of it tie, and a tie
    goes to the first model listed (on the measured set ``lasso_path`` is ``lasso_scatter`` up to round-off)."""
    mse = scores["mse"].sel(model=list(models), element=list(elements)).to_pandas().fillna(np.inf)
    return (mse <= mse.min(axis=0) * (1.0 + TIE_RTOL)).idxmax(axis=0).rename("best")


def mse_over_best(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """(model, element): each model's CV MSE over the best model's on that element (1 for the best); the direct
    fit's targets read it (within 1.2x of the best on five of the visible elements)."""
    mse = scores["mse"].sel(model=list(models), element=list(elements)).to_pandas()
    return mse / mse.min(axis=0).where(mse.min(axis=0) >= MIN_MSE_PCT2)


def table1(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Table 1: for each model (in order) the elements where it has the best MSE, space-separated."""
    best = best_model(scores, models, elements)
    return pd.DataFrame({"model": list(models),
                         "best_on": [" ".join(e for e in elements if best[e] == m) for m in models]})


def table2(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Table 2 in long form: element, model, mse, se, unit, for each kept element and model.

    The reference rows follow the models when ``scores`` has them (the floor, then those of
    :mod:`axs.references`); a model not applicable to an element has empty mse and se.
    """
    names = list(models) + reference_rows(scores, models)
    rows = [(e, m, float(scores["mse"].sel(model=m, element=e)), float(scores["se"].sel(model=m, element=e)),
             MSE_UNIT) for e in elements for m in names]
    return pd.DataFrame(rows, columns=["element", "model", "mse", "se", "unit"])


def reference_rows(scores: xr.Dataset, models: Sequence[str]) -> list[str]:
    """The reference rows of ``scores`` that are not in ``models``: the floor first, then those whose name
    contains ``oracle`` or ``reference`` (:mod:`axs.references`), in their order."""
    others = [m for m in scores["model"].to_numpy().tolist() if m not in set(models)
              and (m == FLOOR or "oracle" in m or "reference" in m)]
    return sorted(others, key=lambda m: m != FLOOR)


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
    relative = relative_mse(scores, models, elements)
    out = {}
    for m in models:
        mse = scores["mse"].sel(model=m, element=list(elements))
        ok = np.isfinite(mse.to_numpy())
        rel = relative.sel(model=m).to_numpy()
        rel = rel[np.isfinite(rel)]
        out[m] = {"mean_mse": float(mse.to_numpy()[ok].mean()) if ok.any() else float("nan"),
                  "mean_relative_mse": float(rel.mean()) if len(rel) else float("nan"),
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
    names = list(models) + reference_rows(scores, models)
    mse = relative_mse(scores, names, elements) if relative else scores["mse"].sel(model=names, element=list(elements))
    return mse.to_pandas().T.rename_axis(columns=None).reset_index()


def target_ratios(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Per element (rows, in order): the best model, its MSE over the floor's (NaN without a floor), and
    for each network (every model that is not LR, LASSO or PyMca, any normalisation) its MSE over the best
    linear model's: the issue's targets, measured (a ratio over an MSE of about 0 is NaN, never formed).
    Linear: the registry's linear and peak-fit models (:func:`axs.model_registry.is_linear`)."""
    mse = scores["mse"].sel(model=list(models), element=list(elements)).to_pandas()
    linear = [m for m in models if model_registry.is_linear(m)]
    best = best_model(scores, models, elements)
    out = pd.DataFrame({"best": best})
    floor = (scores["mse"].sel(model=FLOOR, element=list(elements)).to_pandas() if FLOOR in scores["model"]
             else pd.Series(np.nan, index=list(elements)))
    best_mse = pd.Series([mse.loc[best[e], e] for e in elements], index=list(elements))
    out["best_over_floor"] = best_mse / floor.where(floor >= MIN_MSE_PCT2)
    best_linear = mse.loc[linear].min(axis=0) if linear else pd.Series(np.nan, index=list(elements))
    for m in models:
        if m not in linear:
            out[f"{m}_over_best_linear"] = mse.loc[m] / best_linear.where(best_linear >= MIN_MSE_PCT2)
    return out.rename_axis("element")


def decoder_pairs(models: Sequence[str]) -> dict[str, str]:
    """Each decoder model of ``models`` -> the CNN with its encoder and input
    (:func:`axs.model_registry.cnn_counterpart`: ``axs_scatter`` -> ``cnn_scatter``), where that is among
    ``models`` too; names that are not models (``mean``, ``floor``) are skipped."""
    pairs = {}
    for model in models:
        if model_registry.has_decoder(model):
            cnn = model_registry.cnn_counterpart(model)
            if cnn in models:
                pairs[model] = cnn
    return pairs


def decoder_vs_cnn(scores: xr.Dataset, models: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """Each decoder model against the CNN with its encoder and input (:func:`decoder_pairs`), per element:
    ``model, cnn, element, mse, cnn_mse, combined_se`` and ``verdict``: ``better``/``worse`` when the MSEs
    differ by more than one combined SE (sqrt(SE1^2 + SE2^2)), else ``tie``."""
    rows = []
    for model, cnn in decoder_pairs(models).items():
        for e in elements:
            a, b = (float(scores["mse"].sel(model=m, element=e)) for m in (model, cnn))
            se = float(np.hypot(scores["se"].sel(model=model, element=e), scores["se"].sel(model=cnn, element=e)))
            verdict = "better" if b - a > se else "worse" if a - b > se else "tie"
            rows.append((model, cnn, e, a, b, se, verdict))
    return pd.DataFrame(rows, columns=["model", "cnn", "element", "mse", "cnn_mse", "combined_se", "verdict"])


def decoder_vs_cnn_paired(measured: xr.DataArray, predicted: xr.DataArray, models: Sequence[str],
                          elements: Sequence[str]) -> pd.DataFrame:
    """Each decoder model against the CNN with its encoder and input, per element, paired over the cores
    (:func:`axs.comparisons.paired_interval` on per-core squared errors of the out-of-fold predictions):
    ``model, cnn, element, mse, cnn_mse, diff`` (model minus CNN, wt%^2), ``lo, hi`` (its 95 % interval) and
    ``verdict``: ``better``/``worse`` when the interval excludes 0, else ``tie``."""
    from axs.comparisons import paired_interval, squared_errors

    rows = []
    y = measured.sel(element=list(elements)).transpose("sample", "element")
    for model, cnn in decoder_pairs(models).items():
        errors = [pd.DataFrame(squared_errors(y, predicted.sel(model=m, element=list(elements))
                                              .transpose("sample", "element")), columns=list(elements))
                  for m in (model, cnn)]
        t = paired_interval(*errors)
        verdict = np.where(t["hi"] < 0, "better", np.where(t["lo"] > 0, "worse", "tie"))
        rows.append(pd.DataFrame({"model": model, "cnn": cnn, "element": t.index, "mse": t["a"], "cnn_mse": t["b"],
                                  "diff": t["diff"], "lo": t["lo"], "hi": t["hi"], "verdict": verdict}))
    columns = ["model", "cnn", "element", "mse", "cnn_mse", "diff", "lo", "hi", "verdict"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def headline_comparisons(measured: xr.DataArray, predicted: xr.DataArray, models: Sequence[str],
                         elements: Sequence[str], reference: str = "lasso_scatter") -> pd.DataFrame:
    """The comparisons the README states, paired over the cores: each core's squared errors over the held-out
    variance, averaged over ``elements`` (:func:`axs.comparisons.relative_squared_errors`; their mean over the
    cores is the mean relative MSE). Each decoder model against its CNN (:func:`decoder_pairs`), then every
    other model against ``reference`` when it was trained. Columns ``model, against, mean_relative_mse,
    against_mean_relative_mse, diff`` (model minus against), ``lo, hi`` (95 % interval), ``n`` (cores)."""
    from axs.comparisons import paired_interval, relative_squared_errors

    elements = list(elements)
    y = measured.sel(element=elements).transpose("sample", "element").to_numpy()
    variance = np.nanvar(y, axis=0)
    per_core = {m: relative_squared_errors(y, predicted.sel(model=m, element=elements)
                                           .transpose("sample", "element").to_numpy(), variance) for m in models}
    pairs = list(decoder_pairs(models).items())
    pairs += [(m, reference) for m in models if reference in models and m != reference]
    rows = []
    for a, b in pairs:
        t = paired_interval(per_core[a], per_core[b]).iloc[0]
        rows.append((a, b, t["a"], t["b"], t["diff"], t["lo"], t["hi"], int(t["n"])))
    return pd.DataFrame(rows, columns=["model", "against", "mean_relative_mse", "against_mean_relative_mse",
                                       "diff", "lo", "hi", "n"])


def showcase_element(scores: xr.Dataset, elements: Sequence[str], better: str = "axs",
                     worse: str = "cnn") -> str | None:
    """Figure 2's element: among the elements where ``better`` beats the training-fold mean predictor
    and beats ``worse`` by more than one combined standard error (MSE_worse - MSE_better >
    sqrt(SE_better^2 + SE_worse^2)), the one where the gain is largest in units of the mean predictor's
    MSE. Without ``worse`` in ``scores``, the mean predictor stands in for it. None when no element
    qualifies (the report then says there is none); NaN scores (e.g. a ~0 mean predictor MSE) never do."""
    worse = worse if worse in scores["model"] else MEAN
    elements = list(elements)
    rel = relative_mse(scores, [better, worse], elements)
    good, bad = rel.sel(model=better).to_series(), rel.sel(model=worse).to_series()
    mse = scores["mse"].sel(element=elements)
    se = scores["se"].sel(element=elements)
    margin = (mse.sel(model=worse) - mse.sel(model=better)).to_series()
    combined = np.sqrt(se.sel(model=better) ** 2 + se.sel(model=worse) ** 2).to_series()
    gain = (bad - good)[(good < 1) & (margin > combined)]
    return str(gain.idxmax()) if len(gain) else None


def relative_label_efficiency(table: pd.DataFrame, variance: pd.Series, visible: Sequence[str]) -> pd.DataFrame:
    """The label-efficiency table (n_labelled, repeat, model, element, mse) with ``relative_mse`` = MSE over
    the held-out assays' variance (1: no better than the mean), for elements of non-zero variance, and
    ``visible``: whether the element is one of ``visible`` (the well-visible elements the figure shows)."""
    variance = variance[variance > np.finfo(float).tiny]
    out = table[table["element"].isin(variance.index)].copy()
    out["relative_mse"] = out["mse"] / out["element"].map(variance)
    out["visible"] = out["element"].isin(list(visible))
    return out


# -- reading what the training stages wrote ------------------------------------------------------
def predictions_path(artifacts_dir: str | Path, model: str) -> Path:
    """Where a model's out-of-fold predictions live: ``train/<model>/predictions.nc`` of a dataset's artifacts."""
    return Path(artifacts_dir) / "train" / model / PREDICTIONS_FILE


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


def single_live_times(ds: xr.Dataset) -> np.ndarray:
    """(m,) live time in s of each row of :func:`axs.dataset.single_spectra` (NaN where a file gave none, or the prepared
    dataset predates ``measurement_live_time_s``)."""
    sample_position, orientation_position = dataset.measured_cells(ds)
    if "measurement_live_time_s" not in ds:
        return np.full(len(sample_position), np.nan)
    live = ds["measurement_live_time_s"].transpose("sample", "orientation").to_numpy()
    return live[sample_position, orientation_position]


def mean_spectrum_variance(ds: xr.Dataset) -> np.ndarray:
    """(samples, channels) Poisson variance ((counts/s)^2) of each sample's ``spectrum_cps``, the mean of its
    measured orientations (:func:`axs.reconstruction_scores.rate_variance`); from ``spectrum_cps`` and
    ``live_time_s`` for a dataset prepared without single measurements. NaN where a live time is unknown."""
    if "measurement_cps" in ds and "measurement_live_time_s" in ds:
        return reconstruction_scores.rate_variance(
            ds["measurement_cps"].transpose("sample", "orientation", "channel").to_numpy(),
            ds["measurement_live_time_s"].transpose("sample", "orientation").to_numpy())
    spectrum = ds["spectrum_cps"].transpose("sample", "channel").to_numpy()
    return reconstruction_scores.rate_variance(spectrum[:, None], ds["live_time_s"].to_numpy()[:, None])


def load_decoder_outputs(artifacts_dir: str | Path, models: Sequence[str], variable: str) -> dict[str, xr.DataArray]:
    """A variable only decoder models write to ``predictions.nc`` (``reconstruction_cps`` (sample, channel),
    counts/s; ``theta`` (sample, theta_element)), for each model of ``models`` that has it."""
    out = {}
    for model in models:
        with xr.open_dataset(predictions_path(artifacts_dir, model), engine=NETCDF_ENGINE) as p:
            if variable in p:
                out[model] = p[variable].load()
    return out


def load_histories(artifacts_dir: str | Path, models: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per-fold training curves (``training_history.csv``: fold, epoch, series) of the models that keep them."""
    out = {}
    for model in models:
        path = predictions_path(artifacts_dir, model).with_name(HISTORY_FILE)
        if path.exists():
            out[model] = pd.read_csv(path)
    return out


def interval_coverage(Y: np.ndarray, predicted: np.ndarray, folds: np.ndarray, elements: Sequence[str],
                      model: str, level: float = DEFAULT_LEVEL, spectra: str = "average") -> pd.DataFrame:
    """Empirical coverage per element on held-out folds: columns ``element, model, level, spectra, coverage``.

    ``predicted`` are out-of-fold predictions of ``Y`` (n, elements); for each
    fold j, intervals for fold j's cores are calibrated on the residuals of the
    other folds' cores, and coverage is the share of all cores whose assay
    lies inside its interval (cores whose assay is blank are left out). NaN for an element the model does
    not predict. ``spectra`` names what was predicted (``average``: a sample's averaged
    measurements; ``single``: one measurement per row, :func:`single_spectrum_coverage`).
    """
    Y = np.asarray(Y, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    folds = np.asarray(folds)
    scores = conformity_scores(Y, predicted)
    inside = np.full(Y.shape, np.nan)
    for j in np.unique(folds):
        test = folds == j
        lower, upper = conformal_intervals(predicted[test], list(scores[~test].T), level)
        known = np.isfinite(lower) & np.isfinite(Y[test])     # a blank assay (not analysed) is not counted
        inside[test] = np.where(known, (Y[test] >= lower) & (Y[test] <= upper), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: elements the model does not predict
        coverage = np.nanmean(inside, axis=0)
    return pd.DataFrame({"element": list(elements), "model": model, "level": float(level), "spectra": spectra,
                         "coverage": coverage})


def single_spectrum_coverage(Y: np.ndarray, predicted_single: np.ndarray, sample_position: np.ndarray,
                             folds: np.ndarray, elements: Sequence[str], model: str,
                             level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """:func:`interval_coverage` of single measurements: ``predicted_single`` (m, elements) out-of-fold
    predictions of each measurement on its own, ``sample_position`` (m,) its sample's row in ``Y`` (n,
    elements) and ``folds`` (n,). Intervals for fold j's measurements are calibrated on the single-measurement
    residuals of the other folds (what a bundle stores as ``scores_single_pct``)."""
    position = np.asarray(sample_position)
    return interval_coverage(np.asarray(Y)[position], predicted_single, np.asarray(folds)[position], elements,
                             model, level, spectra="single")
