"""The label-efficiency study in lanes: its folds dealt to processes run side by side, then merged and reported.

    python -m axs.pipeline.lanes --lanes 2                  # what make experiments runs (JOBS=1: --lanes 1)
    python -m axs.pipeline.lanes --lanes 2 --dataset real   # the measured set's study (label_efficiency.per_dataset)

One TensorFlow fit keeps about 1.4 cores busy with small ops, so one process on a 2-core machine leaves much
of the second core idle. Here the outer folds to run (``label_efficiency.run_folds``, else ``outer_folds``)
are dealt round-robin to ``--lanes`` processes, each ``python -m axs.pipeline.stage label_efficiency`` on
its own project folder (``artifacts/lanes/lane<k>/``: a copy of the parameters naming its folds, the
prepared dataset and the unlabelled archive linked, never copied) with one thread per library. A run depends
only on its (seed, fold, size, repeat), so the lanes' tables merged (:func:`axs.label_efficiency.merge_folds`,
the committed table's rows of folds not run kept) are the table one process would write, up to the last
bits of float sums in another thread count; the study's report is then written from the merged table
(``run_folds: []``), and the lanes' out-of-fold predictions are joined into its ``predictions.csv``.
Measured on this project's 2-core machine: each lane takes about 27 min per fold, so two lanes run the ten folds
in about 2.3 h, where one process was estimated at 3.6 h from its CPU time per fit (docs/experiments.md, "Cost").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from axs import files
from axs.label_efficiency import merge_folds
from axs.pipeline import paths
from axs.pipeline.stage import (StageFailed, last_lines, layout_for, load_params, run_reported, run_stage,
                                stage_parameters)

STAGE = "label_efficiency"

#: Each lane runs its fits on one thread per library: two lanes then share two cores without oversubscription.
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def deal(folds: list[int], lanes: int) -> list[list[int]]:
    """``folds`` dealt round-robin to at most ``lanes`` lanes (none empty), in order within each lane."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    return [list(folds[k::lanes]) for k in range(min(lanes, len(folds)))]


def _lane_root(root: Path, params: dict, dataset: str, pool_dir: str | None, k: int,
               folds: list[int]) -> tuple[Path, Path]:
    """A fresh project folder for lane ``k``: its parameters (``run_folds``: its folds) and links to the
    prepared dataset and the unlabelled archive ``pool_dir`` of ``root``. Returns (folder, parameters file)."""
    lane = root / paths.ARTIFACTS.relative_to(paths.ROOT) / "lanes" / f"lane{k}"
    shutil.rmtree(lane, ignore_errors=True)
    prepared = layout_for(root, params, dataset)[1].out_dir("prepare")
    links = [prepared.relative_to(root)]
    if pool_dir:
        links.append(Path(pool_dir))
    for relative in links:
        if not (root / relative).exists():
            raise StageFailed(f"{root / relative}: missing; the study needs it (make experiments writes it)")
        (lane / relative).parent.mkdir(parents=True, exist_ok=True)
        (lane / relative).symlink_to((root / relative).resolve(), target_is_directory=True)
    return lane, _write_params(lane / "params.yaml", params, folds)


def _write_params(path: Path, params: dict, run_folds: list[int]) -> Path:
    """``params`` with the study's ``run_folds`` replaced, written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**params, STAGE: {**params[STAGE], "run_folds": run_folds}}, sort_keys=False),
                    encoding="utf-8")
    return path


def run_lanes(root: str | Path = paths.ROOT, params_path: str | Path | None = None, lanes: int = 2,
              smoke: bool | None = None, dataset: str | None = None) -> float:
    """Run the study in ``lanes`` processes, merge their tables into ``root``'s and report it; returns the
    wall time in seconds. One lane: the stage runner in this process, as ``python -m axs.pipeline.stage``."""
    start = time.perf_counter()
    root = Path(root).resolve()
    params_path = Path(params_path or root / "params.yaml").resolve()
    if lanes == 1:
        run_stage(STAGE, root=root, params_path=params_path, dataset=dataset, smoke=smoke)
        return time.perf_counter() - start
    params = load_params(params_path)
    dataset, layout = layout_for(root, params, dataset)
    section = stage_parameters(params, STAGE, dataset, None, smoke)
    folds = section["outer_folds"] if section.get("run_folds") is None else list(section["run_folds"])
    processes = []
    for k, lane_folds in enumerate(deal(folds, lanes)):
        lane, lane_params = _lane_root(root, params, dataset, section.get("pool_dir"), k, lane_folds)
        log = lane / "lane.log"
        command = [sys.executable, "-m", "axs.pipeline.stage", STAGE, "--root", str(lane), "--params",
                   str(lane_params), "--dataset", dataset, *(["--smoke"] if smoke else [])]
        with open(log, "wb") as out:
            processes.append((lane, lane_folds, log, subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **ONE_THREAD})))
        print(f"lane {k}: outer folds {lane_folds} ({log})", flush=True)
    failed = [(lane, log) for lane, _, log, process in processes if process.wait() != 0]
    if failed:
        raise StageFailed("; ".join(f"lane {lane.name} failed, last lines of {log}:\n{last_lines(log)}"
                                    for lane, log in failed))
    lane_layouts = [layout_for(lane, params, dataset)[1] for lane, *_ in processes]
    new = pd.concat([pd.read_csv(lane_layout.tables_dir / paths.EXPERIMENT_TABLES[STAGE])
                     for lane_layout in lane_layouts], ignore_index=True)
    table_path = layout.tables_dir / paths.EXPERIMENT_TABLES[STAGE]
    previous = pd.read_csv(table_path) if table_path.exists() else None
    table = merge_folds(new, previous, folds, section["outer_folds"], list(section["runs"]),
                        list(dict.fromkeys(new["element"])))
    files.write_csv(table, table_path)
    report_params = _write_params(root / paths.ARTIFACTS.relative_to(paths.ROOT) / "lanes" / "report.yaml", params, [])
    run_stage(STAGE, root=root, params_path=report_params, dataset=dataset, smoke=smoke)
    predictions = [lane_layout.out_dir(STAGE) / "predictions.csv" for lane_layout in lane_layouts]
    files.write_csv(pd.concat([pd.read_csv(p) for p in predictions if p.exists()], ignore_index=True),
                    layout.out_dir(STAGE) / "predictions.csv")
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axs.pipeline.lanes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lanes", type=int, default=2, help="processes side by side (default 2; 1: one process)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project folder (default: here)")
    parser.add_argument("--params", type=Path, default=None, help="parameters file (default ROOT/params.yaml)")
    parser.add_argument("--smoke", action="store_true", help="force smoke mode (overrides params 'smoke')")
    parser.add_argument("--dataset", help="one of params datasets the study has settings for (default: the first)")
    args = parser.parse_args(argv)
    if args.lanes < 1:
        parser.error(f"--lanes must be at least 1, got {args.lanes}")
    name = " ".join(x for x in (STAGE, args.dataset) if x)
    return run_reported(f"axs.pipeline.lanes {name} in {args.lanes} lane(s)",
                        lambda: run_lanes(args.root, args.params, args.lanes, True if args.smoke else None,
                                          args.dataset))


if __name__ == "__main__":
    sys.exit(main())
