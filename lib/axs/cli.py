"""The ``axs`` command. Subcommands are added to :data:`SUBCOMMANDS` as ``name -> (add_arguments, run)``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from pathlib import Path

#: Resampling warnings printed before the rest are summarised as a count (see --verbose).
WARNINGS_LISTED = 5

PREDICT_HELP = "predict element concentrations of new spectra with a saved model"

PREDICT_DESCRIPTION = textwrap.dedent("""\
    Predict the concentration of every element the model was trained on for new spectra.

    Spectra files (folders are searched for them):
      *.txt, *.txt.gz  the project's plain-text spectrum format
      *.mca            PyMca MCA files (SPEC-style #@CALIB/#@CTIME, or Amptek <<PMCA SPECTRUM>>)
      *.csv            two columns: energy_kev, counts (optional '# sample_id: ...' lines)
    Orientations of one sample are averaged: the sample comes from the file's header
    (sample_id, orientation) or from the name <sample>_o<k>.<ext>. A spectrum on another
    energy grid than the model's is resampled onto it (with a warning); one that does not
    cover the model's energy range, or cannot be read, is reported and the other files are
    still predicted. OUT (.csv) gets one row per sample: sample_id, n_spectra, files, then
    <element>_<unit> (unit pct = weight percent, ppm).

    Archive mode: when SPECTRA are netCDF files (*.nc) or one Zarr store (*.zarr) holding
    counts(spectrum, channel), live_time_s, energy_offset_kev, energy_gain_kev per spectrum,
    every spectrum is predicted chunk by chunk with dask (bounded memory) into OUT, a store
    of the same kind (.nc or .zarr); --scheduler runs it on a dask.distributed cluster.

    Exit status: 0 all spectra predicted; 1 some could not be (details on stderr; the
    others are in OUT); 2 bad usage or a model that cannot be loaded.""")

PREDICT_EPILOG = textwrap.dedent("""\
    examples:
      axs predict artifacts/train_axs/model data/spectra -o predictions.csv
      axs predict artifacts/train_axs/model core_001_o1.mca core_001_o2.mca field.csv -o out.csv
      axs predict artifacts/train_axs/model data/unlabelled/pool_*.nc -o pool_predictions.zarr \\
          --scheduler tcp://scheduler:8786""")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="saved model: a .keras or .joblib file written by a model's save(), "
                             "or a folder holding one (e.g. artifacts/train_axs/model)")
    parser.add_argument("spectra", nargs="+", type=Path, metavar="SPECTRA",
                        help="spectrum files or folders of them; or netCDF/Zarr spectra archives")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="output: a .csv table for spectrum files; a .nc or .zarr store for archives")
    parser.add_argument("--live-time-s", type=float, default=None, metavar="S",
                        help="live time (s) for files that do not record one (.mca without "
                             "#@CTIME/LIVE_TIME, .csv without '# live_time_s:')")
    parser.add_argument("--chunk-spectra", type=int, default=8192, metavar="N",
                        help="archive mode: spectra per dask chunk (memory per worker grows with it; "
                             "default %(default)s)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="archive mode: address of a dask.distributed scheduler "
                             "(default: local threads)")
    parser.add_argument("--level", type=float, default=0.9, metavar="P",
                        help="coverage of the prediction intervals <element>_lo, <element>_hi "
                             "(default %(default)s; from the model's field.json)")
    parser.add_argument("--strict", action="store_true",
                        help="exit status 1 when any sample is flagged as unlike the training data "
                             "(column 'flags'); 2 when the model has no field.json to check with")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"list every resampled file (default: the first {WARNINGS_LISTED} and a count)")


def run_predict(args: argparse.Namespace) -> int:
    from axs.archive import is_archive

    archives = [p for p in args.spectra if is_archive(p)]
    if archives and len(archives) != len(args.spectra):
        print("axs predict: give either spectrum files or archives (.nc/.zarr), not both", file=sys.stderr)
        return 2
    if archives:
        return _predict_archive(args)
    return _predict_files(args)


def _predict_files(args) -> int:
    from axs.predict import load_predictor, predict_files, write_table

    if args.out.suffix.lower() != ".csv":
        print(f"axs predict: {args.out}: expected a .csv output for spectrum files", file=sys.stderr)
        return 2
    try:
        model = load_predictor(args.model)
    except (OSError, ValueError) as err:
        print(f"axs predict: cannot load the model: {err}", file=sys.stderr)
        return 2
    # applicability flags and intervals (axs.bundle): --level, --strict
    from axs.bundle import flag_summary, load_field
    try:
        field = load_field(args.model)
    except ValueError as err:
        print(f"axs predict: cannot load the model: {err}", file=sys.stderr)
        return 2
    if not 0 < args.level < 1:
        print(f"axs predict: --level: expected a coverage between 0 and 1, got {args.level}", file=sys.stderr)
        return 2
    if field is None and args.strict:
        print(f"axs predict: --strict: {args.model} has no field.json to check applicability with "
              "(export the model with axs.bundle.export_model)", file=sys.stderr)
        return 2
    run = predict_files(model, args.spectra, live_time_s=args.live_time_s, field=field, level=args.level)
    listed = run.warnings if args.verbose else run.warnings[:WARNINGS_LISTED]
    for warning in listed:
        print(f"warning: {warning}", file=sys.stderr)
    if len(run.warnings) > len(listed):
        print(f"warning: ... and {len(run.warnings) - len(listed)} more spectra resampled onto the model's grid "
              "(--verbose lists them)", file=sys.stderr)
    for error in run.errors:
        print(f"error: {error}", file=sys.stderr)
    if len(run.table):
        write_table(run.table, args.out)
    n_files = int(run.table["n_spectra"].sum()) if len(run.table) else 0
    print(f"{len(run.table)} samples from {n_files} spectra -> "
          f"{args.out if len(run.table) else '(nothing written)'}; {len(run.errors)} failed", file=sys.stderr)
    print(flag_summary(run.table) if field is not None else
          f"applicability: not checked ({args.model} has no field.json)", file=sys.stderr)
    flagged = field is not None and len(run.table) > 0 and not run.table["applicable"].all()
    return 0 if run.ok and len(run.table) and not (args.strict and flagged) else 1


def _predict_archive(args) -> int:
    from axs.archive import predict_archive
    from axs.errors import DataError

    if not args.model.exists():
        print(f"axs predict: cannot load the model: {args.model}: no saved model there", file=sys.stderr)
        return 2
    try:
        counts = predict_archive(args.model, args.spectra, args.out, chunk_spectra=args.chunk_spectra,
                                 scheduler=args.scheduler)
    except (DataError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{counts['spectra']} spectra -> {args.out} ({counts['on_grid']} on the model's grid, "
          f"{counts['resampled']} resampled, {counts['not_covered']} not covered)", file=sys.stderr)
    if counts["not_covered"]:
        print(f"error: {counts['not_covered']} spectra do not cover the model's energy range or have no "
              "positive live time: their concentrations are NaN (grid_status = -1)", file=sys.stderr)
        return 1
    return 0


#: name -> (help, description, epilog, add_arguments, run)
SUBCOMMANDS = {
    "predict": (PREDICT_HELP, PREDICT_DESCRIPTION, PREDICT_EPILOG, add_predict_arguments, run_predict),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="axs", description="Analysis-by-XRF-Synthesis: element concentrations from EDXRF spectra.",
        epilog="Run 'axs COMMAND --help' for a command's options.")
    from axs import __version__
    parser.add_argument("--version", action="version", version=f"axs {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_, description, epilog, add_arguments, run) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=description, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
