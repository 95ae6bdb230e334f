"""What the studies of `make experiments` train on: the prepared dataset of a pipeline run, as the training
stage reads it (one function, called from each study notebook)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from axs import dataset
from axs.pipeline import paths


def prepared_inputs(artifacts_dir: str | Path) -> tuple[xr.Dataset, np.ndarray, np.ndarray, np.ndarray | None]:
    """(prepared dataset, its model input (sample, orientation, channel): normalised per measurement, then
    averaged, the concentrations (sample, element), wt%, and the prepared unlabelled pool's model input, None
    without one) of the dataset whose artifacts are ``artifacts_dir``."""
    layout = paths.Layout.of_artifacts(artifacts_dir)
    ds = dataset.load_dataset(layout.prepared("dataset"))
    pool = layout.prepared("unlabelled")
    X_pool = dataset.model_input(dataset.load_dataset(pool)) if pool.exists() else None
    return ds, dataset.model_input(ds), ds["concentration_pct"].to_numpy(), X_pool
