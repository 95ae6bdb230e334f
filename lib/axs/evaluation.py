"""The paper's tables and summaries from cross-validated scores (section 4, Tables 1 and 2, appendix A.1).

Scores (CV MSE and SE = SD(fold MSEs)/sqrt(k) per model and element) come
from :func:`axs.crossval.cv_scores`. An element stays in the results only if
some model's CV MSE is below that of the training-fold mean predictor; the
others are listed as removed. The error floor (a predictor that knew each
core's true mean surface composition over its orientations; needs the
stand-in's truth file) is scored the same way (:func:`axs.crossval.floor_scores`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs.crossval import FLOOR, MEAN, MSE_UNIT


def floor_predictions(truth_path: str | Path, samples: Sequence[str]) -> xr.DataArray | None:
    """Each core's true surface composition averaged over its orientations (sample, element), wt%.

    Read from the stand-in's truth file (``surface_pct`` over sample,
    orientation, element); None when there is no truth file (a user's own data).
    """
    truth_path = Path(truth_path)
    if not truth_path.exists():
        return None
    with xr.open_dataset(truth_path, engine="netcdf4") as truth:
        surface = truth["surface_pct"].load()
    return surface.mean("orientation").sel(sample=list(samples))


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
