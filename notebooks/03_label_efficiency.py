# %% [markdown]
# # 03 label efficiency: how many assays does each model need?
#
# The paper argues for AXS where labelled data is scarce and unlabelled spectra are cheap (section 5:
# "a mining shovel or conveyor belt ... few samples will be sent for geochemical analysis"), but
# reports only the full 177 cores. Here every model is trained on 20, 40, 80 and all labelled cores,
# subsampled inside the outer training folds of the shared cross-validation (several seeded repeats;
# every model of a repeat sees the same cores), and tested on the same held-out folds. The AXS
# variants run with and without the unlabelled pool. The result is whatever the curves show.

# %%
from pathlib import Path

import numpy as np
import pandas as pd

from axs import crossval, dataset, evaluation, files
from axs.pipeline import paths, plots
from axs.pipeline.stage import split_unlabelled
from axs.models import make_model

# %% tags=["parameters"]
sizes = [20, 40, 80, None]
repeats = 3
outer_folds = [0, 1]
seed = 0
runs = {"lasso_scatter": {"model": "lasso_scatter"}, "cnn": {"model": "cnn"}, "cnn_scatter": {"model": "cnn_scatter"},
        "axs": {"model": "axs", "use_unlabelled": False}, "axs_pool": {"model": "axs", "use_unlabelled": True},
        "axs_plus": {"model": "axs_plus", "use_unlabelled": False},
        "axs_plus_pool": {"model": "axs_plus", "use_unlabelled": True}}
visible = ["K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr"]
hyperparams = {}
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "label_efficiency")
figures_dir = str(paths.REPORTS / "figures" / "label_efficiency")
tables_dir = str(paths.REPORTS / "tables")

# %%
layout = paths.Layout.of_artifacts(artifacts_dir)
ds = dataset.load_dataset(layout.prepared("dataset"))
X, Y = ds["spectrum_cps"].to_numpy(), ds["concentration_pct"].to_numpy()
folds = ds["fold"].to_numpy()
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
pool = layout.prepared("unlabelled")
X_pool = dataset.load_dataset(pool)["spectrum_cps"].to_numpy() if pool.exists() else None
print(f"{len(X)} labelled cores, {0 if X_pool is None else len(X_pool)} unlabelled; outer folds {outer_folds}, "
      f"sizes {sizes}, {repeats} repeats; runs {list(runs)}")

# %% [markdown]
# ## Training on subsets

# %%
rows, predictions = [], []
for name, run in runs.items():
    settings, _ = split_unlabelled(hyperparams.get(run["model"], {}))   # each run says whether it uses the pool
    fit_kwargs = {"verbose": 0}
    if run.get("use_unlabelled") and X_pool is not None:
        fit_kwargs["X_unlabelled"] = X_pool
    results = crossval.label_efficiency(
        lambda j: make_model(run["model"], energies_kev=energies_kev, elements=elements, seed=seed + j, **settings),
        X, Y, folds, outer_folds, sizes, repeats, seed, fit_kwargs)
    for n, r, j, test, predicted in results:
        mse = evaluation.fold_mse(Y[test], predicted, np.zeros(len(test)))[0]
        rows += [(n, r, j, name, e, float(v)) for e, v in zip(elements, mse)]
        predictions.append(pd.DataFrame(predicted, columns=elements).assign(
            n_labelled=n, repeat=r, fold=j, model=name, sample=ds["sample"].to_numpy()[test]))
    print(f"{name}: {len(results)} trainings")

# %% [markdown]
# ## The table
# MSE (wt%²) per number of labelled cores, repeat, model and element, averaged over the outer folds
# tested (`tables/label_efficiency.csv`, long form); the out-of-fold predictions are kept in
# `predictions.csv`.

# %%
per_fold = pd.DataFrame(rows, columns=["n_labelled", "repeat", "fold", "model", "element", "mse"])
table = per_fold.groupby(["n_labelled", "repeat", "model", "element"], as_index=False)["mse"].mean()
files.write_csv(table, Path(tables_dir) / "label_efficiency.csv")
files.write_csv(pd.concat(predictions), Path(out_dir) / "predictions.csv")
variance = pd.Series(np.nanvar(Y[np.isin(folds, outer_folds)], axis=0), index=elements)
relative = evaluation.relative_label_efficiency(table, variance, visible)
relative.pivot_table(index="n_labelled", columns="model", values="relative_mse", aggfunc="mean").round(3)

# %% [markdown]
# ## The figure
# MSE relative to the variance of the held-out assays (1 = no better than the mean), against the number
# of labelled cores: the mean over the well-visible elements (`visible`) and for each of them; dashed lines
# are scatter-normalised models, dotted ones AXS variants trained with the unlabelled pool.

# %%
plots.save_figure(plots.label_efficiency(relative), Path(figures_dir) / "label_efficiency.png");
