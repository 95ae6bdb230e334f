"""The experiments of `make experiments` (label efficiency, beta sweep) in smoke mode: their tables' shape."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from axs.decoder_plus import SWITCHES
from axs.label_efficiency import run_pools
from axs.pipeline import paths
from axs.pipeline.paths import Layout

pytestmark = pytest.mark.slow     # stages run end to end (make test-quick skips them)

PARAMS = yaml.safe_load(paths.PARAMS.read_text())
#: The smoke label-efficiency study's runs: the study's without AXS+, whose runs take the same path as AXS's
#: (a decoder model with pools; 6 of its 16 network fits here, about 15 s); AXS+ with a pool is fitted in
#: tests/test_axs_plus_model.py, and in the smoke ablation and beta sweep below.
SMOKE_RUNS = {name: run for name, run in PARAMS["label_efficiency"]["runs"].items() if run["model"] != "axs_plus"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder on the stand-in data (read in place), prepared in smoke mode (16 cores, 16 unlabelled).
    Its label-efficiency study leaves AXS+ out (:data:`SMOKE_RUNS`)."""
    if not (paths.DATA / "manifest.csv").exists():
        pytest.skip("data/ not restored (make data)")
    root = tmp_path_factory.mktemp("experiments")
    params = dict(PARAMS, datasets={"standin": {"data_dir": str(paths.DATA), "reports_prefix": ""}})
    params["label_efficiency"] = {**PARAMS["label_efficiency"], "runs": SMOKE_RUNS}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _stage(root, "prepare")
    yield root
    shutil.rmtree(root)


def _stage(root: Path, stage: str, params: Path | None = None, model: str | None = None,
           dataset: str | None = None) -> None:
    extra = ([] if params is None else ["--params", str(params)]) + ([] if model is None else ["--model", model])
    extra += [] if dataset is None else ["--dataset", dataset]
    run = subprocess.run([sys.executable, "-m", "axs.pipeline.stage", stage, "--root", str(root), "--smoke", *extra],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_label_efficiency_keeps_every_run_and_fold_with_its_pool_size(project):
    _stage(project, "label_efficiency")
    smoke = {**PARAMS["label_efficiency"], **PARAMS["label_efficiency"]["smoke_overrides"]}
    table = pd.read_csv(Layout(project).tables_dir / "label_efficiency.csv")
    assert list(table.columns) == ["n_labelled", "n_unlabelled", "repeat", "fold", "model", "element", "mse"]
    runs = table.drop(columns=["element", "mse"]).drop_duplicates()
    pooled = {"pca_lasso_scatter", "axs", "axs_beta0"}
    # one run per model, size (4 and all), repeat (the smoke overrides merge repeats {4: 2, 20: 1} into the study's:
    # a dict whose keys papermill passes as strings) and, for the models that learn from a pool, pool size
    merged = {**PARAMS["label_efficiency"]["repeats"], **smoke["repeats"]}

    def repeats(n):
        return merged.get(n, 1) if n is not None else 1

    expected = sum(sum(repeats(n) for n in run.get("sizes", smoke["sizes"])) * len(run_pools(run, smoke["pools"]))
                   for run in SMOKE_RUNS.values())
    assert table.loc[table["n_labelled"] == 4, "repeat"].nunique() == 2
    assert len(runs) == expected
    assert set(table["model"]) == set(SMOKE_RUNS) and not table["model"].str.endswith("_pool").any()
    assert set(table["n_unlabelled"]) == set(smoke["pools"]) and set(table["fold"]) == set(smoke["outer_folds"])
    assert table.groupby(["model", "n_labelled", "n_unlabelled", "repeat", "fold"]).size().nunique() == 1  # all elements
    effect = pd.read_csv(Layout(project).out_dir("label_efficiency") / "pool_effect.csv")
    assert set(effect["model"]) == pooled and (effect["n_unlabelled"] == 8).all()
    versus = pd.read_csv(Layout(project).out_dir("label_efficiency") / "versus_cnn.csv")
    assert set(versus["model"]) == set(SMOKE_RUNS) - {"cnn"} and (versus["n"] > 0).all()


def test_label_efficiency_in_two_lanes_writes_the_table_one_process_writes_fold_by_fold(project):
    """`python -m axs.pipeline.lanes --dataset real`: the folds dealt to two processes (one thread each), their
    tables merged and reported (``run_folds: []``). Then one process with ``run_folds: [0]``: the runner hands
    the table as it was to the notebook (the stage's outputs are removed before it runs), the other fold's rows
    stay as they were (planted ones here), and fold 0 comes out as its lane wrote it, row for row (up to float
    sums in another thread count). On the measured set, with its own study settings
    (label_efficiency.per_dataset.real: no pool). LASSO alone: the lanes handle every run alike, and a network's
    seeded determinism is tests/test_models.py's."""
    if not (paths.ROOT / PARAMS["datasets"]["real"]["data_dir"]).is_dir():
        pytest.skip("data-real/ not restored (make data)")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["real"] = {"data_dir": str(paths.ROOT / PARAMS["datasets"]["real"]["data_dir"]),
                                  "reports_prefix": "real/"}
    study = params["label_efficiency"]["per_dataset"]["real"]
    study["runs"] = {"lasso_scatter": study["runs"]["lasso_scatter"]}
    study["smoke_overrides"] = {**study["smoke_overrides"], "outer_folds": [0, 1]}
    (project / "lanes.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    layout = Layout(project, "real", "real/")
    _stage(project, "prepare", params=project / "lanes.yaml", dataset="real")
    run = subprocess.run([sys.executable, "-m", "axs.pipeline.lanes", "--lanes", "2", "--root", str(project),
                          "--params", str(project / "lanes.yaml"), "--dataset", "real", "--smoke"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "lane 0: outer folds [0]" in run.stdout and "lane 1: outer folds [1]" in run.stdout
    table_path = layout.tables_dir / "label_efficiency.csv"
    lanes = pd.read_csv(table_path)
    assert sorted(lanes["fold"].unique()) == [0, 1]
    assert set(lanes["n_unlabelled"]) == {0} and set(lanes["model"]) == {"lasso_scatter"}
    predictions = pd.read_csv(layout.out_dir("label_efficiency") / "predictions.csv")
    assert sorted(predictions["fold"].unique()) == [0, 1]
    assert layout.report_html("label_efficiency").exists()
    planted = lanes[lanes["fold"] == 1].assign(mse=lambda t: t["mse"] * 2)        # only the old table's
    pd.concat([lanes[lanes["fold"] == 0], planted]).to_csv(table_path, index=False)
    study["run_folds"] = [0]
    (project / "fold0.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _stage(project, "label_efficiency", params=project / "fold0.yaml", dataset="real")
    after = pd.read_csv(table_path)
    assert sorted(after["fold"].unique()) == [0, 1]
    pd.testing.assert_frame_equal(after[after["fold"] == 1].reset_index(drop=True), planted.reset_index(drop=True))
    pd.testing.assert_frame_equal(after[after["fold"] == 0].reset_index(drop=True),
                                  lanes[lanes["fold"] == 0].reset_index(drop=True), rtol=1e-5)


def test_beta_sweep_pairs_every_beta_with_beta_zero(project):
    _stage(project, "beta_sweep")
    smoke = {**PARAMS["beta_sweep"], **PARAMS["beta_sweep"]["smoke_overrides"]}
    table = pd.read_csv(Layout(project).tables_dir / "beta_sweep.csv")
    assert list(table.columns) == ["model", "beta", "element", "mse", "diff_vs_beta0", "lo", "hi"]
    assert len(table) == len(smoke["models"]) * len(smoke["betas"]) * table["element"].nunique()
    assert (table.loc[table["beta"] == 0.0, "diff_vs_beta0"] == 0.0).all()
    assert "Code: git revision " in Layout(project).report_html("beta_sweep").read_text()   # what made it


def test_ablation_compares_each_configuration_with_every_switch_off_paired_over_cores(project):
    _stage(project, "ablation")
    table = pd.read_csv(Layout(project).tables_dir / "ablation.csv").set_index("configuration")
    assert table.columns[0] == "r2_1-3_kev" and len(table) == 3 + len(SWITCHES)     # every switch, and 3 more
    assert {"diff_vs_all_off", "lo", "hi"} <= set(table.columns)
    assert table.loc["axs_plus, all off", "diff_vs_all_off"] == 0.0
    assert (table["lo"] <= table["diff_vs_all_off"]).all() and (table["diff_vs_all_off"] <= table["hi"]).all()


def test_normalisation_twins_are_compared_with_what_the_training_stage_trained(project):
    """The twin (smoke: AXS-scatter) against the reference the training stage wrote (LASSO-scatter), per
    element and on the visible elements' mean relative MSE; its raw-input AXS was not trained, so it is left out."""
    _stage(project, "train", model="lasso_scatter")
    _stage(project, "normalisation")
    table = pd.read_csv(Layout(project).tables_dir / "normalisation.csv")
    assert list(table.columns) == ["model", "against", "element", "mse", "against_mse", "diff", "lo", "hi", "n"]
    assert set(zip(table["model"], table["against"])) == {("axs_scatter", "lasso_scatter")}
    visible = table.set_index("element").loc["visible"]
    assert visible["diff"] == pytest.approx(visible["mse"] - visible["against_mse"], rel=1e-4)   # 6 figures
    assert visible["lo"] <= visible["diff"] <= visible["hi"]
