# %% [markdown]
# # 03 label efficiency: how many assays does each model need, and does the unlabelled pool help?
#
# The paper argues for AXS where labelled data is scarce and unlabelled spectra are cheap (section 5:
# "a mining shovel or conveyor belt ... few samples will be sent for geochemical analysis"), but
# reports only the full 177 cores. Here every model is trained on a few to all labelled cores,
# subsampled inside the outer training folds of the shared cross-validation (seeded repeats; every model
# of a repeat sees the same cores and the same seed), and tested on the held-out fold. The models that can
# learn from unlabelled spectra (AXS, AXS+ and the decoder-free control, PCA of the pool then LASSO) run
# with no pool and with pools of growing size drawn from a larger stand-in archive (`pool_dir`; the
# smaller pools of a repeat lie inside its larger ones), so pool minus no pool is a paired difference per
# run. A second control is AXS at beta 0 with the pool: it is the CNN, so any gain it shows is noise.
# On the measured set (`dataset_name` real: 81 cores, no unlabelled archive) the study asks the decoder's
# question alone: LASSO-scatter, the CNN and AXS without a pool (params.yaml `label_efficiency.per_dataset`).
# The study's power and cost: docs/experiments.md.

# %%
from pathlib import Path

import numpy as np
import pandas as pd

from axs import comparisons, dataset, evaluation, files
from axs.errors import DataError
from axs.label_efficiency import TABLE_COLUMNS, label_efficiency, merge_folds, run_pools, run_settings, summarise
from axs.models import DEFAULTS, make_model
from axs.pipeline import paths, plots, reports

# %% tags=["parameters"]
sizes = [10, 20, 40, 80, None]
repeats = {10: 2, 20: 3, 40: 1, 80: 1}
outer_folds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
run_folds = None
seed = 0
pools = [0, 1000, 4000]
pool_dir = "artifacts/label_efficiency_pool"
size_overrides = {10: {"validation_fraction": 0.3, "patience": 60}, 20: {"validation_fraction": 0.25, "patience": 45}}
runs = {"lasso_scatter": {"model": "lasso_scatter"},
        "pca_lasso_scatter": {"model": "pca_lasso_scatter", "pools": True},
        "cnn": {"model": "cnn"},
        "axs": {"model": "axs", "pools": True},
        "axs_beta0": {"model": "axs", "pools": "largest", "sizes": [20], "beta": 0.0},
        "axs_plus": {"model": "axs_plus", "pools": True}}
visible = ["K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr"]
against = "cnn"
hyperparams = {}
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "label_efficiency")
figures_dir = str(paths.REPORTS / "figures" / "label_efficiency")
tables_dir = str(paths.REPORTS / "tables")
previous_table = None      # with run_folds: the table as it was before this run (the runner passes it)

# %%
print(f"Code: git revision {reports.git_revision(paths.ROOT)}")   # what made this report

# %%
# papermill passes a dict's keys as strings: the sizes of repeats and size_overrides are numbers again here
repeats = {int(k): v for k, v in repeats.items()} if isinstance(repeats, dict) else repeats
size_overrides = {int(k): v for k, v in (size_overrides or {}).items()}
layout = paths.Layout.of_artifacts(artifacts_dir)
ds = dataset.load_dataset(layout.prepared("dataset"))
X, Y = dataset.model_input(ds), ds["concentration_pct"].to_numpy()   # normalised per measurement, then averaged
folds = ds["fold"].to_numpy()
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
if pool_dir is None:          # smoke mode, or the measured set: the prepared dataset's own pool, if it has one
    pool = layout.prepared("unlabelled")
    X_pool = dataset.model_input(dataset.load_dataset(pool)) if pool.exists() else None
else:
    if not (Path(pool_dir) / "unlabelled").is_dir():
        raise DataError(Path(pool_dir), "missing; `make experiments` writes the study's unlabelled archive there")
    X_pool = dataset.model_input(dataset.read_unlabelled(pool_dir, energies_kev))
folds_now = list(outer_folds) if run_folds is None else list(run_folds)
if set(folds_now) - set(outer_folds):
    raise ValueError(f"run_folds {run_folds}: expected folds of outer_folds {outer_folds}")
print(f"{len(X)} labelled cores, {0 if X_pool is None else len(X_pool)} unlabelled; outer folds {folds_now} of {outer_folds}, sizes {sizes}, "
      f"repeats {repeats}, pools {pools}; runs {list(runs)}")

# %% [markdown]
# ## Training on subsets
# Each run's settings are its model's `train.<model>` section, then the run's own (beta of the control),
# then those of `size_overrides` for the number of labelled cores that the model has (LASSO has no early
# stopping): with 10 cores, 20 % for early stopping is 2 cores. A run trains at every size of `sizes` unless it names its own (the control runs where the power is);
# `axs.label_efficiency.run_settings` puts its settings together.

# %%
rows, predictions = [], []
for name, run in runs.items():
    for n in run.get("sizes", sizes):
        def fresh(j, n_labelled, run=run):
            settings = run_settings(run, hyperparams, size_overrides, n_labelled, DEFAULTS)
            return make_model(run["model"], energies_kev=energies_kev, elements=elements, seed=seed + j, **settings)

        n_repeats = repeats.get(n, 1) if isinstance(repeats, dict) else repeats
        results = label_efficiency(fresh, X, Y, folds, folds_now, [n], n_repeats, seed,
                                            pools=run_pools(run, pools), X_pool=X_pool,
                                            fit_kwargs={"verbose": 0})
        for n_used, u, r, j, test, predicted in results:
            mse = evaluation.fold_mse(Y[test], predicted, np.zeros(len(test)))[0]
            rows += [(n_used, u, r, j, name, e, float(v)) for e, v in zip(elements, mse)]
            predictions.append(pd.DataFrame(predicted, columns=elements).assign(
                n_labelled=n_used, n_unlabelled=u, repeat=r, fold=j, model=name,
                sample=ds["sample"].to_numpy()[test]))
    print(f"{name}: done")

# %% [markdown]
# ## The table
# `tables/label_efficiency.csv` (long form): the held-out MSE (wt%²) of every run, per number of labelled
# and unlabelled cores, repeat, tested fold, model and element; every number below is recomputed from it.
# The out-of-fold predictions of the folds run now are kept in `predictions.csv`. With `run_folds` (a study
# split over sessions, docs/experiments.md) the committed table's rows of the other folds are kept
# (`axs.label_efficiency.merge_folds`): a run depends only on its own seed, fold, size and repeat.
# `run_folds: []` trains nothing and reports the committed table as it stands (e.g. after merging the tables of
# folds run on two machines with `merge_folds`).

# %%
previous = pd.read_csv(previous_table) if run_folds is not None and previous_table is not None else None
table = merge_folds(pd.DataFrame(rows, columns=TABLE_COLUMNS), previous, folds_now, outer_folds, list(runs), elements)
files.write_csv(table, Path(tables_dir) / "label_efficiency.csv")
print(f"the table holds outer folds {sorted(table['fold'].unique().tolist())} of {outer_folds}")
if predictions:            # run_folds: [] trains nothing and reports the table as it stands
    files.write_csv(pd.concat(predictions), Path(out_dir) / "predictions.csv")
# the "all" size (None) trains on every core outside the test fold: 159 or 160 of 177, by fold. The summaries
# below pool its runs under the smallest of those counts (the table keeps each run's own count;
# axs.label_efficiency.summarise, which the front page's answer reads too).
summarised, variance, units = summarise(table, Y, folds, elements, visible)
every = summarised["n_labelled"] != table["n_labelled"]
if every.any():
    print(f"'all' labelled cores: {sorted(table.loc[every, 'n_labelled'].unique().tolist())} by fold, "
          f"shown as {int(summarised.loc[every, 'n_labelled'].min())}")
relative = evaluation.relative_label_efficiency(summarised, variance, visible)
relative.pivot_table(index="n_labelled", columns=["model", "n_unlabelled"], values="relative_mse",
                     aggfunc="mean").round(3)

# %% [markdown]
# ## Does the pool help?
# Mean relative MSE over the visible elements with the pool minus without it, paired per run (same labelled
# cores, seed and test fold), with its 95 % interval over the runs (`axs.comparisons.pool_effect`; negative:
# the pool helps). `axs_beta0` is the CNN: its interval shows what noise alone gives.

# %%
effect = comparisons.pool_effect(units)
files.write_csv(effect, Path(out_dir) / "pool_effect.csv", float_format="%.4g")
effect.round(4)

# %% [markdown]
# ## Does the decoder help?
# Every run against the `against` run (the CNN: AXS at beta 0, no pool) at the same number of labelled cores,
# paired over the runs both made (same cores, seed and test fold; `axs.comparisons.versus_model`): AXS
# without a pool is the decoder alone, with a pool the paper's full claim. Negative: better than the CNN.

# %%
versus = comparisons.versus_model(units, against)
files.write_csv(versus, Path(out_dir) / f"versus_{against}.csv", float_format="%.4g")
versus.round(4)

# %% [markdown]
# ## The figure
# MSE relative to the variance of the held-out assays (1 = no better than the mean), against the number
# of labelled cores: the mean over the well-visible elements (`visible`) and for each of them; dashed lines
# are scatter-normalised models, dotted ones runs with an unlabelled pool (thicker: larger pool). The y axis is
# logarithmic: a single failed run (LASSO-scatter at 10 cores reaches 5) would otherwise flatten every line.
# The legend sits in the first empty panel.

# %%
figure = plots.label_efficiency(relative)
for ax in figure.axes:
    if ax.has_data():
        ax.set_yscale("log")
spare = [ax for ax in figure.axes if not ax.has_data()]
if spare:                  # the legend into an empty panel, off the mean panel's lines
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.axes[0].get_legend().remove()
    spare[0].legend(handles, labels, fontsize=7, loc="center")
plots.save_figure(figure, Path(figures_dir) / "label_efficiency.png");
