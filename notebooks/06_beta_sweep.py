# %% [markdown]
# # 06 beta sweep: does the decoder's weight change the predictions?
#
# The paper's Table 2 asks whether AXS predicts better than its CNN. Asked cleanly, AXS is its CNN plus the
# decoder and the weight beta of the reconstruction error in eq. 15, everything else shared (params.yaml's
# `train.axs` merges `train.cnn`), and at beta = 0 it is the CNN exactly (tests/test_models.py). Here AXS and
# AXS+ are trained at each beta of `betas` on the same folds with the same seeds and, like the training
# stage, the prepared unlabelled pool; each beta's held-out squared errors are compared with beta 0's on the
# same cores, per element, with a 95 % interval over the cores (`axs.comparisons.sweep_table`).

# %%
from pathlib import Path

import numpy as np
import pandas as pd

from axs import comparisons, crossval, files
from axs.models import make_model
from axs.pipeline import paths, reports, study
from axs.pipeline.stage import split_unlabelled

# %% tags=["parameters"]
betas = [0.0, 0.01, 0.1, 1.0, 10.0]
models = ["axs", "axs_plus"]
outer_folds = [0, 1, 2, 3, 4]
seed = 0
visible = ["K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr"]
hyperparams = {}
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "beta_sweep")
tables_dir = str(paths.REPORTS / "tables")

# %%
print(f"Code: git revision {reports.git_revision(paths.ROOT)}")   # what made this report

# %%
ds, X, Y, X_pool = study.prepared_inputs(artifacts_dir)     # as the training stage reads them
folds, energies_kev, elements = ds["fold"].to_numpy(), ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
tested = np.isin(folds, outer_folds)
print(f"{models} x beta {betas} x folds {outer_folds}: {tested.sum()} held-out cores, "
      f"{0 if X_pool is None else len(X_pool)} unlabelled spectra")

# %% [markdown]
# ## Training

# %%
predictions = {}
for model in models:
    settings, use_unlabelled = split_unlabelled(hyperparams.get(model, {}))
    fit_kwargs = {"verbose": 0}
    if use_unlabelled and X_pool is not None:
        fit_kwargs["X_unlabelled"] = X_pool
    for beta in betas:
        predicted = crossval.out_of_fold_predictions(
            lambda j: make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j,
                                 **{**settings, "beta": beta}),
            X, Y, folds, fit_kwargs, test_folds=outer_folds)
        predictions[(model, beta)] = predicted[tested]
        print(f"{model} beta {beta}: done")

# %% [markdown]
# ## The table
# `tables/beta_sweep.csv`: per model, beta and element, the held-out MSE (wt%²) over the tested cores, its
# difference from the same model at beta 0 on the same cores, and that difference's 95 % interval (lo, hi);
# an interval below 0 means the decoder at that beta predicts better than the CNN it extends.

# %%
table = comparisons.sweep_table(Y[tested], predictions, elements)
files.write_csv(table, Path(tables_dir) / "beta_sweep.csv", float_format="%.6g")
shown = table[table["element"].isin(visible)]
shown.pivot_table(index=["model", "beta"], columns="element", values="diff_vs_beta0").round(4)

# %% [markdown]
# The same, each difference over beta 0's MSE with its interval (the visible elements):

# %%
base = shown[shown["beta"] == 0.0][["model", "element", "mse"]].rename(columns={"mse": "mse_beta0"})
ratio = shown[shown["beta"] != 0.0].merge(base, on=["model", "element"])
for column in ("diff_vs_beta0", "lo", "hi"):
    ratio[column] = ratio[column] / ratio["mse_beta0"]
ratio.set_index(["model", "beta", "element"])[["diff_vs_beta0", "lo", "hi"]].round(3)
