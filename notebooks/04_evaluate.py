# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 evaluate: cross-validated errors, the paper's tables and figures
#
# For every element and model: the cross-validated MSE (mean of the fold MSEs, wt%²) and its standard
# error SE = SD(fold MSEs)/√k (paper section 4). Elements where no model beats predicting the
# training-fold mean are removed and listed, as in the paper's appendix. **Table 1** lists the
# elements where each model is best; **Table 2** gives MSE ± SE for every model and remaining element.
# Beside the models, when the stand-in's truth file is there, the **error floor**: the MSE of a
# predictor that knew each core's true mean surface composition and calibrated it linearly to the
# assays on the training folds (which absorbs the lab's partial digestion of resistate minerals).
# The assays measure the bulk of the core, the spectra only its surface, so no model can be
# expected to beat this floor by more than chance.

# %%
from pathlib import Path

import numpy as np
import pandas as pd

from axs import crossval, dataset, evaluation, files, paths, plots

# %% tags=["parameters"]
models = ["lr", "lasso", "fcnn", "cnn", "axs"]
smoke = False
data_dir = str(paths.DATA)
artifacts_dir = str(paths.ARTIFACTS)
out_dir = str(paths.ARTIFACTS / "evaluate")
figures_dir = str(paths.REPORTS / "figures" / "evaluate")
tables_dir = str(paths.REPORTS / "tables")
plots_dir = str(paths.REPORTS / "plots")
metrics_path = str(paths.REPORTS / "metrics.json")

# %%
ds = dataset.load_dataset(Path(artifacts_dir) / "prepare" / "dataset.nc")
measured, folds = ds["concentration_pct"], ds["fold"]
predicted = crossval.load_predictions(artifacts_dir, models, folds)
scores = evaluation.cv_scores(measured, predicted, folds)
floor = evaluation.floor_predictions(Path(data_dir) / "truth" / "truth.nc", measured, folds)
if floor is not None:
    scores = scores.merge(evaluation.floor_scores(measured, floor, folds))
print("error floor:", "from data/truth/truth.nc" if floor is not None else "none (no truth file)")
dataset.write_netcdf(scores, Path(out_dir) / "scores.nc")

# %% [markdown]
# ## Removed elements
# No model beats the training-fold mean predictor on these:

# %%
kept, removed = evaluation.kept_and_removed(scores, models)
files.write_csv(pd.DataFrame({"element": removed}), Path(tables_dir) / "removed_elements.csv")
print(f"{len(removed)} removed: {' '.join(removed) or 'none'}")
print(f"{len(kept)} kept: {' '.join(kept)}")

# %% [markdown]
# ## Table 1: elements where each model achieved the best MSE

# %%
table1 = evaluation.table1(scores, models, kept)
files.write_csv(table1, Path(tables_dir) / "table1.csv")
table1

# %% [markdown]
# ## Table 2: MSE ± SE (wt%²) across the cross-validation test folds
# Long form in `reports/tables/table2.csv` (element, model, mse, se, unit; the floor as model `floor`).
# A blank cell: the model does not apply to the element (LR needs a K-L3 line in the spectrum).

# %%
table2 = evaluation.table2(scores, models, kept)
files.write_csv(table2, Path(tables_dir) / "table2.csv")
files.write_csv(evaluation.mse_per_element(scores, models, kept), Path(plots_dir) / "mse_per_element.csv")
files.write_csv(evaluation.mse_per_element(scores, models, kept, relative=True),
                     Path(plots_dir) / "relative_mse_per_element.csv")
evaluation.write_metrics(evaluation.metrics(scores, models, kept), metrics_path)
evaluation.table2_wide(table2)

# %% [markdown]
# ## Figures
# **Figure 2 style**: out-of-fold predictions against the assay for the element where AXS gains most
# over the CNN (in units of the mean predictor's MSE) among those where AXS beats the mean predictor.

# %%
element = evaluation.showcase_element(scores, kept, "axs", "cnn")
if element is not None:
    plots.save_figure(plots.predicted_vs_measured(measured, predicted, element, models,
                                                  unit=str(ds["unit"].sel(element=element).item())),
                      Path(figures_dir) / f"figure2_predicted_vs_measured_{element}.png");

# %% [markdown]
# **Figures 3 and 5 style**: MSE per model with ±1 SE error bars for every remaining element; the dashed
# line is the error floor.

# %%
if kept:
    plots.save_figure(plots.mse_bars(table2, kept), Path(figures_dir) / "figure5_mse_per_element.png");

# %% [markdown]
# **Figure 4 style**: a held-out spectrum and its out-of-fold AXS reconstruction (the core with the
# median reconstruction error).

# %%
axs_predictions = dataset.load_dataset(crossval.predictions_path(artifacts_dir, "axs"))
X, reconstruction = ds["spectrum_cps"].to_numpy(), axs_predictions["reconstruction_cps"].to_numpy()
error = ((reconstruction - X) ** 2).mean(axis=1)
k = int(np.argmin(np.abs(error - np.median(error))))
plots.save_figure(plots.reconstruction(ds["energy_kev"].to_numpy(), X[k], reconstruction[k],
                                       str(ds["sample"][k].item())),
                  Path(figures_dir) / "figure4_reconstruction.png");

# %% [markdown]
# Training curves of the exported AXS model (`artifacts/train_axs/model/`).

# %%
history = pd.read_csv(Path(artifacts_dir) / "train_axs" / "training_history.csv").set_index("epoch")
plots.save_figure(plots.training_history(history.to_dict("list")), Path(figures_dir) / "axs_training_history.png");
