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
# # 02 baselines: one baseline model under the shared cross-validation folds
#
# The paper compares AXS with simple linear regression on each element's K-L3 line (LR), LASSO on the
# whole spectrum, a fully connected network (FCNN) and a convolutional network (CNN) (sections
# 3.1-3.4). This notebook cross-validates one of them (`model`, one stage per entry of
# `baselines.models` in `params.yaml`): for each fold, a fresh model is trained on the other folds
# and predicts the held-out cores, so every core gets a prediction from a model that never saw it.
# Fold *j* uses seed `seed + j`. The scores and tables come later, in `evaluate`.

# %%
from pathlib import Path

from axs import crossval, dataset, paths
from axs.models import make_model

# %% tags=["parameters"]
model = "lasso"
seed = 0
hyperparams = {}
smoke = False
data_dir = str(paths.DATA)
artifacts_dir = str(paths.ARTIFACTS)
out_dir = str(paths.ARTIFACTS / "baselines" / model)

# %%
ds = dataset.load_dataset(Path(artifacts_dir) / "prepare" / "dataset.nc")
X = ds["spectrum_cps"].to_numpy()
Y = ds["concentration_pct"].to_numpy()
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
print(f"{model}: {len(X)} cores, {ds.attrs['n_folds']} folds, hyperparameters {hyperparams}")

# %% [markdown]
# ## Cross-validation

# %%
predicted = crossval.out_of_fold_predictions(
    lambda j: make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j, **hyperparams),
    X, Y, ds["fold"].to_numpy(), fit_kwargs={"verbose": 0})
predictions = crossval.predictions_dataset(ds, predicted, model)
dataset.write_netcdf(predictions, Path(out_dir) / "predictions.nc")

# %% [markdown]
# ## A first look
# Out-of-fold predictions of the first cores (wt%); scores, tables and figures for all models come in
# `evaluate`.

# %%
predictions["predicted_pct"].to_pandas().iloc[:5, :12]
