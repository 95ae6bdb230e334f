"""Run the project's benchmarks and write their figures to one flat JSON object.

Each ``benchmarks/bench_*.py`` defines ``run() -> dict[str, float]``; names are
global (prefix them with the thing measured). Figures are measurements on the
machine at hand, printed and saved, never asserted.

    python benchmarks/run.py --out reports/bench.json [--only bench_models ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/bench.json"))
    parser.add_argument("--only", nargs="*", default=None,
                        help="benchmark files to run (stem, e.g. bench_groundtruth); others keep their last figures")
    args = parser.parse_args(argv)

    files = sorted(HERE.glob("bench_*.py"))
    if args.only:
        files = [f for f in files if f.stem in set(args.only)]
    figures = json.loads(args.out.read_text()) if args.only and args.out.exists() else {}
    for path in files:
        start = time.perf_counter()
        print(f"== {path.stem}", flush=True)
        result = load(path).run()
        for name, value in result.items():
            print(f"{name}: {value:.6g}", flush=True)
        figures.update({k: float(v) for k, v in result.items()})
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    figures["bench_cpu_count"] = float(len(os.sched_getaffinity(0)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
