"""The pipeline's figures (seaborn/matplotlib), in the style of the paper's Figures 2-5.

Every function returns a :class:`matplotlib.figure.Figure` and draws nothing
it computes: numbers come from :mod:`axs.evaluation` and :mod:`axs.dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import xarray as xr
import xraylib

from axs import model_registry
from axs.elements import UNIT_TO_PCT, atomic_number

sns.set_theme(style="whitegrid", context="paper")

#: Colours of the score tables' rows that are not models (the floor, the training-fold mean predictor);
#: a model's colour is its registry entry's (:data:`axs.model_registry.MODELS`).
REFERENCE_COLOURS = {"floor": "#fbafe4", "mean": "#949494"}
#: Suffix of a label-efficiency run trained with the unlabelled pool (``axs_pool``: model ``axs``).
POOL_SUFFIX = "_pool"


def _model_of(label: str) -> tuple[str, bool]:
    """(model name, trained with the unlabelled pool) of a figure label: a model name or a run ``<model>_pool``."""
    pooled = label.endswith(POOL_SUFFIX) and model_registry.is_model_name(label.removesuffix(POOL_SUFFIX))
    return (label.removesuffix(POOL_SUFFIX) if pooled else label), pooled


def model_colour(label: str):
    """The colour of a model (any normalisation) or run, from its registry entry; the floor and the mean
    predictor have their own; anything else grey."""
    model, _ = _model_of(label)
    if model_registry.is_model_name(model):
        return model_registry.parse(model)[0].colour
    return REFERENCE_COLOURS.get(label, "0.4")


def model_linestyle(label: str) -> str:
    """Dotted for a run with the unlabelled pool, dashed for a scatter-normalised model, dash-dot for a
    path-normalised one, else solid."""
    model, pooled = _model_of(label)
    normalisation = model_registry.parse(model)[1] if model_registry.is_model_name(model) else "none"
    return ":" if pooled else {"scatter": "--", "path": "-."}.get(normalisation, "-")


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save as PNG with fixed metadata (no software version, so bytes repeat); in a notebook the figure
    is then shown (and closed) by the inline backend at the end of the cell."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path


def strongest_line_kev(element: str, max_energy_kev: float) -> tuple[str, float] | None:
    """The element's K-L3 (Ka1) line if below ``max_energy_kev``, else its L3-M5 (La1) line, else None (keV, xraylib)."""
    z = atomic_number(element)
    for name, line in (("Ka", xraylib.KL3_LINE), ("La", xraylib.L3M5_LINE)):
        try:
            energy = xraylib.LineEnergy(z, line)
        except ValueError:
            continue
        if 1.0 < energy < max_energy_kev:
            return name, energy
    return None


def mean_spectrum(ds: xr.Dataset, n_labels: int = 12) -> plt.Figure:
    """Mean labelled spectrum (counts/s, log scale), labelling the ``n_labels`` assay elements whose
    strongest line stands highest above the spectrum 0.5 keV around it (peak over local median)."""
    energy = ds["energy_kev"].to_numpy()
    mean = ds["spectrum_cps"].mean("sample").to_numpy()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.semilogy(energy, np.clip(mean, 1e-3, None), lw=0.8, color="k")
    contrast = {}
    for element in ds["element"].to_numpy():
        line = strongest_line_kev(str(element), energy[-1])
        if line is not None:
            near = np.abs(energy - line[1]) < 0.5
            contrast[str(element)] = float(np.interp(line[1], energy, mean) / max(np.median(mean[near]), 1e-12))
    for element in sorted(contrast, key=contrast.get, reverse=True)[:n_labels]:
        name, e = strongest_line_kev(element, energy[-1])
        ax.axvline(e, color="tab:red", lw=0.5, alpha=0.5)
        ax.annotate(f"{element} {name}", (e, float(np.interp(e, energy, mean))), rotation=90, fontsize=7,
                    xytext=(2, 8), textcoords="offset points", color="tab:red")
    ax.set(xlabel="energy (keV)", ylabel="mean count rate (counts/s per channel)",
           title=f"Mean spectrum of {ds.sizes['sample']} cores (orientations averaged)")
    return fig


def assay_distributions(ds: xr.Dataset) -> plt.Figure:
    """Distribution of each element's assay (wt%, log scale); censored values (imputed) in orange."""
    frame = ds[["concentration_pct", "censored"]].to_dataframe().reset_index()
    frame["status"] = np.where(frame["censored"] == 0, "measured", "censored (imputed)")
    fig, ax = plt.subplots(figsize=(12, 4))
    sns.stripplot(frame, x="element", y="concentration_pct", hue="status", size=2, jitter=0.3, ax=ax,
                  palette={"measured": "0.3", "censored (imputed)": "tab:orange"}, log_scale=True)
    ax.set(xlabel="", ylabel="assay (wt%)", title="Assays of the labelled cores")
    ax.tick_params(axis="x", rotation=90)
    return fig


def predicted_vs_measured(measured_pct: xr.DataArray, predicted_pct: xr.DataArray, element: str,
                          models: Sequence[str], unit: str = "pct") -> plt.Figure:
    """Out-of-fold predicted vs measured concentration of one element, one panel per model (Figure 2),
    drawn in ``unit`` (``pct`` or ``ppm``, the lab's unit for the element); inputs in wt%."""
    scale = 1.0 / UNIT_TO_PCT[unit]
    label = "wt%" if unit == "pct" else unit
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3.2), sharex=True, sharey=True)
    y = measured_pct.sel(element=element).to_numpy() * scale
    p = predicted_pct.sel(element=element) * scale
    top = max(float(np.nanmax(y)), float(np.nanmax(p.sel(model=list(models)))))
    for ax, model in zip(np.atleast_1d(axes), models):
        ax.scatter(y, p.sel(model=model), s=10, color=model_colour(model))
        ax.plot([0, top], [0, top], color="k", lw=0.8)
        ax.set(title=model.upper(), xlabel=f"measured {element} ({label})")
    np.atleast_1d(axes)[0].set_ylabel(f"predicted {element} ({label})")
    return fig


def mse_bars(table2: pd.DataFrame, elements: Sequence[str], ncols: int = 6) -> plt.Figure:
    """CV MSE with +/-1 SE error bars per model, one panel per element (Figures 3 and 5).

    ``table2`` is the long Table 2 (element, model, mse, se); the floor, when
    present, is drawn as a dashed line rather than a bar.
    """
    elements = list(elements)
    ncols = min(ncols, max(len(elements), 1))
    nrows = int(np.ceil(len(elements) / ncols)) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.4 * nrows), squeeze=False)
    models = [m for m in dict.fromkeys(table2["model"]) if m != "floor"]
    for ax, element in zip(axes.flat, elements):
        rows = table2[table2["element"] == element].set_index("model")
        mse = rows["mse"].reindex(models).to_numpy(dtype=float)
        se = rows["se"].reindex(models).to_numpy(dtype=float)
        x = np.arange(len(models))
        ax.bar(x, np.nan_to_num(mse), yerr=np.nan_to_num(se), color=[model_colour(m) for m in models],
               capsize=2)
        for xi in x[~np.isfinite(mse)]:
            ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
        if "floor" in rows.index and np.isfinite(rows.loc["floor", "mse"]):
            ax.axhline(rows.loc["floor", "mse"], color="k", ls="--", lw=1, label="floor")
        ax.set_xticks(x, [m.upper() for m in models], rotation=90, fontsize=7)
        ax.set_title(element)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for ax in list(axes.flat)[len(elements):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("MSE (wt%²)")
    fig.tight_layout()
    return fig


def reconstruction(energy_kev: np.ndarray, observed_cps: np.ndarray, reconstructed_cps: np.ndarray,
                   sample: str, model: str = "axs") -> plt.Figure:
    """An observed spectrum, its out-of-fold reconstruction through a decoder model (Figure 4), and the
    residual below (counts/s per channel)."""
    fig, (ax, res) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.semilogy(energy_kev, np.clip(observed_cps, 1e-3, None), color="k", lw=0.8, label="observed")
    ax.semilogy(energy_kev, np.clip(reconstructed_cps, 1e-3, None), color="tab:red", lw=0.8,
                label=f"{model.upper()} reconstruction")
    ax.set(ylabel="count rate (counts/s per channel)", title=f"{sample}")
    ax.legend()
    res.plot(energy_kev, observed_cps - reconstructed_cps, color="0.3", lw=0.6)
    res.axhline(0, color="k", lw=0.5)
    res.set(xlabel="energy (keV)", ylabel="observed - model")
    return fig


def residuals_by_energy(energy_kev: np.ndarray, observed_cps: np.ndarray,
                        reconstructions: dict[str, np.ndarray]) -> plt.Figure:
    """Median and 10-90 % band over samples of the relative residual (observed - model) / observed mean,
    per channel, for each decoder model: where in energy the simulator fails."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    scale = np.maximum(np.mean(observed_cps, axis=0), 1e-9)
    for model, rec in reconstructions.items():
        rel = (observed_cps - rec) / scale
        lo, mid, hi = np.nanpercentile(rel, [10, 50, 90], axis=0)
        ax.plot(energy_kev, mid, lw=0.8, label=model.upper(), color=model_colour(model))
        ax.fill_between(energy_kev, lo, hi, alpha=0.2, color=model_colour(model))
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="energy (keV)", ylabel="(observed - model) / mean observed", ylim=(-1.5, 1.5))
    ax.legend(fontsize=7)
    return fig


def predicted_vs_measured_grid(measured_pct: xr.DataArray, predicted_pct: xr.DataArray,
                               elements: Sequence[str], models: Sequence[str], units: dict[str, str]
                               ) -> plt.Figure:
    """Small multiples: out-of-fold predicted vs measured, one row per element, one column per model,
    in each element's lab unit; the 1:1 line in black."""
    elements, models = list(elements), list(models)
    fig, axes = plt.subplots(len(elements), len(models), figsize=(1.6 * len(models), 1.5 * len(elements)),
                             squeeze=False)
    for i, element in enumerate(elements):
        scale = 1.0 / UNIT_TO_PCT[units[element]]
        y = measured_pct.sel(element=element).to_numpy() * scale
        p = predicted_pct.sel(element=element, model=models).to_numpy() * scale
        finite = np.concatenate([y[np.isfinite(y)], p[np.isfinite(p)]])
        top = float(finite.max()) if finite.size else 1.0
        for j, model in enumerate(models):
            ax = axes[i, j]
            ax.scatter(y, p[j], s=2, color=model_colour(model))
            ax.plot([0, top], [0, top], color="k", lw=0.5)
            ax.set(xlim=(0, top), ylim=(0, top), xticks=[], yticks=[])
            if i == 0:
                ax.set_title(model, fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{element} ({units[element]})", fontsize=7)
    fig.tight_layout(pad=0.2)
    return fig


def training_histories(histories: pd.DataFrame, model: str) -> plt.Figure:
    """Per-fold training curves (columns ``fold``, ``epoch`` and every recorded series) of one model,
    one panel per series, log scale: does each fold reach its plateau before it stops?"""
    series = [c for c in histories.columns if c not in ("fold", "epoch")]
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 2.8), squeeze=False)
    for ax, name in zip(axes.flat, series):
        for fold, rows in histories.groupby("fold"):
            ax.semilogy(rows["epoch"] + 1, rows[name], lw=0.7, alpha=0.8, label=f"fold {fold}")
        if histories["epoch"].min() < 0:   # reconstruction-only pretraining before epoch 0 (axs.models)
            ax.axvline(0.5, color="0.5", lw=0.6, ls="--")
        ax.set(title=f"{model}: {name}", xlabel="epoch (< 0: pretraining)" if histories["epoch"].min() < 0
               else "epoch")
    fig.tight_layout()
    return fig


def training_history(history: dict[str, list[float]]) -> plt.Figure:
    """Loss per epoch (log scale) of every series Keras recorded (``loss``, ``val_loss``, ...)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in history.items():
        if "loss" in name:
            ax.semilogy(np.arange(1, len(values) + 1), values, label=name)
    ax.set(xlabel="epoch", ylabel="loss")
    ax.legend(fontsize=7)
    return fig


def label_efficiency(relative: pd.DataFrame, max_panels: int = 11) -> plt.Figure:
    """Relative MSE (MSE / variance of the held-out assays) against the number of labelled cores, per model:
    the mean over the visible elements (first panel), then each visible element; lines join the means over
    runs, dots are the runs; with an ``n_unlabelled`` column, one dotted line per pool size (thicker: larger)."""
    visible = relative[relative["visible"]]
    elements = list(dict.fromkeys(visible.sort_values("element")["element"]))[:max_panels]
    runs = [k for k in ("n_labelled", "n_unlabelled", "repeat", "fold", "model") if k in visible]
    panels = [("mean over visible elements", visible.groupby(runs, as_index=False)["relative_mse"].mean())]
    panels += [(e, visible[visible["element"] == e]) for e in elements]
    ncols = min(4, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.7 * nrows), squeeze=False)
    pools = sorted(relative["n_unlabelled"].unique()) if "n_unlabelled" in relative else [0]
    for ax, (title, rows) in zip(axes.flat, panels):
        if "n_unlabelled" not in rows:
            rows = rows.assign(n_unlabelled=0)
        for (model, pool), part in rows.groupby(["model", "n_unlabelled"], sort=False):
            mean = part.groupby("n_labelled")["relative_mse"].mean()
            ax.plot(mean.index, mean.to_numpy(), marker="o", ms=3, label=f"{model} + {pool} unlabelled" if pool
                    else model, color=model_colour(model), ls=":" if pool else model_linestyle(model),
                    lw=1.0 + pools.index(pool))   # thicker: a larger pool
            ax.scatter(part["n_labelled"], part["relative_mse"], s=6, alpha=0.4, color=model_colour(model))
        ax.set(title=title, xscale="log", xlabel="labelled cores")
        ax.axhline(1.0, color="k", lw=0.5, ls=":")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("MSE / variance")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    return fig
