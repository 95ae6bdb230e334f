# %% [markdown]
# # 02 train: one model under the shared cross-validation folds, and the exported model
#
# One run of this notebook trains one model of `axs.models` (one entry of `train.models` in
# `params.yaml`): the paper's LR, LASSO, FCNN, CNN (sections 3.1-3.4) and AXS (section 3.5), the
# practitioner's PyMca peer, and their variants on geometry-normalised input (`<model>_<normalisation>`).
# For each fold *j*, a fresh model (seed `seed + j`) is trained on the other folds and predicts the
# held-out cores, so every core gets a prediction from a model that never saw it. Models with a
# decoder (AXS) also reconstruct the held-out spectra, and we keep each fold's learned simulator
# parameters and training curves Each fold model also predicts every single measurement (orientation) of
# its held-out cores on its own, as a field user measures: these calibrate the exported model's flags and
# intervals for single spectra (`axs.crossval.cross_validate`). When `use_unlabelled` is true, the unlabelled spectra archive joins
# every fold's training as reconstruction-only samples (semi-supervised, section 5); it never contains
# labelled cores, so nothing held out leaks in. A dataset without an archive trains without it, unless the
# model's `without_archive` is `labelled_spectra`: then every labelled spectrum, without its assay, is
# given as the unlabelled spectra (the direct fit characterises its instrument on them; no assay is read).
#
# Finally one model is trained on every labelled core and exported to `model/` (with its applicability
# checks and interval calibration from the out-of-fold results) for `axs predict`. Scores, tables and
# figures come later, in `evaluate`.

# %%
from pathlib import Path

import pandas as pd

from axs import bundle, crossval, dataset, files
from axs.pipeline import paths
from axs.pipeline.stage import split_unlabelled
from axs.models import make_model

# %% tags=["parameters"]
model = "lasso"
seed = 0
hyperparams = {"alpha": None, "n_alphas": 10, "eps": 0.01, "cv_folds": 3, "max_iter": 5000}
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "train" / model)

# %%
layout = paths.Layout.of_artifacts(artifacts_dir)
ds = dataset.load_dataset(layout.prepared("dataset"))
X = dataset.model_input(ds)              # (sample, orientation, channel): normalised per measurement, then averaged
X_mean = ds["spectrum_cps"].to_numpy()   # each sample's mean raw spectrum: the applicability checks' input
Y = ds["concentration_pct"].to_numpy()
folds = ds["fold"].to_numpy()
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
settings, use_unlabelled = split_unlabelled(hyperparams)
without_archive = settings.pop("without_archive", "none")
pool = layout.prepared("unlabelled")
X_unlabelled = dataset.model_input(dataset.load_dataset(pool)) if use_unlabelled and pool.exists() else None
if use_unlabelled and X_unlabelled is None and without_archive == "labelled_spectra":
    # no archive (the measured set): every labelled spectrum, without its assay, stands in for it (the direct
    # fit's instrument characterisation; docs/models.md, "The direct fit")
    X_unlabelled = X
    print("no unlabelled archive: the labelled spectra, without their assays, are the unlabelled spectra")
fit_kwargs = {"verbose": 0} | ({"X_unlabelled": X_unlabelled} if X_unlabelled is not None else {})
print(f"{model} on {dataset_name}: {len(X)} labelled cores, "
      f"{0 if X_unlabelled is None else len(X_unlabelled)} unlabelled, {ds.attrs['n_folds']} folds, "
      f"hyperparameters {settings}")


def new_model(j: int):
    return make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j, **settings)


# %% [markdown]
# ## Cross-validation

# %%
X_single, single_position = dataset.single_spectra(ds)   # each measurement on its own, (m, channel)
cv = crossval.cross_validate(new_model, X, Y, folds, fit_kwargs, X_single, single_position,
                             crossval.spectra_per_sample(ds))
predicted, reconstruction, histories = cv.predicted, cv.reconstruction, cv.histories
predictions = crossval.predictions_dataset(ds, predicted, model, reconstruction_cps=reconstruction, theta=cv.theta,
                                           theta_elements=cv.theta_elements, single_predicted_pct=cv.single.predicted,
                                           single_reconstruction_cps=cv.single.reconstruction)
dataset.write_netcdf(predictions, Path(out_dir) / crossval.PREDICTIONS_FILE)
if histories:
    files.write_csv(pd.concat(histories.values()), Path(out_dir) / crossval.HISTORY_FILE)
if cv.fold_parameters:
    simulator = pd.DataFrame.from_dict(cv.fold_parameters, orient="index").rename_axis("fold")
    files.write_csv(simulator.reset_index(), Path(out_dir) / "simulator_parameters.csv")
    print("learned simulator parameters per fold (a large spread would mean the data pin them poorly):")
    display(simulator)  # noqa: F821 (IPython)
if histories:
    stopped = {j: int((h["epoch"] >= 0).sum()) for j, h in histories.items()}
    print(f"epochs run per fold (early stopping on the validation J_p, eq. 14; pretraining not counted): {stopped}")

# %% [markdown]
# ## The exported model
# Trained on every labelled core with the same hyperparameters and seed `seed`, saved with what
# `axs predict` needs to flag spectra unlike the training data and to give intervals
# (`model/`; `axs info` prints it).

# %%
final = new_model(0).fit(X, Y, **fit_kwargs)
exported = bundle.export_model(final, Path(out_dir) / paths.MODEL_DIR, X_mean, Y, folds, predicted,
                               tube=ds.attrs.get("tube", ""), oof_reconstruction=reconstruction, single=cv.single)
print(f"held-out spectra flagged by the applicability checks: {exported['applicability_flag_rate_heldout']:.3f} "
      f"(single measurements: {exported['applicability_flag_rate_heldout_single']:.3f})")
if hasattr(final, "tied_elements"):     # the direct fit (axs.fp): the elements its instrument does not see
    print(f"tied into one amount in each spectrum's fit (tie_below): {', '.join(final.tied_elements) or 'none'}")

# %% [markdown]
# Out-of-fold predictions of the first cores (wt%):

# %%
predictions["predicted_pct"].to_pandas().iloc[:5, :12]
