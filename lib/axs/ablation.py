"""The ablation of AXS+'s decoder: which of its additions to the paper's simulator matter (notebook 05).

Each configuration is a decoder model with some switches of
:data:`axs.decoder_plus.SWITCHES` set (:func:`configurations`: the paper's
``axs``, then ``axs_plus`` with every switch off, each switch on alone, and all
on). :func:`score_configuration` trains it under the shared folds on the
tested folds only (:func:`axs.crossval.out_of_fold_predictions`) and puts
reconstruction (R² by energy region, χ² per channel on counts) beside
prediction (held-out MSE over the training-fold mean predictor's, for the
visible elements and their mean): one row of the ablation table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from axs import evaluation
from axs.comparisons import relative_squared_errors
from axs.crossval import out_of_fold_predictions
from axs.dataset import model_input
from axs.reconstruction_scores import chi2_on_counts, r2_by_region


def configurations(switches: Sequence[str]) -> dict[str, tuple[str, dict[str, bool]]]:
    """label -> (model, switch settings): the paper's decoder, AXS+ with all off, each alone, all on."""
    out = {"axs (paper)": ("axs", {}), "axs_plus, all off": ("axs_plus", {s: False for s in switches})}
    out |= {f"axs_plus, {switch} only": ("axs_plus", {s: s == switch for s in switches}) for switch in switches}
    out["axs_plus, all on"] = ("axs_plus", {})
    return out


def score_configuration(label: str, new_model: Callable[[int], object], ds: xr.Dataset,
                        outer_folds: Sequence[int], visible: Sequence[str],
                        per_core: dict | None = None) -> dict[str, float | str]:
    """Train ``new_model(j)`` on the folds other than each ``j`` of ``outer_folds``, and score its held-out
    predictions and reconstructions: ``configuration``, ``r2_<region>_kev``, ``chi2_per_channel`` (None
    without live times), ``mean_relative_mse_visible`` and ``relative_mse_<element>`` for ``visible``.
    ``per_core``, if given, gets ``per_core[label]``: each held-out core's squared error over the held-out
    variance, mean over ``visible`` (:func:`axs.comparisons.relative_squared_errors`), for paired intervals."""
    X, Y = model_input(ds), ds["concentration_pct"].to_numpy()   # each measurement normalised, then averaged
    X_mean = ds["spectrum_cps"].to_numpy()   # what a reconstruction is compared with: the averaged spectrum
    folds = ds["fold"].to_numpy()
    reconstruction = np.full_like(X_mean, np.nan)

    def keep(j, fitted, test):
        reconstruction[test] = fitted.reconstruct(X[test])

    predicted = out_of_fold_predictions(new_model, X, Y, folds, fit_kwargs={"verbose": 0}, on_fold=keep,
                                        test_folds=outer_folds)
    tested = np.isin(folds, outer_folds)
    measured = ds["concentration_pct"][tested]
    scores = evaluation.cv_scores(measured, measured.copy(data=predicted[tested]).expand_dims(model=[label]),
                                  ds["fold"][tested])
    relative = evaluation.relative_mse(scores, [label], visible).sel(model=label)
    r2 = r2_by_region(ds["energy_kev"].to_numpy(), X_mean[tested], reconstruction[tested])
    if per_core is not None:
        elements = ds["element"].to_numpy().tolist()
        per_core[label] = relative_squared_errors(Y[tested], predicted[tested], np.nanvar(Y[tested], axis=0),
                                                  [elements.index(e) for e in visible])
    return {"configuration": label, **{f"r2_{k}_kev": v for k, v in r2.items()},
            "chi2_per_channel": chi2_on_counts(X_mean[tested], reconstruction[tested], ds["live_time_s"].to_numpy()[tested]),
            "mean_relative_mse_visible": float(relative.mean()),
            **{f"relative_mse_{e}": float(relative.sel(element=e)) for e in visible}}
