# %% [markdown]
# # 07 normalisation twins: what does geometry normalisation buy each model?
#
# The pipeline's Table 2 holds the paper's models on their raw input and the cheap linear models on each
# geometry normalisation (`docs/models.md`). The costly models' normalised twins (the CNN and AXS on
# scatter-normalised input, the PyMca peer on scatter- and path-normalised input) serve one question, does the
# normalisation help this model, and so run here, in `make experiments`, for the `make repro` time budget
# (`docs/pipeline.md`). Each twin is cross-validated exactly like the training stage (the prepared folds, seed
# `seed + j` on fold j, the model's `train.<model>` settings and, where it learns from it, the prepared
# unlabelled pool), then compared on the same held-out cores with its raw-input model and with the reference
# model, both read from the training stage: per element and on the mean relative MSE over the well-visible
# elements, with 95 % intervals over the cores (`axs.comparisons.pairs_table`). A pair whose second model the
# pipeline did not train is left out, and the notebook says so.

# %%
from pathlib import Path

import pandas as pd

from axs import comparisons, crossval, evaluation, files
from axs.models import make_model, model_kind
from axs.pipeline import paths, reports, study
from axs.pipeline.stage import split_unlabelled

# %% tags=["parameters"]
models = ["cnn_scatter", "axs_scatter", "pymca_scatter", "pymca_path"]
reference = "lasso_scatter"
seed = 0
visible = ["K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr"]
hyperparams = {}
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "normalisation")
tables_dir = str(paths.REPORTS / "tables")

# %%
print(f"Code: git revision {reports.git_revision(paths.ROOT)}")   # what made this report

# %%
ds, X, Y, X_pool = study.prepared_inputs(artifacts_dir)     # as the training stage reads them
folds, energies_kev, elements = ds["fold"].to_numpy(), ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
pairs = [(m, b) for m in models for b in (model_kind(m)[0], reference) if b != m]
trained = [b for b in dict.fromkeys(b for _, b in pairs) if evaluation.predictions_path(artifacts_dir, b).exists()]
missing = sorted({b for _, b in pairs} - set(trained))
pairs = [(a, b) for a, b in pairs if b in trained]
print(f"{dataset_name}: {len(X)} cores, {ds.attrs['n_folds']} folds; twins {models}; compared with {trained} "
      f"from the training stage" + (f"; not trained there, so left out: {missing}" if missing else ""))

# %% [markdown]
# ## Cross-validating the twins

# %%
predictions = {}
for model in models:
    settings, use_unlabelled = split_unlabelled(hyperparams.get(model, {}))
    fit_kwargs = {"verbose": 0} | ({"X_unlabelled": X_pool} if use_unlabelled and X_pool is not None else {})
    predictions[model] = crossval.out_of_fold_predictions(
        lambda j, model=model: make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j,
                                          **settings), X, Y, folds, fit_kwargs)
    files.write_csv(pd.DataFrame(predictions[model], columns=elements).assign(sample=ds["sample"].to_numpy()),
                    Path(out_dir) / f"predictions_{model}.csv")
    print(f"{model}: done")
if trained:
    saved = evaluation.load_predictions(artifacts_dir, trained, ds["fold"])
    predictions |= {b: saved.sel(model=b).transpose("sample", "element").to_numpy() for b in trained}

# %% [markdown]
# ## The table
# `tables/normalisation.csv`: per twin and model it is compared with (`against`: its raw-input model, then
# the reference), per element the held-out MSE of each (wt%², over the cores both were scored on), the
# difference and its 95 % interval; the row `visible` holds the mean relative MSE over the well-visible
# elements (each core's squared errors over the element's variance). Below 0: the twin is better.

# %%
table = comparisons.pairs_table(Y, predictions, pairs, elements, visible)
files.write_csv(table, Path(tables_dir) / "normalisation.csv", float_format="%.6g")
summary = table[table["element"] == "visible"].set_index(["model", "against"])[["mse", "against_mse", "diff", "lo", "hi", "n"]]
summary.round(4)

# %% [markdown]
# The well-visible elements one by one: the difference over the compared model's MSE, with its interval.

# %%
shown = table[table["element"].isin(visible)].copy()
for column in ("diff", "lo", "hi"):
    shown[column] = shown[column] / shown["against_mse"]
shown.pivot_table(index=["model", "against"], columns="element", values="diff", sort=False)[
    [e for e in visible if e in set(shown["element"])]].round(3)
