"""How a model's field calibration holds on held-out data: the ``evaluate`` stage's figures for single
measurements (issue 18: flags and intervals that hold for what is measured)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xarray as xr

from axs import bundle, dataset
from axs.evaluation import predictions_path, single_spectrum_coverage


def single_measurement_metrics(artifacts_dir: str | Path, models: list[str], ds: xr.Dataset, elements: list[str],
                               level: float = 0.9, model_dir: str = "model") -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """How the field calibration holds for single measurements, for the ``evaluate`` stage.

    Returns the interval coverage at ``level`` of each model's out-of-fold single-measurement predictions
    (``predicted_single_pct`` in ``predictions.nc``; :func:`axs.evaluation.single_spectrum_coverage`, rows
    ``spectra == 'single'`` of ``tables/coverage.csv``) on ``elements``, and per model the metrics
    ``applicability_flag_rate_heldout_single`` (from the exported ``field.json``, target <= 0.05),
    ``coverage_<level>_single_mean`` and ``coverage_<level>_single_share_within_0.85_0.95``.
    ``model_dir``: the exported model's folder beside ``predictions.nc``. Models trained before single
    measurements were kept are left out.
    """
    frames, metrics = [], {}
    _, position = dataset.single_spectra(ds)
    Y = ds["concentration_pct"].sel(element=list(elements)).to_numpy()
    for model in models:
        path = predictions_path(artifacts_dir, model)
        with xr.open_dataset(path, engine=dataset.NETCDF_ENGINE) as p:
            if "predicted_single_pct" not in p:
                continue
            single = p["predicted_single_pct"].sel(element=list(elements)).to_numpy()
        coverage = single_spectrum_coverage(Y, single, position, ds["fold"].to_numpy(), elements, model, level)
        frames.append(coverage)
        field = bundle.load_field(path.parent / model_dir)
        values = coverage["coverage"].dropna()
        metrics[model] = {
            "applicability_flag_rate_heldout_single": field.training.get("applicability_flag_rate_heldout_single"),
            f"coverage_{level:g}_single_mean": float(values.mean()),
            f"coverage_{level:g}_single_share_within_0.85_0.95": float(values.between(0.85, 0.95).mean())}
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), metrics
