"""Paired comparisons of two models with 95 % intervals: every comparison the compendium reports goes here.

Two models compared on the same units (held-out cores, or whole training runs of a repeated study) give
paired values a_i, b_i; the difference d_i = a_i - b_i removes what the units share (a hard core is hard
for both), so the interval of the mean difference is much narrower than the two separate errors suggest:

    mean(d) +- t_{0.975, m-1} * sd(d) / sqrt(m)        (m units with a finite difference)

(Student's t; over tens of cores the mean of the skewed squared-error differences is close enough to normal,
and the test suite checks the coverage on synthetic data). Units whose difference is NaN (an element the lab
did not report for that core) are left out, per column.

Per-core inputs are squared errors (:func:`squared_errors`) or their mean relative to each element's variance
(:func:`relative_squared_errors`): the mean over cores of the first is the MSE of paper section 4, of the second
the mean relative MSE over a set of elements that the figures show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: The coverage of every interval the compendium reports.
LEVEL = 0.95


def paired_interval(a, b, level: float = LEVEL) -> pd.DataFrame:
    """Mean paired difference a - b over units (axis 0) with its ``level`` interval, per column.

    ``a``, ``b``: (units,) or (units, columns), the same units in the same order (a DataFrame's columns name
    the rows of the result). Returns a DataFrame indexed by column with ``a``, ``b`` (means over the units
    with both values), ``diff``, ``lo``, ``hi`` and ``n`` (units used); ``lo``/``hi`` are NaN with fewer than
    two units.
    """
    columns = a.columns if isinstance(a, pd.DataFrame) else None
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_interval: a and b must hold the same units, got shapes {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    d = a - b
    both = np.isfinite(d)
    n = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(np.where(both, d, 0.0), axis=0) / np.maximum(n, 1), np.nan)
        squares = np.nansum(np.where(both, (d - mean) ** 2, 0.0), axis=0)
        sd = np.where(n > 1, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)
        half = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n), np.nan)
        mean_a = np.nansum(np.where(both, a, 0.0), axis=0) / np.maximum(n, 1)
        mean_b = np.nansum(np.where(both, b, 0.0), axis=0) / np.maximum(n, 1)
    out = pd.DataFrame({"a": np.where(n > 0, mean_a, np.nan), "b": np.where(n > 0, mean_b, np.nan),
                        "diff": mean, "lo": mean - half, "hi": mean + half, "n": n},
                       index=columns if columns is not None else pd.RangeIndex(d.shape[1]))
    return out


def squared_errors(Y, predicted) -> np.ndarray:
    """Per-core, per-element squared errors (predicted - Y)^2 (cores, elements), NaN where Y is unreported."""
    return (np.asarray(predicted, dtype=np.float64) - np.asarray(Y, dtype=np.float64)) ** 2


def relative_squared_errors(Y, predicted, variance, columns=None) -> np.ndarray:
    """Per-core mean over elements (``columns`` of them, indices; all if None) of the squared error divided by
    the element's ``variance`` (the mean predictor's MSE): (cores,). Its mean over cores is the mean relative MSE."""
    err = squared_errors(Y, predicted) / np.asarray(variance, dtype=np.float64)
    if columns is not None:
        err = err[:, np.asarray(columns)]
    with np.errstate(invalid="ignore"):
        return np.nanmean(err, axis=1)


def versus(errors: dict, reference: str, level: float = LEVEL) -> pd.DataFrame:
    """Each entry of ``errors`` ({name: per-core errors (cores,) or a (cores, element) DataFrame}) against
    ``reference``'s, paired over cores: long table name, [element,] mse (the name's mean), diff (name minus
    reference), lo, hi, n. The reference itself comes first with diff 0."""
    rows = []
    for name, values in errors.items():
        table = paired_interval(values, errors[reference], level).rename(columns={"a": "mse"}).drop(columns="b")
        table.insert(0, "model", name)
        rows.append(table)
    out = pd.concat(rows)
    if isinstance(errors[reference], pd.DataFrame):
        out = out.rename_axis("element").reset_index()
        return out[["model", "element", "mse", "diff", "lo", "hi", "n"]]
    return out.reset_index(drop=True)


def run_units(table: pd.DataFrame, variance: pd.Series, elements, value: str = "mse") -> pd.DataFrame:
    """A repeated study's per-run table (columns model, n_labelled, n_unlabelled, repeat, fold, element,
    ``value``) reduced to one number per run: the mean over ``elements`` of ``value`` / the element's
    ``variance`` (the mean relative MSE). Returns model, n_labelled, n_unlabelled, repeat, fold, relative_mse."""
    part = table[table["element"].isin(list(elements))].copy()
    part["relative_mse"] = part[value] / part["element"].map(variance)
    keys = ["model", "n_labelled", "n_unlabelled", "repeat", "fold"]
    return part.groupby(keys, as_index=False)["relative_mse"].mean()


def pool_effect(units: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Each (model, n_labelled, n_unlabelled > 0) against the same model without a pool, paired over the
    runs (repeat, fold) they share (same labelled cores, same seed, same test fold; :func:`run_units`):
    model, n_labelled, n_unlabelled, relative_mse, no_pool, diff (pool minus none), lo, hi, n (runs)."""
    rows = []
    keyed = units.set_index(["repeat", "fold"])
    for (model, n), part in keyed.groupby(["model", "n_labelled"]):
        none = part[part["n_unlabelled"] == 0]["relative_mse"]
        for u, pooled in part[part["n_unlabelled"] > 0].groupby("n_unlabelled"):
            both = pooled["relative_mse"].to_frame("pool").join(none.rename("none"), how="inner")
            if both.empty:
                continue
            t = paired_interval(both["pool"].to_numpy(), both["none"].to_numpy(), level).iloc[0]
            rows.append({"model": model, "n_labelled": n, "n_unlabelled": u, "relative_mse": t["a"],
                         "no_pool": t["b"], "diff": t["diff"], "lo": t["lo"], "hi": t["hi"], "n": int(t["n"])})
    return pd.DataFrame(rows, columns=["model", "n_labelled", "n_unlabelled", "relative_mse", "no_pool", "diff",
                                       "lo", "hi", "n"])


def versus_model(units: pd.DataFrame, reference: str, level: float = LEVEL) -> pd.DataFrame:
    """Each (model, n_labelled, n_unlabelled) against ``reference`` without a pool at the same number of
    labelled cores, paired over the runs (repeat, fold) both made (same labelled cores, same seed, same test
    fold; :func:`run_units`): model, n_labelled, n_unlabelled, relative_mse, reference (its relative MSE),
    diff (model minus reference), lo, hi, n (runs)."""
    rows = []
    keyed = units.set_index(["repeat", "fold"])
    base = keyed[(keyed["model"] == reference) & (keyed["n_unlabelled"] == 0)]
    for (model, n, u), part in keyed[keyed["model"] != reference].groupby(["model", "n_labelled", "n_unlabelled"]):
        both = part["relative_mse"].to_frame("model").join(
            base.loc[base["n_labelled"] == n, "relative_mse"].rename("reference"), how="inner")
        if both.empty:
            continue
        t = paired_interval(both["model"].to_numpy(), both["reference"].to_numpy(), level).iloc[0]
        rows.append({"model": model, "n_labelled": n, "n_unlabelled": u, "relative_mse": t["a"],
                     "reference": t["b"], "diff": t["diff"], "lo": t["lo"], "hi": t["hi"], "n": int(t["n"])})
    return pd.DataFrame(rows, columns=["model", "n_labelled", "n_unlabelled", "relative_mse", "reference", "diff",
                                       "lo", "hi", "n"])


def runs_needed(sd: float, half_width: float, level: float = LEVEL) -> int:
    """Paired runs m for which the ``level`` interval of a mean difference with per-run SD ``sd`` is at most
    +-``half_width``: the least m with t_{(1+level)/2, m-1} sd / sqrt(m) <= half_width (m >= 2)."""
    m = 2
    while stats.t.ppf(0.5 + level / 2, m - 1) * sd / np.sqrt(m) > half_width:
        m += 1
    return m


def sweep_table(Y, predictions: dict, elements, reference=0.0, level: float = LEVEL) -> pd.DataFrame:
    """A setting swept per model against the model at ``reference``, per element, paired over cores:
    ``predictions`` {(model, value): (cores, elements) predictions of the same cores as ``Y``}. Returns
    model, beta (the value), element, mse (over the cores), diff_vs_beta0 (minus the reference's MSE on the
    same cores), lo, hi (its ``level`` interval over cores); the reference's rows have diff 0."""
    rows = []
    for (model, value), predicted in predictions.items():
        if (model, reference) not in predictions:
            raise KeyError(f"sweep_table: {model} has no run at the reference value {reference}")
        errors = pd.DataFrame(squared_errors(Y, predicted), columns=list(elements))
        base = pd.DataFrame(squared_errors(Y, predictions[(model, reference)]), columns=list(elements))
        t = paired_interval(errors, base, level)
        rows.append(pd.DataFrame({"model": model, "beta": value, "element": t.index, "mse": t["a"].to_numpy(),
                                  "diff_vs_beta0": t["diff"].to_numpy(), "lo": t["lo"].to_numpy(),
                                  "hi": t["hi"].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def pairs_table(Y, predictions: dict, pairs, elements, visible, level: float = LEVEL) -> pd.DataFrame:
    """Model ``a`` against model ``b`` for each (a, b) of ``pairs``, paired over the cores of ``Y`` (cores,
    elements; NaN where unreported): per element the MSE of each over the cores both were scored on, the
    difference a - b and its ``level`` interval; then one row with element ``visible``: each core's squared
    errors over the element's variance averaged over the ``visible`` elements (:func:`relative_squared_errors`;
    its mean over the cores is the mean relative MSE). ``predictions``: {name: (cores, elements)}. Columns
    model, against, element, mse, against_mse, diff, lo, hi, n."""
    elements = list(elements)
    Y = np.asarray(Y, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        variance = np.nanvar(Y, axis=0)
    shown = [elements.index(e) for e in visible if e in elements and variance[elements.index(e)] > 0]
    rows = []
    for a, b in pairs:
        per_element = paired_interval(pd.DataFrame(squared_errors(Y, predictions[a]), columns=elements),
                                      pd.DataFrame(squared_errors(Y, predictions[b]), columns=elements), level)
        relative = paired_interval(relative_squared_errors(Y, predictions[a], variance, shown),
                                   relative_squared_errors(Y, predictions[b], variance, shown), level)
        t = pd.concat([per_element, relative.set_axis(["visible"])])
        rows.append(pd.DataFrame({"model": a, "against": b, "element": t.index, "mse": t["a"].to_numpy(),
                                  "against_mse": t["b"].to_numpy(), "diff": t["diff"].to_numpy(),
                                  "lo": t["lo"].to_numpy(), "hi": t["hi"].to_numpy(), "n": t["n"].to_numpy()}))
    columns = ["model", "against", "element", "mse", "against_mse", "diff", "lo", "hi", "n"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
