"""Installing just to predict: `pip install .` gives the library and `axs predict` without the
compendium's tools (JupyterLab, DVC, papermill, figures, the stand-in generator), which come with
the `pipeline` extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from axs.pipeline import paths

PIPELINE_ONLY = ("dvc", "papermill", "jupytext", "nbconvert", "nbformat", "ipykernel", "jupyterlab",
                 "matplotlib", "seaborn", "spekpy")


def test_core_dependencies_leave_the_pipeline_tools_to_an_extra():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    core = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    assert not core & set(PIPELINE_ONLY)
    extra = {d.split(">")[0].strip().lower() for d in project["optional-dependencies"]["pipeline"]}
    assert {"dvc", "papermill", "jupyterlab", "jupytext"} <= extra


BLOCKER = f"""
import sys
from importlib.abc import MetaPathFinder
class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {PIPELINE_ONLY!r}:
            raise ImportError(f'{{name}} is not installed (pipeline extra)')
        return None
sys.meta_path.insert(0, Block())
"""


def test_predict_runs_without_the_pipeline_tools(tmp_path):
    """The command line, model loading and prediction import nothing from the pipeline extra."""
    code = BLOCKER + """
import numpy as np
from axs import archive, cli, importers, models, predict
m = models.make_model("lr", energies_kev=np.linspace(0.5, 40, 64), elements=["Fe"], seed=0)
try:
    cli.main(["predict", "--help"])
except SystemExit as done:
    assert done.code == 0
print("predicted without the pipeline tools")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "predicted without the pipeline tools" in run.stdout
