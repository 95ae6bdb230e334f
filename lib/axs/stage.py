"""Run one pipeline stage: its notebook, executed by papermill with its ``params.yaml`` section.

    python -m axs.stage prepare
    python -m axs.stage baselines --model lasso
    python -m axs.stage evaluate --smoke --root /tmp/run     # smoke mode, another project folder

This is what ``dvc.yaml`` calls. The stage's outputs are written into a
staging folder and moved into place only when the notebook has run to the
end and its HTML report is written; a failing stage leaves none of its
outputs (the previous ones are removed first, as DVC does). A malformed
input stops the stage with the :class:`~axs.errors.DataError` message
(file, line or field, what was expected) and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from axs.reports import STAGES, StageFailed, run_stage


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axs.stage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--model", help="baselines only: the model to cross-validate (one of params "
                        "baselines.models)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="project folder holding data/ and params.yaml; artifacts/ and reports/ are written "
                        "there (default: the current folder; dvc runs stages from the repository root)")
    parser.add_argument("--params", type=Path, default=None, help="parameters file (default ROOT/params.yaml)")
    parser.add_argument("--smoke", action="store_true", help="force smoke mode (overrides params 'smoke')")
    args = parser.parse_args(argv)
    try:
        seconds = run_stage(args.stage, root=args.root, params_path=args.params, model=args.model,
                            smoke=True if args.smoke else None)
    except StageFailed as err:
        print(f"axs.stage {args.stage}: {err}", file=sys.stderr)
        return 1
    print(f"axs.stage {args.stage}{' ' + args.model if args.model else ''}: done in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
