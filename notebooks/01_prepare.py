# %% [markdown]
# # 01 prepare: from raw spectra and assays to one validated dataset
#
# This stage reads what the instrument and the assay lab delivered (`data/manifest.csv`, the spectrum
# files it lists, `data/assays.csv`, `data/assay_limits.csv`; format in docs/data-format.md) and
# checks every file against its description and against the others. Any malformed input stops the
# stage here, with a message naming the file, the line or field and what was expected, and nothing
# is written.
#
# Each measurement is moved onto one common energy grid (the median calibration; count-conserving
# rebinning) and divided by its live time; the four orientations of a core are then averaged, as in
# the paper (section 2). Assays become weight percent; values below the detection limit are set to
# half the limit and values above the upper limit to the limit, and both are flagged. Finally every
# core is assigned to one of the seeded cross-validation folds that all models share.

# %%
from pathlib import Path

from axs import dataset
from axs.pipeline import paths, plots

# %% tags=["parameters"]
dataset_name = "standin"
data_dir = str(paths.DATA)
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "prepare")
figures_dir = str(paths.REPORTS / "figures" / "prepare")
n_folds = 10
fold_seed = 0
max_cores = None
max_unlabelled_cores = None

# %% [markdown]
# ## Read, validate, average, fold

# %%
ds = dataset.prepare(data_dir, out_dir, n_folds=n_folds, fold_seed=fold_seed, max_cores=max_cores,
                     max_unlabelled_cores=max_unlabelled_cores)
has_truth = dataset.prepare_truth(data_dir, ds["sample"].to_numpy(), Path(out_dir) / paths.PREPARED_FILES["truth"])
print(f"{dataset_name}: ground truth {'copied for the error floor' if has_truth else 'absent (no floor)'}")
ds

# %% [markdown]
# Censored assays per element (-1: below the detection limit, +1: above the upper limit), after the
# rule above was applied:

# %%
censored = (ds["censored"] != 0).sum("sample").to_series()
censored[censored > 0].rename("censored cores").to_frame().T

# %% [markdown]
# Cores per fold, and the unlabelled spectra archive available to semi-supervised training:

# %%
print(ds["fold"].to_series().value_counts().sort_index().to_dict())
unlabelled = Path(out_dir) / paths.PREPARED_FILES["unlabelled"]
print(f"unlabelled cores: {dataset.load_dataset(unlabelled).sizes['sample'] if unlabelled.exists() else 0}")

# %% [markdown]
# ## Exploratory figures
# The mean spectrum with the lines of the most abundant elements, and the assay distributions.

# %%
plots.save_figure(plots.assay_distributions(ds), Path(figures_dir) / "assay_distributions.png");

# %%
plots.save_figure(plots.mean_spectrum(ds), Path(figures_dir) / "mean_spectrum.png");
