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
import yaml

from axs import paths
from axs.reports import Layout, export_html, stage_parameters
from pipeline_fixtures import tree_digest, write_raw_data

PARAMS = yaml.safe_load(paths.PARAMS.read_text())
# Tables, metrics and dvc plot data: what must come out byte-identical from two forced runs.
TABLES = ("tables/table1.csv", "tables/table2.csv", "tables/removed_elements.csv", "metrics.json",
          "plots/mse_per_element.csv", "plots/relative_mse_per_element.csv")


def _project(root: Path, baselines=("lr", "fcnn"), n_cores: int = 10) -> Path:
    """A project folder: raw data plus the repository's params.yaml with fewer baselines (for time)."""
    write_raw_data(root / "data", n_cores=n_cores)
    params = yaml.safe_load(paths.PARAMS.read_text())
    params["baselines"]["models"] = list(baselines)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _stage_commands(root: Path, baselines) -> list[list[str]]:
    base = [sys.executable, "-m", "axs.stage"]
    tail = ["--root", str(root), "--smoke"]
    return ([base + ["prepare"] + tail] + [base + ["baselines", "--model", m] + tail for m in baselines]
            + [base + ["train_axs"] + tail, base + ["evaluate"] + tail])


def test_smoke_overrides_are_merged_only_in_smoke_mode():
    full = stage_parameters(PARAMS, "train_axs", smoke=False)
    smoke = stage_parameters(PARAMS, "train_axs", smoke=True)
    assert full["hyperparams"]["epochs"] == PARAMS["train_axs"]["hyperparams"]["epochs"]
    assert smoke["hyperparams"]["epochs"] == PARAMS["train_axs"]["smoke_overrides"]["hyperparams"]["epochs"]
    assert smoke["hyperparams"]["beta"] == full["hyperparams"]["beta"]        # deep merge keeps the rest
    assert "smoke_overrides" not in smoke and smoke["smoke"] is True
    assert stage_parameters(PARAMS, "prepare", smoke=True)["n_folds"] == 2
    one = stage_parameters(PARAMS, "baselines", model="cnn", smoke=False)
    assert one == {"model": "cnn", "seed": PARAMS["baselines"]["seed"],
                   "hyperparams": PARAMS["baselines"]["cnn"], "smoke": False}
    assert stage_parameters(PARAMS, "evaluate")["models"] == PARAMS["baselines"]["models"] + ["axs"]


def test_params_and_dvc_yaml_agree():
    """Every stage of dvc.yaml runs the stage runner and declares exactly the runner's outputs."""
    dvc = yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"]
    layout = Layout(Path("."))
    assert list(dvc) == ["prepare", "baselines", "train_axs", "evaluate"]
    for stage, spec in dvc.items():
        body = spec.get("do", spec)
        model = "${item}" if "foreach" in spec else None
        assert body["cmd"].startswith(f"python -m axs.stage {stage}")
        declared = [next(iter(o)) if isinstance(o, dict) else o for o in body.get("outs", []) + body.get("metrics", [])]
        assert sorted(declared) == sorted(str(p) for p in layout.outputs(stage, model))
        assert "smoke" in body["params"]
        notebook = f"notebooks/{layout.report_name(stage)}.py"
        assert notebook in body["deps"] and (paths.ROOT / notebook).exists()
    assert dvc["baselines"]["foreach"] == "${baselines.models}"


def test_html_export_is_self_contained(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title $x^2$")])
    nbformat.write(nb, tmp_path / "n.ipynb")
    page = export_html(tmp_path / "n.ipynb", tmp_path / "out" / "n.html").read_text()
    assert "Title" in page
    assert not re.search(r"<script[^>]+src=[\"']https?://", page)
    assert not re.search(r"<link[^>]+href=[\"']https?://", page)


def test_bad_data_stops_prepare_with_the_message_and_leaves_nothing(tmp_path):
    root = _project(tmp_path)
    counts = root / "data/spectra/core_002_o1.txt"
    counts.write_text(counts.read_text().replace("# live_time_s: 20.0\n", ""))
    before = tree_digest(root / "data")
    run = subprocess.run(_stage_commands(root, [])[0], capture_output=True, text=True)
    assert run.returncode == 1
    assert "axs.stage prepare: data/spectra/core_002_o1.txt: field 'sha256'" in run.stderr   # relative to root
    layout = Layout(root)
    assert not any(p.exists() for p in layout.outputs("prepare"))
    assert tree_digest(root / "data") == before


@pytest.mark.slow
def test_smoke_pipeline_runs_every_notebook_and_two_forced_runs_give_identical_tables(tmp_path):
    """Every notebook runs end to end; two independent runs (in parallel) give byte-identical tables.

    One baseline (FCNN, seeded and stochastic) keeps the time down; the others share its notebook."""
    baselines = ("fcnn",)
    roots = [_project(tmp_path / name, baselines) for name in ("a", "b")]
    chains = [" && ".join(subprocess.list2cmdline(c) for c in _stage_commands(r, baselines)) for r in roots]
    runs = [subprocess.Popen(c, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for c in chains]
    for run in runs:
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:]
    layout = Layout(roots[0])
    for stage, model in [("prepare", None), *(("baselines", m) for m in baselines), ("train_axs", None),
                         ("evaluate", None)]:
        for path in layout.outputs(stage, model):
            assert path.exists(), path
    assert (layout.out_dir("train_axs") / "model" / "axs.keras").exists()
    index = layout.index.read_text()
    for needed in ("Table 1", "Table 2", "error floor", "03_train_axs.html", "data:image/png;base64"):
        assert needed in index
    assert not re.search(r"<script[^>]+src=[\"']https?://", index)
    metrics = json.loads(layout.metrics.read_text())
    assert set(metrics) == {"fcnn", "axs"}
    for name in TABLES:
        assert (roots[0] / "reports" / name).read_bytes() == (roots[1] / "reports" / name).read_bytes(), name
    assert not (roots[0] / "data" / "artifacts").exists()
    shutil.rmtree(tmp_path)
