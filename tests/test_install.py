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
    """The command line, model loading and prediction import nothing from the pipeline extra: an LR
    trained here predicts a spectrum file through ``axs predict``, and the table holds its prediction."""
    code = BLOCKER + """
import numpy as np
import pandas as pd
from axs import cli, models
energies_kev = np.linspace(0.5, 40, 64)
rng = np.random.default_rng(0)
X = rng.poisson(50.0, (12, 64)).astype(float)
Y = 0.01 * X[:, [np.argmin(np.abs(energies_kev - 6.40))]]       # Fe read off its K-L3 channel
model = models.make_model("lr", energies_kev=energies_kev, elements=["Fe"], seed=0).fit(X, Y)
model.save("lr.skops")
rows = "\\n".join(f"{e:.6f},{int(c)}" for e, c in zip(energies_kev, X[0] * 30.0))
open("core_001_o1.csv", "w").write(f"# live_time_s: 30.0\\nenergy_kev,counts\\n{rows}\\n")
assert cli.main(["predict", "lr.skops", "core_001_o1.csv", "-o", "predicted.csv"]) == 0
table = pd.read_csv("predicted.csv")
expected = float(model.predict(X[:1])[0, 0])
assert np.isclose(table["Fe_pct"].iloc[0], expected, rtol=1e-6), (table.to_dict(), expected)
print("predicted without the pipeline tools")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "predicted without the pipeline tools" in run.stdout
