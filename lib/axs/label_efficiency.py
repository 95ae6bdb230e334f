"""The label-efficiency study (notebook 03): what each run trains with, and the loop that trains it.

A run (``params.yaml`` ``label_efficiency.runs``) names a model of :mod:`axs.models`, optionally the pool
sizes it trains with (``pools``: a list, true for every pool size of the study, ``largest`` for none and the
largest), the labelled sizes
(``sizes``) and settings of its own (the control's ``beta: 0``). Its settings are the model's
``train.<model>`` section, then the run's own, then the study's ``size_overrides`` for the number of
labelled cores, of which each model takes those it has (LASSO has no early stopping).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from axs.model_registry import has_decoder, parse

#: Keys of a run that say what it trains on, not how (never ``make_model`` keywords).
RUN_KEYS = ("model", "pools", "sizes")


def run_settings(run: dict, hyperparams: dict, size_overrides: dict, n_labelled: int | None,
                 defaults: dict) -> dict:
    """``make_model`` keywords of ``run`` at ``n_labelled`` cores: ``hyperparams[run model]`` (its
    ``train.<model>`` section, ``use_unlabelled`` left out: the study sets the pool), the run's own settings,
    then those of ``size_overrides[n_labelled]`` the model has (``defaults``: :data:`axs.models.DEFAULTS`)."""
    model = run["model"]
    known = defaults[parse(model)[0].name]
    own = {k: v for k, v in run.items() if k not in RUN_KEYS}
    by_size = {k: v for k, v in (size_overrides.get(n_labelled) or {}).items() if k in known}
    settings = {**(hyperparams.get(model) or {}), **own, **by_size}
    settings.pop("use_unlabelled", None)
    return settings


def run_pools(run: dict, pools: Sequence[int]) -> list[int]:
    """The pool sizes ``run`` trains with: every one of ``pools`` for ``pools: true``, none and the largest
    for ``pools: largest`` (a control), its own list, or none (0) when it names none."""
    if run.get("pools") is True:
        return list(pools)
    if run.get("pools") == "largest":
        return [0, max(pools)]
    return list(run.get("pools") or [0])


def subsampled_training(folds: np.ndarray, fold: int, n_labelled: int | None, repeat: int, seed: int
                        ) -> np.ndarray:
    """Indices of ``n_labelled`` training samples drawn without replacement from the samples outside
    ``fold`` (all of them when ``n_labelled`` is None or not smaller), seeded by (seed, fold, n, repeat)
    so every model of a repeat sees the same labelled cores."""
    train = np.flatnonzero(np.asarray(folds) != fold)
    if n_labelled is None or n_labelled >= len(train):
        return train
    rng = np.random.default_rng([seed, fold, n_labelled, repeat])
    return np.sort(rng.choice(train, size=n_labelled, replace=False))


def pool_subset(n_pool: int, n_unlabelled: int, fold: int, repeat: int, seed: int) -> np.ndarray:
    """Indices of ``n_unlabelled`` of the ``n_pool`` unlabelled spectra: the first of a permutation seeded by
    (seed, fold, repeat), so a repeat's smaller pools lie inside its larger ones and only the pool's size
    differs between its runs. ValueError if the pool is smaller than asked."""
    if n_unlabelled > n_pool:
        raise ValueError(f"n_unlabelled: {n_unlabelled} asked, the unlabelled pool holds {n_pool}")
    order = np.random.default_rng([seed, fold, repeat, 1]).permutation(n_pool)
    return np.sort(order[:n_unlabelled])


def label_efficiency(make_model: Callable[[int, int | None], object], X: np.ndarray, Y: np.ndarray,
                     folds: np.ndarray, outer_folds: Sequence[int], sizes: Sequence[int | None], repeats: int,
                     seed: int, pools: Sequence[int] = (0,), X_pool: np.ndarray | None = None,
                     fit_kwargs: dict | None = None) -> list[tuple[int, int, int, int, np.ndarray, np.ndarray]]:
    """Train on ``n`` labelled samples subsampled inside each outer training fold, test on the held-out fold.

    For each outer fold *j* of ``outer_folds``, each size *n* of ``sizes``
    (None: every training sample, one repeat), each repeat *r* and each pool
    size *u* of ``pools`` (0: no unlabelled spectra; else :func:`pool_subset`
    of ``X_pool`` given as ``X_unlabelled``), a fresh ``make_model(j, n)``
    (``n`` as in ``sizes``, so settings may depend on it) is fitted on
    :func:`subsampled_training` and predicts fold *j*. The runs of a (j, n, r)
    differ in the pool only: paired. Returns ``(n, u, r, j, test_indices,
    predictions)`` tuples, ``n`` the number of labelled samples used.
    """
    folds = np.asarray(folds)
    if any(u > 0 for u in pools) and X_pool is None:
        raise ValueError(f"pools {list(pools)}: unlabelled spectra asked for, but X_pool is None")
    results = []
    for j in outer_folds:
        test = np.flatnonzero(folds == j)
        for n in sizes:
            for r in range(1 if n is None else repeats):
                train = subsampled_training(folds, j, n, r, seed)
                for u in pools:
                    kwargs = dict(fit_kwargs or {})
                    if u > 0:
                        kwargs["X_unlabelled"] = X_pool[pool_subset(len(X_pool), u, j, r, seed)]
                    model = make_model(int(j), n)
                    model.fit(X[train], Y[train], **kwargs)
                    results.append((len(train), int(u), r, int(j), test,
                                    np.asarray(model.predict(X[test]), dtype=np.float64)))
    return results


#: The study table's columns (``tables/label_efficiency.csv``), one row per run and element.
TABLE_COLUMNS = ["n_labelled", "n_unlabelled", "repeat", "fold", "model", "element", "mse"]


def merge_folds(new: pd.DataFrame, previous: pd.DataFrame | None, run_folds: Sequence[int],
                outer_folds: Sequence[int], runs: Sequence[str], elements: Sequence[str]) -> pd.DataFrame:
    """The study's table after running the folds ``run_folds`` only: ``new`` (their runs) plus the rows of
    ``previous`` (the table as committed, or None) for the other folds of ``outer_folds`` and the runs of
    ``runs``, so a study can be run a few folds at a time (one session each). A run's result depends only on
    its own (seed, fold, size, repeat), so the merged table equals one written in a single pass: both are
    sorted the same way (run as listed in ``runs``, n_labelled, fold, repeat, n_unlabelled, element as in
    ``elements``). ValueError if ``previous`` lacks the table's columns."""
    parts = [new[TABLE_COLUMNS]]
    if previous is not None:
        missing = set(TABLE_COLUMNS) - set(previous.columns)
        if missing:
            raise ValueError(f"previous table: columns {sorted(missing)} missing; expected {TABLE_COLUMNS}")
        others = [f for f in outer_folds if f not in set(run_folds)]
        parts.append(previous.loc[previous["fold"].isin(others) & previous["model"].isin(list(runs)), TABLE_COLUMNS])
    table = pd.concat(parts, ignore_index=True)
    order = {"model": {m: k for k, m in enumerate(runs)}, "element": {e: k for k, e in enumerate(elements)}}
    key = table.assign(model_rank=table["model"].map(order["model"]), element_rank=table["element"].map(order["element"]))
    key = key.sort_values(["model_rank", "n_labelled", "fold", "repeat", "n_unlabelled", "element_rank"], kind="stable")
    return table.loc[key.index].reset_index(drop=True)


def summarise(table: pd.DataFrame, Y: np.ndarray, folds: np.ndarray, elements: Sequence[str],
              visible: Sequence[str]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """What every summary of the study table reads: ``(summarised, variance, units)``.

    ``variance`` (element): of the assays ``Y`` (samples, ``elements``) of the folds the table tested, for
    elements of non-zero variance. The "all" size trains on every core outside its test fold (159 or 160 of
    177, by fold, with ``folds`` each sample's fold): ``summarised`` is the table with those runs pooled under
    the smallest of those counts (the table keeps each run's own). ``units``: one number per run, the mean
    relative MSE over the ``visible`` elements (:func:`axs.comparisons.run_units`), what the pool and the
    decoder are judged on (:func:`axs.comparisons.pool_effect`, :func:`axs.comparisons.versus_model`).
    """
    from axs.comparisons import run_units

    folds = np.asarray(folds)
    tested = np.isin(folds, table["fold"].unique())
    variance = pd.Series(np.nanvar(np.asarray(Y, dtype=np.float64)[tested], axis=0), index=list(elements))
    variance = variance[variance > np.finfo(float).tiny]
    training_cores = {int(j): int(np.sum(folds != j)) for j in np.unique(folds)}
    every = table["n_labelled"] == table["fold"].map(training_cores)
    summarised = table.assign(n_labelled=table["n_labelled"].mask(every, table.loc[every, "n_labelled"].min()))
    units = run_units(summarised, variance, [e for e in visible if e in variance.index])
    return summarised, variance, units


def answer(units: pd.DataFrame, against: str) -> dict[str, pd.DataFrame]:
    """The study's answer: paired differences in mean relative MSE with their 95 % intervals (columns model,
    n_labelled, n_unlabelled, diff, lo, hi, n; negative: better).

    * ``"pool"``: each run that learns from unlabelled spectra with its largest pool minus the same run without
      one (:func:`axs.comparisons.pool_effect`); the beta-0 control shows what noise alone gives;
    * ``"decoder"``: each run of a decoder model (:func:`axs.model_registry.has_decoder` of the run's name: AXS,
      AXS+) without a pool minus ``against`` (the CNN, AXS's encoder without the decoder) on the same cores
      (:func:`axs.comparisons.versus_model`).
    """
    from axs.comparisons import pool_effect, versus_model

    pool = pool_effect(units)
    decoder = versus_model(units, against)
    columns = ["model", "n_labelled", "n_unlabelled", "diff", "lo", "hi", "n"]
    keep = (decoder["n_unlabelled"] == 0) & decoder["model"].map(has_decoder)
    return {"pool": pool.loc[pool["n_unlabelled"] == pool.groupby("model")["n_unlabelled"].transform("max"),
                             columns].reset_index(drop=True),
            "decoder": decoder.loc[keep, columns].reset_index(drop=True)}


def answer_cells(frame: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """An :func:`answer` table for reading: rows n_labelled, a column per run, cells ``diff [lo, hi]``."""
    text = frame.assign(cell=[f"{d:+.{decimals}f} [{lo:+.{decimals}f}, {hi:+.{decimals}f}]"
                              for d, lo, hi in zip(frame["diff"], frame["lo"], frame["hi"])])
    out = text.pivot(index="n_labelled", columns="model", values="cell")
    return out[list(dict.fromkeys(frame["model"]))].fillna("")


def verdict(frame: pd.DataFrame) -> str:
    """For each run of an :func:`answer` table, how many of its comparisons are better (interval below 0),
    worse (above 0) or show no detectable difference (interval holding 0): ``"axs: better at 0, worse at 1, no
    detectable difference at 4 of 5 sizes; ..."``."""
    parts = []
    for model, part in frame.groupby("model", sort=False):
        better, worse = int((part["hi"] < 0).sum()), int((part["lo"] > 0).sum())
        parts.append(f"{model}: better at {better}, worse at {worse}, no detectable difference at "
                     f"{len(part) - better - worse} of {len(part)} sizes")
    return "; ".join(parts)
