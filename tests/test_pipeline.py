"""The stage runner and every pipeline notebook, in smoke mode, in temporary project folders."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import xarray as xr
import yaml

from axs.pipeline import paths
from axs.pipeline.paths import Layout
from axs.pipeline.stage import (VOLTAGE_KEYS, StageFailed, execute_notebook, experiment_datasets, export_html,
                                split_unlabelled, stage_parameters)
from axs.reconstruction_scores import REGIONS_KEV
from pipeline_fixtures import tree_digest, write_raw_data

PARAMS = yaml.safe_load(paths.PARAMS.read_text())
# Tables, metrics and dvc plot data: what must come out byte-identical from two forced runs.
TABLES = ("tables/table1.csv", "tables/table2.csv", "tables/removed_elements.csv", "tables/family_mse.csv",
          "metrics.json", "plots/mse_per_element.csv", "plots/relative_mse_per_element.csv")


def _project(root: Path, models=("lr", "fcnn"), n_cores: int = 10) -> Path:
    """A project folder: raw data plus the repository's params.yaml with one dataset and fewer models."""
    write_raw_data(root / "data", n_cores=n_cores)
    params = yaml.safe_load(paths.PARAMS.read_text())
    params["datasets"] = {"standin": {"data_dir": "data", "reports_prefix": ""}}
    params["train"]["models"] = list(models)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _stage_commands(root: Path, models) -> list[list[str]]:
    base = [sys.executable, "-m", "axs.pipeline.stage"]
    tail = ["--root", str(root), "--smoke"]
    return ([base + ["prepare"] + tail] + [base + ["train", "--model", m] + tail for m in models]
            + [base + ["evaluate"] + tail])


def test_smoke_overrides_are_merged_only_in_smoke_mode():
    full = stage_parameters(PARAMS, "train", model="axs", smoke=False)
    smoke = stage_parameters(PARAMS, "train", model="axs", smoke=True)
    assert full["hyperparams"]["epochs"] == PARAMS["train"]["axs"]["epochs"]
    assert smoke["hyperparams"]["epochs"] == PARAMS["train"]["smoke_overrides"]["axs"]["epochs"]
    assert smoke["hyperparams"]["beta"] == full["hyperparams"]["beta"]        # deep merge keeps the rest
    assert "smoke_overrides" not in smoke and "smoke" not in smoke      # smoke acts through the merged values
    assert stage_parameters(PARAMS, "evaluate", smoke=True)["smoke"] is True   # the front page says so
    assert stage_parameters(PARAMS, "prepare", smoke=True)["n_folds"] == 2
    one = stage_parameters(PARAMS, "train", dataset="real", model="cnn", smoke=False)
    assert one == {"model": "cnn", "seed": PARAMS["train"]["seed"], "hyperparams": PARAMS["train"]["cnn"],
                   "dataset_name": "real"}
    assert stage_parameters(PARAMS, "evaluate")["models"] == PARAMS["train"]["models"]


def test_a_datasets_tube_voltage_sets_every_models_on_it():
    """datasets.real.tube_kv (its files do not give one) replaces tube_kv and excitation_kev of the models trained
    on the measured set, in the training stage and in the experiments; the stand-in keeps its models' own."""
    kv = PARAMS["datasets"]["real"]["tube_kv"]
    for model, key in (("fp_scatter", "tube_kv"), ("axs_plus", "tube_kv"), ("pymca", "excitation_kev")):
        real = stage_parameters(PARAMS, "train", dataset="real", model=model, smoke=False)["hyperparams"]
        assert real == {**PARAMS["train"][model], key: kv}
        assert stage_parameters(PARAMS, "train", dataset="standin", model=model, smoke=False)["hyperparams"] \
            == PARAMS["train"][model]
    assert stage_parameters(PARAMS, "train", dataset="real", model="cnn", smoke=False)["hyperparams"] \
        == PARAMS["train"]["cnn"]
    twins = stage_parameters(PARAMS, "normalisation", dataset="real", smoke=False)["hyperparams"]
    assert all(h.get(key, kv) == kv for h in twins.values() for key in VOLTAGE_KEYS)
    for bad in ("42.5 kV", -40, 0, True):
        broken = {**PARAMS, "datasets": {**PARAMS["datasets"], "real": {**PARAMS["datasets"]["real"], "tube_kv": bad}}}
        with pytest.raises(StageFailed, match=r"params.yaml: datasets.real.tube_kv: expected the tube voltage in kV"):
            stage_parameters(broken, "train", dataset="real", model="fp", smoke=False)


def test_an_experiment_runs_on_the_datasets_it_has_settings_for_and_takes_them_before_smoke_mode():
    """label_efficiency.per_dataset.real replaces whole keys of the study on the measured set (its runs, sizes,
    no pool); smoke mode then merges the measured set's own smoke overrides. The ablation has none: refused."""
    study = PARAMS["label_efficiency"]
    assert experiment_datasets(PARAMS, "label_efficiency") == ["standin", "real"]
    assert experiment_datasets(PARAMS, "ablation") == ["standin"]
    assert experiment_datasets(PARAMS, "normalisation") == experiment_datasets(PARAMS, "train") == ["standin", "real"]
    real = stage_parameters(PARAMS, "label_efficiency", dataset="real", smoke=False)
    assert real["runs"] == study["per_dataset"]["real"]["runs"] and real["pools"] == [0] and real["pool_dir"] is None
    assert real["sizes"] == study["per_dataset"]["real"]["sizes"] and "per_dataset" not in real
    assert real["visible"] == study["visible"] and set(real["hyperparams"]) == {"lasso_scatter", "cnn", "axs"}
    smoke = stage_parameters(PARAMS, "label_efficiency", dataset="real", smoke=True)
    assert smoke["sizes"] == [4, None] and smoke["pools"] == [0] and smoke["outer_folds"] == [0]
    standin = stage_parameters(PARAMS, "label_efficiency", smoke=False)
    assert standin["runs"] == study["runs"] and standin["pools"] == study["pools"]
    with pytest.raises(StageFailed, match="ablation.per_dataset.real"):
        stage_parameters(PARAMS, "ablation", dataset="real")


def test_notebooks_find_stage_files_through_the_layout_and_split_the_pool_setting_off():
    layout = Layout.of_artifacts("artifacts/real")
    assert layout == Layout(Path("."), "real")
    assert layout.prepared("dataset") == Path("artifacts/real/prepare/dataset.nc")
    assert layout.prepared("unlabelled").parent == layout.out_dir("prepare")
    assert layout.model_dir("axs") == layout.out_dir("train", "axs") / "model"
    assert split_unlabelled({"beta": 1.0, "use_unlabelled": True}) == ({"beta": 1.0}, True)
    assert split_unlabelled(None) == ({}, False)


def test_dvc_yaml_runs_the_runner_and_declares_exactly_its_outputs():
    """Every stage of dvc.yaml runs the stage runner and declares exactly the runner's outputs, for every
    dataset and model of params.yaml."""
    dvc = yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"]
    assert list(dvc) == ["prepare", "train", "evaluate"]       # the experiments are `make experiments`
    assert dvc["train"]["matrix"] == {"dataset": "${datasets}", "model": "${train.models}"}
    for name, spec in PARAMS["datasets"].items():
        layout = Layout(Path("."), name, spec["reports_prefix"])
        for stage in dvc:
            body = dvc[stage].get("do", dvc[stage])
            models = PARAMS["train"]["models"] if stage == "train" else [None]
            for model in models:
                def resolve(text: str) -> str:
                    return (text.replace("${key}", name).replace("${item.dataset}", name)
                            .replace("${item.model}", str(model)).replace("${item.data_dir}", spec["data_dir"])
                            .replace("${item.reports_prefix}", spec["reports_prefix"]))
                assert resolve(body["cmd"]).startswith(f"python -m axs.pipeline.stage {stage} --dataset {name}")
                declared = [resolve(next(iter(o)) if isinstance(o, dict) else o)
                            for o in body.get("outs", []) + body.get("metrics", [])]
                assert sorted(declared) == sorted(str(p) for p in layout.outputs(stage, model)), (stage, name)
                assert "smoke" in body["params"]
                notebook = f"notebooks/{paths.NOTEBOOK_NAMES[stage]}.py"
                assert notebook in body["deps"] and (paths.ROOT / notebook).exists()


def test_html_export_is_self_contained(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title $x^2$")])
    nbformat.write(nb, tmp_path / "n.ipynb")
    page = export_html(tmp_path / "n.ipynb", tmp_path / "out" / "n.html").read_text()
    assert "Title" in page
    assert not re.search(r"<script[^>]+src=[\"']https?://", page)
    assert not re.search(r"<link[^>]+href=[\"']https?://", page)


def test_output_written_below_python_goes_to_the_log_and_python_s_own_to_the_report(tmp_path, monkeypatch):
    """TensorFlow's C++ log writes to file descriptor 2: the stage's log gets it, the report does not."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST")     # ipykernel copies descriptor 2 into outputs only outside pytest
    source = tmp_path / "n.py"
    source.write_text('# %% tags=["parameters"]\nword = ""\n# %%\nimport os, sys\n'
                      'os.write(2, b"below python\\n")\nprint(word, file=sys.stderr)\n')
    log = tmp_path / "logs" / "n.log"
    executed = execute_notebook(source, tmp_path, {"word": "from python"}, tmp_path, tmp_path / "failed", log)
    outputs = "".join(out.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                      for out in cell.get("outputs", []))
    assert "from python" in outputs and "below python" not in outputs
    assert "below python" in log.read_text()


def test_a_kernel_that_fails_to_start_is_started_again_and_a_lasting_failure_is_reported(tmp_path, monkeypatch):
    """A kernel that lost its TCP port to another stage's kernel dies before it runs a cell: the stage starts a new
    one (KERNEL_START_TRIES in all) and says so in its log; a failure that lasts is reported with the log's tail."""
    import papermill

    from axs.pipeline import stage

    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) < fails_before_success:
            raise RuntimeError("Kernel didn't respond in 60 seconds")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    source = tmp_path / "n.py"
    source.write_text('# %% tags=["parameters"]\nword = ""\n# %%\nprint(word)\n')
    log = tmp_path / "logs" / "n.log"
    fails_before_success = stage.KERNEL_START_TRIES
    executed = execute_notebook(source, tmp_path, {"word": "ran"}, tmp_path, tmp_path / "failed", log)
    assert len(calls) == stage.KERNEL_START_TRIES
    assert "ran" in "".join(out.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                            for out in cell.get("outputs", []))
    assert log.read_text().count("starting a new kernel") == stage.KERNEL_START_TRIES - 1
    calls.clear()
    fails_before_success = stage.KERNEL_START_TRIES + 1
    with pytest.raises(StageFailed, match="RuntimeError: Kernel didn't respond in 60 seconds"):
        execute_notebook(source, tmp_path, {"word": "ran"}, tmp_path, tmp_path / "failed", log)
    assert len(calls) == stage.KERNEL_START_TRIES


def test_bad_data_stops_prepare_with_the_message_and_leaves_nothing(tmp_path):
    root = _project(tmp_path)
    counts = root / "data/spectra/core_002_o1.txt"
    counts.write_text(counts.read_text().replace("# live_time_s: 20.0\n", ""))
    before = tree_digest(root / "data")
    run = subprocess.run(_stage_commands(root, [])[0], capture_output=True, text=True)
    assert run.returncode == 1
    assert "axs.pipeline.stage prepare: FAILED: data/spectra/core_002_o1.txt: field 'sha256'" in run.stderr   # relative
    assert "Traceback" not in run.stderr
    layout = Layout(root)
    assert not any(p.exists() for p in layout.outputs("prepare"))
    assert tree_digest(root / "data") == before


@pytest.mark.slow
def test_smoke_pipeline_runs_every_notebook_and_two_forced_runs_give_identical_tables(tmp_path):
    """The pipeline's notebooks run end to end (the experiments' notebooks run in tests/test_experiments.py);
    two independent runs (in parallel) give byte-identical tables.

    AXS (a seeded, stochastic network with the decoder's extras) and the direct fit (reconstructions without
    a decoder; its instrument characterised on the unlabelled archive) keep the time down; the other models
    share their notebook."""
    models = ("axs", "fp")
    roots = [_project(tmp_path / name, models) for name in ("a", "b")]
    chains = [" && ".join(subprocess.list2cmdline(c) for c in _stage_commands(r, models)) for r in roots]
    runs = [subprocess.Popen(c, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for c in chains]
    for run in runs:     # a kernel that loses its port to the other chain's is started again (stage.py)
        out, _ = run.communicate(timeout=1200)
        assert run.returncode == 0, out[-3000:]
    assert "oneDNN" not in out and "axs.pipeline.stage train axs: done in" in out     # chatter goes to the log
    layout = Layout(roots[0])
    for stage, model in [("prepare", None), *(("train", m) for m in models), ("evaluate", None)]:
        for path in layout.outputs(stage, model):
            assert path.exists(), path
    assert any((layout.out_dir("train", "axs") / "model").iterdir())
    with xr.open_dataset(layout.out_dir("train", "fp") / "predictions.nc") as fp:
        assert {"reconstruction_cps", "theta", "reconstruction_single_cps"} <= set(fp.data_vars)
        assert fp["reconstruction_single_cps"].shape == fp["predicted_single_pct"].shape[:1] + fp["energy_kev"].shape
    index = layout.index.read_text()
    for needed in ("Table 1", "Table 2", "floor", "standin/02_train_axs.html", "data:image/png;base64"):
        assert needed in index
    assert not re.search(r"<script[^>]+src=[\"']https?://", index)
    metrics = json.loads(layout.metrics.read_text())
    assert set(models) <= set(metrics)
    assert "reconstruction_r2_by_region" in metrics["fp"] and "mse_over_best_visible" in metrics["fp"]
    # per orientation: each measurement reconstructed on its own, with its own live time (the smoke data has them)
    assert metrics["fp"]["reconstruction_single_chi2_per_channel"] > 0
    assert set(metrics["fp"]["reconstruction_single_chi2_by_region"]) == set(REGIONS_KEV)
    assert set(metrics["axs"]["reconstruction_single_r2_by_region"]) == set(metrics["axs"]["reconstruction_r2_by_region"])
    for name in TABLES:
        assert (roots[0] / "reports" / name).read_bytes() == (roots[1] / "reports" / name).read_bytes(), name
    assert not (roots[0] / "data" / "artifacts").exists()
    shutil.rmtree(tmp_path)


def test_make_repro_trains_every_dataset_in_one_queue_costliest_first(tmp_path):
    """axs.pipeline.train_order: stages without a last run first (AXS+ before AXS before the direct fits ... before
    LR, the stand-in before the measured set at equal rank), then the others by their last wall time; smoke runs
    do not count. The Makefile hands the list to xargs, one `dvc repro --single-item` each."""
    from axs.pipeline.train_order import train_targets

    params = {"datasets": {"standin": {}, "real": {}}, "train": {"models": ["lr", "lasso_scatter", "axs_plus", "fp"]}}
    assert train_targets(params, tmp_path) == [
        "train@standin-axs_plus", "train@real-axs_plus", "train@standin-fp", "train@real-fp",
        "train@standin-lasso_scatter", "train@real-lasso_scatter", "train@standin-lr", "train@real-lr"]
    for dataset, model, seconds, smoke in [("real", "lr", 500.0, False), ("standin", "fp", 30.0, False),
                                           ("real", "fp", 9000.0, True)]:
        folder = tmp_path / dataset / "train" / model
        folder.mkdir(parents=True)
        (folder / paths.RUN_INFO).write_text(json.dumps({"stage": "train", "dataset": dataset, "model": model,
                                                         "smoke": smoke, "wall_s": seconds}))
    order = train_targets(params, tmp_path)
    assert order[-2:] == ["train@real-lr", "train@standin-fp"] and order[0] == "train@standin-axs_plus"
    assert order.index("train@real-fp") < order.index("train@standin-lasso_scatter")   # its smoke time is no time
    recipe = (paths.ROOT / "Makefile").read_text()
    assert "python -m axs.pipeline.train_order | xargs -P $(JOBS) -n 1 dvc --wait-for-lock repro --single-item" in recipe
