# %% [markdown]
# # 05 ablation: which of AXS+'s additions to the paper's simulator matter?
#
# The extended decoder of `axs_plus` (`axs.decoder_plus.XRFSimulatorPlus`) adds, each behind a switch,
# what the paper's section 5 names as missing from its simulator: an energy-dependent detector width,
# Rayleigh and Compton scatter of the anode's lines, a continuum that ends at the tube voltage, Si escape
# peaks, pile-up sum peaks and matrix absorption. Here `axs_plus` is trained with every switch off, with
# each switch on alone, and with all on, under the shared folds (a subset of them, for time), and we put
# reconstruction (R² by energy region, χ² per channel on counts) and prediction (MSE relative to the
# training-fold mean predictor, mean over the visible elements) side by side. The paper's own decoder
# (`axs`) is the first row.

# %%
from pathlib import Path

import pandas as pd

from axs import ablation, comparisons, dataset, files
from axs.decoder_plus import SWITCHES
from axs.models import make_model
from axs.pipeline import paths, reports
from axs.pipeline.stage import split_unlabelled

# %% tags=["parameters"]
outer_folds = [0, 1, 2]
seed = 0
hyperparams = {}
visible = ["K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr"]
dataset_name = "standin"
artifacts_dir = str(paths.ARTIFACTS / "standin")
out_dir = str(paths.ARTIFACTS / "standin" / "ablation")
tables_dir = str(paths.REPORTS / "tables")

# %%
print(f"Code: git revision {reports.git_revision(paths.ROOT)}")   # what made this report

# %%
ds = dataset.load_dataset(paths.Layout.of_artifacts(artifacts_dir).prepared("dataset"))
energies_kev, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
configurations = ablation.configurations(SWITCHES)
print(f"{len(configurations)} configurations x folds {outer_folds}")

# %% [markdown]
# ## Training
# Each configuration under the shared folds, tested on `outer_folds` (`axs.ablation.score_configuration`).

# %%
rows, per_core = [], {}
for label, (model, switches) in configurations.items():
    settings = {**split_unlabelled(hyperparams.get(model, {}))[0], **switches}
    row = ablation.score_configuration(
        label, lambda j: make_model(model, energies_kev=energies_kev, elements=elements, seed=seed + j, **settings),
        ds, outer_folds, visible, per_core)
    rows.append(row)
    print(f"{label}: chi2/channel {row['chi2_per_channel']}, mean relative MSE {row['mean_relative_mse_visible']:.3f}")

# %% [markdown]
# ## The ablation table
# `tables/ablation.csv`: one row per configuration; R² of the out-of-fold reconstruction in each energy
# region (keV), Pearson χ² per channel on counts (≈ 1 for a Poisson-limited fit), and the held-out MSE over
# the mean predictor's (1 = no better than the mean) for the visible elements and their mean, and each
# configuration's paired difference from every switch off (per-core squared error over the held-out
# variance, mean over the visible elements) with its 95 % interval over the cores (`lo`, `hi`).

# %%
table = pd.DataFrame(rows)
# each configuration against every switch off, paired over the held-out cores: the per-core squared error over
# the held-out variance, mean over the visible elements; its difference with a 95 % interval (axs.comparisons)
paired = comparisons.versus(per_core, "axs_plus, all off")
table["diff_vs_all_off"], table["lo"], table["hi"] = (paired[c].to_numpy() for c in ("diff", "lo", "hi"))
files.write_csv(table, Path(tables_dir) / "ablation.csv", float_format="%.4g")
table.set_index("configuration").round(3)
