"""The grid search of paper section 3.3 as DVC experiments.

    python -m axs.gridsearch queue [--group axs] [--dry-run]   # one `dvc exp run --queue -S ...` per grid point
    dvc queue start -j 2                                 # run the queue with two parallel workers
    dvc exp show --only-changed --sort-by reports/metrics.json:axs.mean_relative_mse

The grid lives in ``grid.yaml`` (group -> params.yaml key -> values); the
Cartesian product of each group's values is queued, named
``grid-<group>-<nnn>``. Each experiment is a full ``dvc repro`` in its own
workspace; DVC's run cache skips the stages whose inputs did not change.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

import yaml

from axs import paths


def grid_points(grid: dict[str, dict[str, list]], groups: list[str] | None = None) -> list[tuple[str, dict]]:
    """(experiment name, {params key: value}) for every point of the chosen groups' grids, in file order."""
    points = []
    for group, axes in grid.items():
        if groups and group not in groups:
            continue
        keys = list(axes)
        for n, values in enumerate(itertools.product(*(axes[k] for k in keys)), start=1):
            points.append((f"grid-{group}-{n:03d}", dict(zip(keys, values))))
    return points


def queue_command(name: str, setting: dict) -> list[str]:
    """The ``dvc exp run --queue`` command for one grid point (values as JSON, which DVC parses as YAML)."""
    command = ["dvc", "exp", "run", "--queue", "--name", name]
    for key, value in setting.items():
        command += ["--set-param", f"{key}={json.dumps(value)}"]
    return command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axs.gridsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["queue", "list"])
    parser.add_argument("--grid", type=Path, default=paths.ROOT / "grid.yaml")
    parser.add_argument("--group", action="append", help="only this group of grid.yaml (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands without running them")
    args = parser.parse_args(argv)
    points = grid_points(yaml.safe_load(args.grid.read_text()), args.group)
    for name, setting in points:
        command = queue_command(name, setting)
        if args.action == "list" or args.dry_run:
            print(subprocess.list2cmdline(command))
        else:
            subprocess.run(command, check=True, cwd=args.grid.parent)
    if args.action == "queue" and not args.dry_run:
        print(f"queued {len(points)} experiments; run them with `dvc queue start -j 2`, "
              "watch with `dvc queue status`, compare with `dvc exp show --only-changed`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
