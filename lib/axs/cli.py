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

    Spectra files (folders are searched for them; other files there are named as skipped):
      *.txt, *.txt.gz  the project's plain-text spectrum format
      *.mca            PyMca MCA files (SPEC-style #@CALIB/#@CTIME, or Amptek <<PMCA SPECTRUM>>);
                       a file holding several spectra gives one measurement per spectrum
      *.csv            two columns: energy_kev, counts, decimal points (optional '# sample_id: ...',
                       '# live_time_s: ...', '# tube: Rh 40 kV' lines)
      *.msa, *.emsa    EMSA/MAS spectral data files (read with RosettaSciIO)
    Orientations of one sample are averaged: the sample comes from the file's header
    (sample_id, orientation) or from the name <sample>_o<k>.<ext>. A spectrum on another
    energy grid than the model's is resampled onto it (with a note); one that ends short
    only above its tube's voltage (header 'tube: ... kV', or --tube-kv) is zero-filled there
    (with a note); one that does not cover the model's energy range, or cannot be read, is
    reported and the other files are still predicted. Energies beyond 200 keV are taken
    for eV and refused unless --energy-unit eV. OUT (.csv) gets one row per sample:
    sample_id, n_spectra, files, then <element>_<unit> (unit pct = weight percent, ppm),
    then with --theta (AXS models) theta_<element>.

    Archive mode: when SPECTRA are netCDF files (*.nc) or one Zarr store (*.zarr) holding
    counts(spectrum, channel), live_time_s, energy_offset_kev, energy_gain_kev per spectrum,
    every spectrum is predicted chunk by chunk with dask (bounded memory) into OUT, a store
    of the same kind (.nc or .zarr); --scheduler runs it on a dask.distributed cluster.
    Spectra with negative or non-finite counts, a live time that is not positive, or an
    energy range that does not cover the model's are refused (NaN, grid_status < 0) and
    named with their index and sample id.

    OUT is checked before any work: it must have the mode's suffix, must not be one of the
    inputs (or the model), must not be a folder, must be in a writable place, and must not
    exist unless --force is given (the same in both modes). Model files are loaded without
    running code from them (Keras safe mode; skops with a fixed list of trusted types).

    Exit status: 0 all spectra predicted; 1 some could not be (details on stderr; the
    others are in OUT); 2 bad usage, a bad OUT, or a model that cannot be loaded.""")

PREDICT_EPILOG = textwrap.dedent("""\
    examples:
      axs predict artifacts/train_axs/model data/spectra -o predictions.csv
      axs predict artifacts/train_axs/model core_001_o1.mca core_001_o2.mca field.csv -o out.csv --force
      axs predict artifacts/train_axs/model field_ev.csv --energy-unit eV --tube-kv 35 -o out.csv
      axs predict artifacts/train_axs/model data/spectra --theta -o with_theta.csv
      axs predict artifacts/train_axs/model data/unlabelled/pool_*.nc -o pool_predictions.zarr \\
          --scheduler tcp://scheduler:8786""")

FILE_SUFFIXES = (".csv",)
ARCHIVE_SUFFIXES = (".nc", ".zarr")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="saved model: a .keras or .skops file written by a model's save(), "
                             "or a folder holding one (e.g. artifacts/train_axs/model)")
    parser.add_argument("spectra", nargs="+", type=Path, metavar="SPECTRA",
                        help="spectrum files or folders of them; or netCDF/Zarr spectra archives")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="output: a .csv table for spectrum files; a .nc or .zarr store for archives")
    parser.add_argument("-f", "--force", action="store_true",
                        help="overwrite OUT if it exists (never when it is one of the inputs)")
    parser.add_argument("--live-time-s", type=float, default=None, metavar="S",
                        help="live time (s) for files that do not record one (.mca without "
                             "#@CTIME/LIVE_TIME, .csv without '# live_time_s:', .msa without #LIVETIME)")
    parser.add_argument("--energy-unit", choices=("keV", "eV"), default="keV",
                        help="unit of the energies of files that do not state one (.csv, .mca; "
                             "default %(default)s)")
    parser.add_argument("--tube-kv", type=float, default=None, metavar="KV",
                        help="tube voltage (kV) for spectra that do not record one: a spectrum ending "
                             "short of the model's range only above it is zero-filled there")
    parser.add_argument("--theta", action="store_true",
                        help="AXS models, file mode: add the encoder's per-element multipliers theta "
                             "(eq. 4) as theta_<element> columns")
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
                        help=f"list every note and refused spectrum (default: the first {WARNINGS_LISTED} "
                             "of each kind and a count)")


def _usage(message: str) -> int:
    print(f"axs predict: {message}", file=sys.stderr)
    return 2


def output_problem(out: Path, inputs: list[Path], suffixes: tuple[str, ...], force: bool) -> str | None:
    """Why ``out`` cannot be written (None if it can): checked before any work, the same for both modes.

    ``inputs``: every path read (model, spectra files, folders, archives).
    """
    from axs.predict import spectrum_paths

    if out.suffix.lower() not in suffixes:
        kinds = "spectrum files" if suffixes == FILE_SUFFIXES else "archives"
        return f"{out}: expected a {' or '.join(suffixes)} output for {kinds}"
    target = out.resolve()
    for path in inputs:
        read = [path]
        if path.is_dir() and path.suffix.lower() not in ARCHIVE_SUFFIXES:
            try:
                read += spectrum_paths([path])[0]
            except ValueError:
                pass  # a folder without spectra is reported by the prediction itself
        for p in read:
            source = p.resolve()
            nested = path.suffix.lower() in ARCHIVE_SUFFIXES and (source in target.parents
                                                                 or target in source.parents)
            if target == source or nested:
                return f"{out}: is one of the inputs ({p}); choose another output"
    if out.is_dir() and out.suffix.lower() != ".zarr":
        return f"{out}: is a folder; expected a {' or '.join(suffixes)} file name"
    if out.exists() and not force:
        return f"{out}: already exists; pass --force to overwrite it"
    place = target.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        return f"{out}: cannot be written, {place} is not a folder"
    if not os.access(place, os.W_OK | os.X_OK):
        return f"{out}: cannot be written, no permission to write in {place}"
    return None


def _load_model(path: Path):
    from axs.predict import load_predictor

    try:
        return load_predictor(path), None
    except (OSError, ValueError) as err:  # DataError is a ValueError
        return None, f"cannot load the model: {err}"


def run_predict(args: argparse.Namespace) -> int:
    from axs.archive import is_archive

    archives = [p for p in args.spectra if is_archive(p)]
    if archives and len(archives) != len(args.spectra):
        return _usage("give either spectrum files or archives (.nc/.zarr), not both")
    if args.tube_kv is not None and not args.tube_kv > 0:
        return _usage(f"--tube-kv: expected a positive voltage, got {args.tube_kv}")
    problem = output_problem(args.out, [args.model, *args.spectra],
                             ARCHIVE_SUFFIXES if archives else FILE_SUFFIXES, args.force)
    if problem:
        return _usage(problem)
    if archives:
        return _predict_archive(args)
    return _predict_files(args)


def _print_notes(notes: list[str], verbose: bool, what: str, prefix: str = "note") -> None:
    listed = notes if verbose else notes[:WARNINGS_LISTED]
    for note in listed:
        print(f"{prefix}: {note}", file=sys.stderr)
    if len(notes) > len(listed):
        print(f"{prefix}: ... and {len(notes) - len(listed)} more {what} (--verbose lists them)", file=sys.stderr)


def _predict_files(args) -> int:
    from axs.predict import predict_files, require_theta, write_table

    model, problem = _load_model(args.model)
    if problem:
        return _usage(problem)
    if args.theta:
        try:
            require_theta(model)
        except ValueError as err:
            return _usage(str(err))
    if not 0 < args.level < 1:
        return _usage(f"--level: expected a coverage between 0 and 1, got {args.level}")
    from axs.bundle import flag_summary, load_field   # applicability flags and intervals
    try:
        field = load_field(args.model)
    except ValueError as err:
        return _usage(f"cannot load the model: {err}")
    if field is None and args.strict:
        return _usage(f"--strict: {args.model} has no field.json to check applicability with "
                      "(export the model with axs.bundle.export_model)")
    run = predict_files(model, args.spectra, live_time_s=args.live_time_s, energy_unit=args.energy_unit,
                        tube_kv=args.tube_kv, theta=args.theta, field=field, level=args.level)
    _print_notes(run.skipped, args.verbose, "files skipped")
    _print_notes(run.warnings, args.verbose, "spectra moved onto the model's grid")
    for error in run.errors:
        print(f"error: {error}", file=sys.stderr)
    if len(run.table):
        write_table(run.table, args.out)
    n_files = int(run.table["n_spectra"].sum()) if len(run.table) else 0
    print(f"{len(run.table)} samples from {n_files} spectra -> "
          f"{args.out if len(run.table) else '(nothing written)'}; {len(run.errors)} failed"
          + (f"; {len(run.skipped)} files skipped" if run.skipped else ""), file=sys.stderr)
    print(flag_summary(run.table) if field is not None else
          f"applicability: not checked ({args.model} has no field.json)", file=sys.stderr)
    flagged = field is not None and len(run.table) > 0 and not run.table["applicable"].all()
    return 0 if run.ok and len(run.table) and not (args.strict and flagged) else 1


def _predict_archive(args) -> int:
    from axs.archive import predict_archive
    from axs.errors import DataError
    from axs.predict import cached_predictor, model_path

    if args.theta:
        return _usage("--theta: only for spectrum files (a .csv output), not archives")
    try:
        model_file = str(model_path(args.model).resolve())
        cached_predictor(model_file)
    except (OSError, ValueError) as err:
        return _usage(f"cannot load the model: {err}")
    try:
        summary = predict_archive(model_file, args.spectra, args.out, chunk_spectra=args.chunk_spectra,
                                  scheduler=args.scheduler, tube_kv=args.tube_kv, replace=args.force)
    except (DataError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    refused = summary["refused"]
    _print_notes(refused, args.verbose, "spectra refused", prefix="error")
    print(f"{summary['spectra']} spectra -> {args.out} ({summary['on_grid']} on the model's grid, "
          f"{summary['resampled']} resampled, {summary['zero_filled']} zero-filled above the tube voltage, "
          f"{len(refused)} refused)", file=sys.stderr)
    if refused:
        print(f"error: {len(refused)} spectra could not be predicted (not covering the model's energy "
              f"range: {summary['not_covered']}, bad counts: {summary['bad_counts']}, bad live time: "
              f"{summary['bad_live_time']}): their concentrations are NaN (grid_status < 0)", file=sys.stderr)
        return 1
    return 0


INFO_HELP = "show what a saved model was trained on and how it is calibrated"

INFO_DESCRIPTION = textwrap.dedent("""\
    Print what a saved model records: its energy grid, the elements it predicts (with
    units), its hyperparameters, a summary of its training data, the tube, and every entry
    of the field.json beside the model file (applicability thresholds, interval
    calibration), whatever keys it holds.

    Exit status: 0 printed; 2 the model (or its field.json) cannot be read.""")

INFO_EPILOG = textwrap.dedent("""\
    examples:
      axs info artifacts/train_axs/model
      axs info artifacts/train_axs/model/axs.keras --json""")


def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="saved model: a .keras or .skops file, or a folder holding one")
    parser.add_argument("--json", action="store_true", help="print it as JSON")


def format_info(info, indent: int = 0) -> list[str]:
    """Indented ``key: value`` lines of a nested dict; long lists of numbers summarised."""
    lines = []
    pad = "  " * indent
    for key, value in info.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines += format_info(value, indent + 1)
        elif isinstance(value, (list, tuple)) and len(value) > 12 and all(
                isinstance(v, (int, float)) for v in value):
            lines.append(f"{pad}{key}: {len(value)} values, {min(value):.6g} .. {max(value):.6g}")
        elif isinstance(value, float):
            lines.append(f"{pad}{key}: {value:.6g}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{key}: {', '.join(map(str, value))}")
        else:
            lines.append(f"{pad}{key}: {value}")
    return lines


def run_info(args: argparse.Namespace) -> int:
    import json

    from axs.predict import describe_model

    try:
        info = describe_model(args.model)
    except (OSError, ValueError) as err:
        print(f"axs info: cannot read the model: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print("\n".join(format_info(info)))
    return 0


#: name -> (help, description, epilog, add_arguments, run)
SUBCOMMANDS = {
    "predict": (PREDICT_HELP, PREDICT_DESCRIPTION, PREDICT_EPILOG, add_predict_arguments, run_predict),
    "info": (INFO_HELP, INFO_DESCRIPTION, INFO_EPILOG, add_info_arguments, run_info),
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
