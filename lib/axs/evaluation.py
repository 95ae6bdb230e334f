"""The paper's tables and summaries from cross-validated scores (section 4, Tables 1 and 2, appendix A.1).

Scores (CV MSE and SE = SD(fold MSEs)/sqrt(k) per model and element) come
from :func:`axs.crossval.cv_scores`. An element stays in the results only if
some model's CV MSE is below that of the training-fold mean predictor; the
others are listed as removed. The error floor (a predictor that knew each
core's true mean surface composition over its orientations and calibrated it
to the assays on the training folds; needs the stand-in's truth file) is
scored the same way (:func:`axs.crossval.floor_scores`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs.crossval import FLOOR, MEAN, MSE_UNIT, out_of_fold_predictions


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
    (``surface_pct`` of the stand-in's truth file), mapped to the assay by a
    :class:`SurfaceCalibration` fitted on the training folds only: the best a
    model could do if it read the surface perfectly. Without a truth file (a
    user's own data) there is no floor.
    """
    truth_path = Path(truth_path)
    if not truth_path.exists():
        return None
    with xr.open_dataset(truth_path, engine="netcdf4") as truth:
        surface = truth["surface_pct"].load()
    x = (surface.mean("orientation").sel(sample=measured["sample"], element=measured["element"])
         .transpose("sample", "element"))
    y = measured.transpose("sample", "element")
    predicted = out_of_fold_predictions(lambda _: SurfaceCalibration(), x.to_numpy(), y.to_numpy(),
                                        folds.to_numpy())
    return y.copy(data=predicted)


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
