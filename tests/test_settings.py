"""One source of truth for settings: each notebook's `parameters` cell equals its params.yaml section."""

from __future__ import annotations

import ast

import jupytext
import pytest
import yaml

from axs.pipeline import paths
from axs.pipeline.stage import stage_parameters

PARAMS = yaml.safe_load(paths.PARAMS.read_text())
#: Parameters the runner injects from the project layout rather than from params.yaml.
LAYOUT_PARAMETERS = {"data_dir", "artifacts_dir", "out_dir", "figures_dir", "tables_dir", "plots_dir",
                     "metrics_path", "index_path", "other_reports", "experiment_reports", "model_reports",
                     "previous_table"}


def notebook_defaults(stage: str) -> dict:
    """The literal values assigned in the notebook's cell tagged ``parameters`` (paths left out)."""
    notebook = jupytext.read(paths.NOTEBOOKS / f"{paths.NOTEBOOK_NAMES[stage]}.py")
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{stage}: expected one cell tagged 'parameters'"
    values = {}
    for node in ast.parse(cells[0].source).body:
        name = node.targets[0].id
        if name not in LAYOUT_PARAMETERS:
            values[name] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("stage", [s for s in paths.STAGES if (paths.NOTEBOOKS / f"{paths.NOTEBOOK_NAMES[s]}.py")
                                   .exists()])
def test_notebook_parameters_equal_params_yaml(stage):
    """The defaults a user sees when opening the notebook in JupyterLab are what the pipeline runs
    (train: the default model's section; the runner's layout folders aside)."""
    defaults = notebook_defaults(stage)
    model = defaults.get("model")
    expected = stage_parameters(PARAMS, stage, model=model, smoke=False)
    if stage in paths.EXPERIMENT_TABLES:     # derived from train.<model>, which test_train checks
        assert defaults.pop("hyperparams") == {} and expected.pop("hyperparams")
    assert defaults == expected


def test_library_defaults_are_documented_as_the_libraries_own():
    """models.DEFAULTS are the library's defaults for direct callers; the pipeline's values live in
    params.yaml only, so the README quotes neither."""
    readme = (paths.ROOT / "README.md").read_text()
    for key in ("n_alphas", "learning_rate: 0.", "epochs: ", "beta: "):
        assert key not in readme


def test_every_decoder_model_is_its_cnn_plus_decoder_settings():
    """train.<decoder model> = train.<its CNN counterpart> plus only the decoder's own settings (beta, the pool,
    the decoder's switches): the comparison with the CNN then isolates the decoder (issue 20)."""
    from axs.models import DEFAULTS, cnn_counterpart, has_decoder, parse

    train = PARAMS["train"]
    checked = 0
    for model in [*train["models"], *PARAMS["normalisation"]["models"]]:     # the pipeline's and the twins'
        if not has_decoder(model):
            continue
        decoder_settings = (set(DEFAULTS[parse(model)[0].name]) - set(DEFAULTS["cnn"])) | {"use_unlabelled"}
        counterpart = train[cnn_counterpart(model)]
        shared = {k: v for k, v in train[model].items() if k not in decoder_settings}
        differing = sorted(k for k in {*shared, *counterpart} if shared.get(k) != counterpart.get(k))
        assert not differing, f"train.{model} differs from its CNN counterpart in {differing}"
        checked += 1
    assert checked >= 2
