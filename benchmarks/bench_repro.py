"""How long the last pipeline run took, read from the run information each stage writes (no computation).

The stage runner writes ``run_info.json`` (wall time ``wall_s``) beside every stage's outputs under
``artifacts/<dataset>/``. Figures:

* ``repro_minutes_estimate``: the sum of the wall times of the last run's ``dvc repro`` stages (prepare, train,
  evaluate; every dataset of ``params.yaml``), in minutes: what a sequential ``make repro`` costs on that
  machine, set-up excluded. Stages that ran beside others (two at once) count their own, longer, wall time.
* ``repro_minutes_<dataset>``: the same for one dataset; ``repro_stages``: how many stages were found.
* ``experiments_minutes_estimate``: the same for ``make experiments`` (the ablation, label efficiency), when run.

Nothing is reported when no full (non-smoke) run's information is there (a fresh clone before ``make repro``).
"""

from __future__ import annotations

from axs.pipeline import paths
from axs.pipeline.reports import stage_runs
from axs.pipeline.stage import load_params

#: The stages ``dvc repro`` runs (dvc.yaml); the others are ``make experiments``.
REPRO_STAGES = ("prepare", "train", "evaluate")


def run() -> dict[str, float]:
    params = load_params(paths.PARAMS)
    figures: dict[str, float] = {}
    repro_s = experiments_s = 0.0
    n_repro = 0
    for dataset in params["datasets"]:
        runs = [r for r in stage_runs(paths.ARTIFACTS / dataset) if not r.get("smoke")]
        seconds = sum(r["wall_s"] for r in runs if r["stage"] in REPRO_STAGES)
        n_repro += sum(r["stage"] in REPRO_STAGES for r in runs)
        experiments_s += sum(r["wall_s"] for r in runs if r["stage"] not in REPRO_STAGES)
        if seconds:
            figures[f"repro_minutes_{dataset}"] = seconds / 60
        repro_s += seconds
    if not n_repro:
        print("no run information under artifacts/ (run make repro first): nothing to report")
        return {}
    figures.update(repro_minutes_estimate=repro_s / 60, repro_stages=float(n_repro))
    if experiments_s:
        figures["experiments_minutes_estimate"] = experiments_s / 60
    return figures
