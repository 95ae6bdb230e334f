"""Does a speed change move Table 2? Cross-validate models as the train stage does and compare with the committed table.

    python benchmarks/table2_check.py --dataset real --models lasso [--save DIR] [--against DIR]

For each model, the out-of-fold predictions are made exactly as ``notebooks/02_train.py`` makes them
(``params.yaml`` ``train.<model>``, seed ``train.seed + fold``, the prepared dataset under
``artifacts/<dataset>/prepare``; run ``python -m axs.pipeline.stage prepare --dataset ...`` first), timed,
scored with :func:`axs.evaluation.cv_scores` and compared per element with the committed
``reports/[<prefix>]tables/table2.csv``: the change in MSE in units of the committed SE, and the elements
where it exceeds one SE. ``--save`` keeps the predictions; ``--against`` compares with saved ones
instead of the table (e.g. before/after a change, sample by sample). Measurements, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from axs import crossval, dataset, evaluation
from axs.models import make_model
from axs.pipeline import paths
from axs.pipeline.stage import load_params, stage_parameters


def out_of_fold(ds: xr.Dataset, params: dict, dataset_name: str, model: str, artifacts: Path) -> np.ndarray:
    """The train stage's out-of-fold predictions (sample, element), wt% (no export, no extras)."""
    section = stage_parameters(params, "train", dataset_name, model)
    settings = dict(section["hyperparams"])
    use_unlabelled = settings.pop("use_unlabelled", False)
    pool = artifacts / "prepare" / "unlabelled.nc"
    fit_kwargs = {"verbose": 0}
    if use_unlabelled and pool.exists():
        fit_kwargs["X_unlabelled"] = dataset.load_dataset(pool)["spectrum_cps"].to_numpy()
    energies, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())

    def new_model(j: int):
        return make_model(model, energies_kev=energies, elements=elements, seed=section["seed"] + j, **settings)

    return crossval.out_of_fold_predictions(new_model, ds["spectrum_cps"].to_numpy(),
                                            ds["concentration_pct"].to_numpy(), ds["fold"].to_numpy(),
                                            fit_kwargs=fit_kwargs)


def compare(scores: xr.Dataset, model: str, reference: pd.DataFrame) -> pd.DataFrame:
    """Per element of ``reference`` (element, mse, se): the new MSE and (new - old) / old SE."""
    new = scores["mse"].sel(model=model).to_series().rename("mse_new")
    out = reference.set_index("element")[["mse", "se"]].join(new, how="inner")
    out["delta_in_se"] = (out["mse_new"] - out["mse"]) / out["se"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="standin")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--root", type=Path, default=paths.ROOT)
    parser.add_argument("--save", type=Path, help="folder to write <model>.nc predictions to")
    parser.add_argument("--against", type=Path, help="folder of saved <model>.nc predictions to compare with")
    args = parser.parse_args(argv)

    params = load_params(args.root / "params.yaml")
    prefix = params["datasets"][args.dataset].get("reports_prefix") or ""
    artifacts = args.root / "artifacts" / args.dataset
    ds = dataset.load_dataset(artifacts / "prepare" / "dataset.nc")
    measured, folds = ds["concentration_pct"], ds["fold"]
    table = pd.read_csv(args.root / "reports" / prefix / "tables" / "table2.csv")
    for model in args.models:
        start, cpu_start = time.perf_counter(), time.process_time()
        predicted = out_of_fold(ds, params, args.dataset, model, artifacts)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        as_array = xr.DataArray(predicted[None], dims=("model", "sample", "element"),
                                coords={"model": [model], "sample": ds["sample"], "element": ds["element"]})
        scores = evaluation.cv_scores(measured, as_array, folds)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            as_array.to_dataset(name="predicted_pct").to_netcdf(args.save / f"{model}.nc")
        if args.against:
            old = xr.open_dataarray(args.against / f"{model}.nc").load()
            old_scores = evaluation.cv_scores(measured, old, folds)
            reference = old_scores[["mse", "se"]].sel(model=model).to_dataframe().reset_index()
            diff = np.nanmax(np.abs(predicted - old.sel(model=model).to_numpy()))
            print(f"{model}: largest change of a prediction {diff:.3g} wt%")
        else:
            reference = table[table["model"] == model]
        result = compare(scores, model, reference)
        worst = result["delta_in_se"].abs()
        print(f"{model} on {args.dataset}: cross-validation {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU; |delta MSE|/SE median "
              f"{worst.median():.3g}, max {worst.max():.3g} ({worst.idxmax()}); "
              f"elements beyond 1 SE: {list(result.index[worst > 1])}", flush=True)
        with pd.option_context("display.width", 200, "display.max_rows", 100):
            print(result[worst > 0.25].to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
