"""The order in which ``make repro`` trains: every dataset's training stages in one queue, costliest first.

``make repro`` runs each dataset's ``prepare`` stage, then hands this module's list to ``xargs -P JOBS``, one
``dvc repro --single-item <target>`` per line: a worker that finishes a stage takes the next, so both cores
stay busy until the queue ends (longest processing time first). Two lanes of one dataset each waited for the
stand-in's, whose stages cost about a fifth more (45.1 against 37.6 min on 2026-12-05's afternoon run; the
queue's schedule of those times: about 41 min).

A stage's cost is its wall time in the last run (``run_info.json`` beside its outputs,
:func:`axs.pipeline.reports.stage_runs`). Stages without one (a fresh clone, a model just added) come first,
ranked by :data:`COSTLIEST_FIRST`: being unknown, they may be long.

    python -m axs.pipeline.train_order            # train@<dataset>-<model>, one per line
    python -m axs.pipeline.train_order --prepare  # prepare@<dataset>, one per line
"""

from __future__ import annotations

import argparse
from pathlib import Path

from axs.model_registry import parse
from axs.pipeline import paths
from axs.pipeline.stage import dataset_names, load_params

#: Base models by their training stage's cost on 2026-12-05's runs, costliest first (AXS+ 8.6-12.9 min, AXS
#: and the direct fits about 4, the CNN and FCNN 3-3.7, PyMca up to 2.7, LASSO 1.6-2.3, LR seconds); a
#: base model not named here ranks after them.
COSTLIEST_FIRST = ("axs_plus", "axs", "fp", "cnn", "fcnn", "pymca", "pca_lasso", "lasso", "lr")


def last_wall_seconds(artifacts: Path, dataset: str) -> dict[str, float]:
    """Model -> wall time (s) of its training stage's last full (non-smoke) run on ``dataset``."""
    from axs.pipeline.reports import stage_runs

    return {r["model"]: float(r["wall_s"]) for r in stage_runs(artifacts / dataset)
            if r["stage"] == "train" and not r.get("smoke")}


def train_targets(params: dict, artifacts: Path = paths.ARTIFACTS) -> list[str]:
    """``train@<dataset>-<model>`` of every dataset and ``train.models`` entry: those without a last wall time
    first (by :data:`COSTLIEST_FIRST`, then dataset), then the others by their last wall time, longest first."""
    unknown, known = [], []
    for d, dataset in enumerate(dataset_names(params)):
        seconds = last_wall_seconds(artifacts, dataset)
        for model in params["train"]["models"]:
            target = f"train@{dataset}-{model}"
            if model in seconds:
                known.append((-seconds[model], target))
            else:
                base = parse(model)[0].name
                rank = COSTLIEST_FIRST.index(base) if base in COSTLIEST_FIRST else len(COSTLIEST_FIRST)
                unknown.append((rank, d, target))
    return [t for *_, t in sorted(unknown)] + [t for _, t in sorted(known)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="the prepare stages instead")
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    targets = ([f"prepare@{d}" for d in dataset_names(params)] if args.prepare else train_targets(params))
    print("\n".join(targets))


if __name__ == "__main__":
    main()
