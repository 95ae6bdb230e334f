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
# # 03 train_axs: Analysis-by-XRF-Synthesis under the shared folds, and the exported model
#
# AXS (paper section 3.5) is an auto-encoder whose decoder is a differentiable XRF simulator: the
# Encoder turns a spectrum into element multipliers θ and a scale α, the simulator rebuilds the
# spectrum from them (eqs. 1-12) and the Output module turns (θ, α) into the 48 concentrations. It is
# trained on the weighted sum of prediction and reconstruction errors (eq. 15, weight `beta`).
#
# As for the baselines, each fold's model is trained on the other folds (seed `seed + j`) and predicts
# the held-out cores. When `use_unlabelled` is true, the unlabelled spectra archive joins every fold's
# training as reconstruction-only samples (semi-supervised, section 5); it never contains labelled
# cores, so no held-out core leaks in. We keep each fold's learned simulator parameters and its
# reconstructions of the held-out spectra. Finally one model is trained on all labelled cores and
# exported to `model/` for `axs predict`.

# %%
from pathlib import Path

import pandas as pd

from axs import crossval, dataset, files, paths
from axs.models import make_model

# %% tags=["parameters"]
seed = 0
use_unlabelled = True
hyperparams = {}
smoke = False
data_dir = str(paths.DATA)
artifacts_dir = str(paths.ARTIFACTS)
out_dir = str(paths.ARTIFACTS / "train_axs")

# %%
ds = dataset.load_dataset(Path(artifacts_dir) / "prepare" / "dataset.nc")
X = ds["spectrum_cps"].to_numpy()
Y = ds["concentration_pct"].to_numpy()
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
pool = Path(artifacts_dir) / "prepare" / "unlabelled.nc"
X_unlabelled = dataset.load_dataset(pool)["spectrum_cps"].to_numpy() if use_unlabelled and pool.exists() else None
print(f"axs: {len(X)} labelled cores, {0 if X_unlabelled is None else len(X_unlabelled)} unlabelled, "
      f"{ds.attrs['n_folds']} folds, hyperparameters {hyperparams}")


def new_model(j: int):
    return make_model("axs", energies_kev=energies_kev, elements=elements, seed=seed + j, **hyperparams)


# %% [markdown]
# ## Cross-validation

# %%
fold_parameters, reconstruction = {}, X * float("nan")


def keep(j, model, test):
    fold_parameters[j] = model.simulator_parameters()
    reconstruction[test] = model.reconstruct(X[test])


predicted = crossval.out_of_fold_predictions(new_model, X, Y, ds["fold"].to_numpy(),
                                               fit_kwargs={"X_unlabelled": X_unlabelled, "verbose": 0},
                                               on_fold=keep)
predictions = crossval.predictions_dataset(ds, predicted, "axs", reconstruction_cps=reconstruction)
dataset.write_netcdf(predictions, Path(out_dir) / "predictions.nc")
simulator = pd.DataFrame.from_dict(fold_parameters, orient="index").rename_axis("fold")
files.write_csv(simulator.reset_index(), Path(out_dir) / "simulator_parameters.csv")

# %% [markdown]
# Learned simulator parameters per fold (Γ in keV and the scatter/background coefficients of eqs. 3,
# 8 and 10); a large spread between folds would mean the simulator is poorly determined by the data.

# %%
simulator

# %% [markdown]
# ## The exported model
# Trained on every labelled core with the same hyperparameters and seed `seed`; `axs predict` loads it
# from `artifacts/train_axs/model/`.

# %%
final = new_model(0).fit(X, Y, X_unlabelled=X_unlabelled, verbose=0)
final.save(Path(out_dir) / "model" / "axs.keras")

# %% [markdown]
# Training curves of the exported model (total loss of eq. 15 on the training cores and on the seeded
# early-stopping split), drawn in `evaluate`:

# %%
history = pd.DataFrame(final.history).rename_axis("epoch").reset_index()
files.write_csv(history, Path(out_dir) / "training_history.csv")
history.tail()
