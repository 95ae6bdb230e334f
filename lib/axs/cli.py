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
      *.pdz            Bruker handheld files (pdz24, pdz25; read with pdz-tool): one phase per
                       file, the one at the model's tube voltage or --phase K
    Orientations of one sample are averaged: the sample comes from the file's header
    (sample_id, orientation) or from the name <sample>_o<k>.<ext>. A spectrum on another
    energy grid than the model's is resampled onto it (with a note); one that ends short
    only above its tube's voltage (header 'tube: ... kV', or --tube-kv) is zero-filled there
    (with a note); one that does not cover the model's energy range, or cannot be read, is
    reported and the other files are still predicted. Energies beyond 200 keV are taken
    for eV and refused unless --energy-unit eV. Only regular files are read (not FIFOs or
    devices), of at most 64 MiB also once decompressed, with 2 to 65,536 channels.
    OUT (.csv) gets one row per sample: sample_id, n_spectra, files, then <element>_<unit>
    (unit pct = weight percent, ppm; a value below 0 is written as 0, like its interval's
    lower end), then with --theta (AXS models) theta_<element>, then flags; with the
    model's field.json also applicable and <element>_lo, <element>_hi. A sample the model
    cannot predict (no counts in a scatter-normalised model's scatter window, counts
    beyond float32, a model error) keeps its row with empty values, applicable False and
    the flag saying why (no_scatter_counts, count_overflow, prediction_failed). Text cells
    that a spreadsheet would run as a formula (= + - @) are written with a leading '.

    Archive mode: when SPECTRA are netCDF files (*.nc) or one Zarr store (*.zarr) holding
    counts(spectrum, channel), live_time_s, energy_offset_kev, energy_gain_kev per spectrum,
    every spectrum is predicted chunk by chunk with dask (bounded memory) into OUT, a store
    of the same kind (.nc or .zarr); --scheduler runs it on a dask.distributed cluster.
    Each spectrum goes through the same prediction and checks as a file: concentration,
    flags (a bit mask, attribute flag_meanings) and, with a field.json, applicable,
    lower and upper; --level and --strict work the same. Spectra with negative or
    non-finite counts, a live time that is not positive, or an energy range that does not
    cover the model's are refused (NaN, grid_status < 0); those and the spectra the model
    cannot predict are named with their index and sample id.

    OUT is checked before any work: it must have the mode's suffix, must not be one of the
    inputs (or the model), must not be a folder, must be in a writable place, and must not
    exist unless --force is given (the same in both modes). Model files are loaded without
    running code from them (Keras safe mode; skops with a fixed list of trusted types).

    Exit status: 0 all spectra predicted; 1 some could not be (details on stderr; the
    others are in OUT) or, with --strict, some were flagged; 2 bad usage, a bad OUT, a
    model that cannot be loaded, or a field.json that is malformed or belongs to another
    model file (it is bound to its model by name, elements, energy grid and SHA-256).""")

PREDICT_EPILOG = textwrap.dedent("""\
    examples:
      axs predict artifacts/standin/train/axs/model data/spectra -o predictions.csv
      axs predict artifacts/standin/train/axs/model core_001_o1.mca core_001_o2.mca field.csv -o out.csv --force
      axs predict artifacts/standin/train/axs/model field_ev.csv --energy-unit eV --tube-kv 35 -o out.csv
      axs predict artifacts/standin/train/axs/model data/spectra --theta -o with_theta.csv
      axs predict artifacts/standin/train/axs/model data/unlabelled/pool_*.nc -o pool_predictions.zarr \\
          --scheduler tcp://scheduler:8786""")

FILE_SUFFIXES = (".csv",)
ARCHIVE_SUFFIXES = (".nc", ".zarr")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="saved model: a .keras or .skops file written by a model's save(), "
                             "or a folder holding one (e.g. artifacts/standin/train/axs/model)")
    parser.add_argument("spectra", nargs="+", type=Path, metavar="SPECTRA",
                        help="spectrum files or folders of them; or netCDF/Zarr spectra archives")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="output: a .csv table for spectrum files; a .nc or .zarr store for archives")
    parser.add_argument("-f", "--force", action="store_true",
                        help="overwrite OUT if it exists (never when it is one of the inputs)")
    parser.add_argument("--live-time-s", type=_positive(float), default=None, metavar="S",
                        help="live time (s) for files that do not record one (.mca without "
                             "#@CTIME/LIVE_TIME, .csv without '# live_time_s:', .msa without #LIVETIME)")
    parser.add_argument("--energy-unit", choices=("keV", "eV"), default="keV",
                        help="unit of the energies of files that do not state one (.csv, .mca; "
                             "default %(default)s)")
    parser.add_argument("--tube-kv", type=_positive(float), default=None, metavar="KV",
                        help="tube voltage (kV) for spectra that do not record one: a spectrum ending "
                             "short of the model's range only above it is zero-filled there")
    parser.add_argument("--phase", type=int, default=None, metavar="K",
                        help="Bruker .pdz files: the phase (beam setting, 1-based) to predict; default: the one "
                             "at the model's training tube voltage")
    parser.add_argument("--theta", action="store_true",
                        help="AXS models, file mode: add the encoder's per-element multipliers theta "
                             "(eq. 4) as theta_<element> columns")
    parser.add_argument("--chunk-spectra", type=_positive(int), default=8192, metavar="N",
                        help="archive mode: spectra per dask chunk (memory per worker grows with it; "
                             "default %(default)s)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="archive mode: address of a dask.distributed scheduler "
                             "(default: local threads)")
    parser.add_argument("--level", type=_coverage, default=0.9, metavar="P",
                        help="coverage of the prediction intervals <element>_lo, <element>_hi "
                             "(default %(default)s; from the model's field.json)")
    parser.add_argument("--strict", action="store_true",
                        help="exit status 1 when any sample is flagged as unlike the training data "
                             "(column 'flags'); 2 when the model has no field.json to check with")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"list every note and refused spectrum (default: the first {WARNINGS_LISTED} "
                             "of each kind and a count)")


def _err(message: str) -> None:
    """Print ``message`` on stderr; bytes of file names that are not UTF-8 (surrogates) shown as U+FFFD."""
    print(message.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), file=sys.stderr)


def _usage(message: str) -> int:
    _err(f"axs predict: {message}")
    return 2


def _positive(kind):
    """An argparse type: a positive ``kind`` (int or float)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {'integer' if kind is int else 'number'}, "
                                             f"got {text!r}")
        return value
    return parse


def _coverage(text: str) -> float:
    """An argparse type for --level: the one check of the coverage (:func:`axs.intervals.check_level`)."""
    from axs.intervals import check_level

    try:
        return check_level(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def is_archive(path: Path) -> bool:
    """Whether ``path`` names a spectra archive (``*.nc``, ``*.zarr``; :mod:`axs.archive`), by its suffix."""
    return path.suffix.lower() in ARCHIVE_SUFFIXES


def _resolved(path: Path) -> Path:
    """``path`` made absolute with symlinks followed as far as they go (a symlink loop stays as it is)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):   # Python 3.11 raises RuntimeError for a symlink loop
        return path.absolute()


def output_problem(out: Path, inputs: list[Path], suffixes: tuple[str, ...], force: bool) -> str | None:
    """Why ``out`` cannot be written (None if it can): checked before any work, the same for both modes.

    ``inputs``: every path read (model, spectra files, the folders named, archives).
    """
    import tempfile

    if out.suffix.lower() not in suffixes:
        kinds = "spectrum files" if suffixes == FILE_SUFFIXES else "archives"
        return f"{out}: expected a {' or '.join(suffixes)} output for {kinds}"
    place = Path(os.path.abspath(out)).parent
    while not os.path.exists(place):   # os.path.exists says False where Path.exists raises (names too long)
        place = place.parent
    try:
        longest = os.pathconf(place, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    # atomic_path writes under '.<name>.<8 random characters>.part' first
    if len(os.fsencode(out.name)) + 16 > longest:
        return (f"{out.name[:40]}...: name of {len(os.fsencode(out.name))} bytes is too long for {place} "
                f"(at most {longest - 16})")
    target = _resolved(out)
    for path in inputs:
        source = _resolved(path)
        nested = is_archive(path) and (source in target.parents or target in source.parents)
        if target == source or nested:
            return f"{out}: is one of the inputs ({path}); choose another output"
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
    try:   # some folders pass os.access and still refuse (/proc, /sys, read-only mounts)
        os.rmdir(tempfile.mkdtemp(dir=place, prefix=".axs-probe-"))
    except OSError as err:
        return f"{out}: cannot be written in {place} ({err.strerror or err})"
    return None


def run_predict(args: argparse.Namespace) -> int:
    from axs.errors import DataError

    archives = [p for p in args.spectra if is_archive(p)]
    if archives and len(archives) != len(args.spectra):
        return _usage("give either spectrum files or archives (.nc/.zarr), not both")
    if archives and args.theta:
        return _usage("--theta: only for spectrum files (a .csv output), not archives")
    inputs = None
    read = [args.model, *args.spectra]
    if not archives:
        from axs.predict import collect_inputs

        inputs = collect_inputs(args.spectra)   # folders are listed here, once
        read += inputs[0]
    problem = output_problem(args.out, read, ARCHIVE_SUFFIXES if archives else FILE_SUFFIXES, args.force)
    if problem:
        return _usage(problem)
    from axs.predict import cached_bundle, require_theta
    from axs.bundle import model_file

    try:
        file = str(_resolved(model_file(args.model)))
        loaded = cached_bundle(file)   # the model and its field.json, validated and bound once
    except (OSError, DataError) as err:
        return _usage(f"cannot load the model: {err}")
    if args.theta:
        try:
            require_theta(loaded.model)
        except ValueError as err:
            return _usage(str(err))
    if loaded.field is None and args.strict:
        return _usage(f"--strict: {args.model} has no field.json to check applicability with "
                      "(export the model with axs.bundle.export_model)")
    if archives:
        return _predict_archive(args, file, loaded)
    return _predict_files(args, loaded, inputs)


def _print_notes(notes: list[str], verbose: bool, what: str, prefix: str = "note") -> None:
    listed = notes if verbose else notes[:WARNINGS_LISTED]
    for note in listed:
        _err(f"{prefix}: {note}")
    if len(notes) > len(listed):
        _err(f"{prefix}: ... and {len(notes) - len(listed)} more {what} (--verbose lists them)")


def _predict_files(args, loaded, inputs) -> int:
    from axs.bundle import flag_summary
    from axs.predict import predict_files, write_table

    files, skipped, folder_errors = inputs
    run = predict_files(loaded.model, files, live_time_s=args.live_time_s, energy_unit=args.energy_unit,
                        tube_kv=args.tube_kv, theta=args.theta, field=loaded.field, level=args.level,
                        phase=args.phase)
    errors = [str(e) for e in folder_errors] + run.errors
    _print_notes(skipped, args.verbose, "files skipped")
    _print_notes(run.warnings, args.verbose, "spectra moved onto the model's grid")
    for error in errors:
        _err(f"error: {error}")
    _print_notes(run.not_predicted, args.verbose, "samples not predicted", prefix="error")
    if len(run.table):
        try:
            write_table(run.table, args.out)
        except OSError as err:
            _err(f"error: {args.out}: cannot be written ({err.strerror or err}); nothing written")
            return 1
    n_files = int(run.table["n_spectra"].sum()) if len(run.table) else 0
    _err(f"{len(run.table)} samples from {n_files} spectra -> "
          f"{args.out if len(run.table) else '(nothing written)'}; {len(errors)} failed"
          + (f"; {len(run.not_predicted)} not predicted (empty values, see 'flags')" if run.not_predicted else "")
          + (f"; {len(skipped)} files skipped" if skipped else ""))
    _err(flag_summary(run.table) if loaded.field is not None else
          f"applicability: not checked ({args.model} has no field.json)")
    flagged = loaded.field is not None and len(run.table) > 0 and not run.table["applicable"].all()
    ok = not errors and not run.not_predicted
    return 0 if ok and len(run.table) and not (args.strict and flagged) else 1


def _predict_archive(args, file: str, loaded) -> int:
    from axs.archive import predict_archive
    from axs.errors import DataError

    try:
        summary = predict_archive(file, args.spectra, args.out, chunk_spectra=args.chunk_spectra,
                                  scheduler=args.scheduler, tube_kv=args.tube_kv, replace=args.force,
                                  level=args.level)
    except OSError as err:
        if args.scheduler and "--scheduler" in str(err):
            return _usage(str(err))
        _err(f"error: {err}")
        return 1
    except (DataError, FileExistsError) as err:
        _err(f"error: {err}")
        return 1
    refused, not_predicted = summary["refused"], summary["not_predicted"]
    _print_notes(refused, args.verbose, "spectra refused", prefix="error")
    _print_notes(not_predicted, args.verbose, "spectra not predicted", prefix="error")
    _err(f"{summary['spectra']} spectra -> {args.out} ({summary['on_grid']} on the model's grid, "
          f"{summary['resampled']} resampled, {summary['zero_filled']} zero-filled above the tube voltage, "
          f"{len(refused)} refused, {len(not_predicted)} not predicted)")
    detail = ", ".join(f"{name} {count}" for name, count in summary["flag_counts"].items())
    if summary["flagged"] is None:
        _err(f"applicability: not checked ({args.model} has no field.json)")
    else:
        _err(f"applicability: {summary['flagged']} of {summary['spectra'] - len(refused)} spectra flagged"
              + (f" ({detail})" if detail else "") + " (variables 'applicable', 'flags')")
    if refused:
        _err(f"error: {len(refused)} spectra could not be predicted (not covering the model's energy "
              f"range: {summary['not_covered']}, bad counts: {summary['bad_counts']}, bad live time: "
              f"{summary['bad_live_time']}): their concentrations are NaN (grid_status < 0)")
    failed = bool(refused or not_predicted)
    return 1 if failed or (args.strict and summary["flagged"]) else 0


INFO_HELP = "show what a saved model was trained on and how it is calibrated"

INFO_DESCRIPTION = textwrap.dedent("""\
    Print what a saved model records: its energy grid, the elements it predicts (with
    units), its hyperparameters, a summary of its training data, the tube, and the
    field.json beside the model file (applicability thresholds, interval calibration),
    read and checked as axs predict reads it. Long lists are summarised (count and range,
    or shape); --json prints everything.

    Exit status: 0 printed; 2 the model (or its field.json) cannot be read.""")

INFO_EPILOG = textwrap.dedent("""\
    examples:
      axs info artifacts/standin/train/axs/model
      axs info artifacts/standin/train/axs/model/axs.keras --json""")


def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="saved model: a .keras or .skops file, or a folder holding one")
    parser.add_argument("--json", action="store_true", help="print everything, as JSON")


#: Longest line of ``axs info``, and most lines per entry (``--json`` prints everything).
INFO_LINE_CHARS = 110
INFO_LINES_PER_KEY = 6


def format_info(info, indent: int = 0) -> list[str]:
    """Indented ``key: value`` lines of a nested dict, readable: lists of numbers summarised by their
    count and range, tables (lists of lists) by their shape, long values wrapped at :data:`INFO_LINE_CHARS`
    and cut after :data:`INFO_LINES_PER_KEY` lines."""
    lines = []
    pad = "  " * indent
    for key, value in info.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines += format_info(value, indent + 1)
            continue
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
            text = f"{len(value)} x {max(len(v) for v in value)} values"
        elif isinstance(value, (list, tuple)) and len(value) > 12 and all(
                isinstance(v, (int, float)) for v in value):
            text = f"{len(value)} values, {min(value):.6g} .. {max(value):.6g}"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        elif isinstance(value, (list, tuple)):
            # items are kept whole ("Sr (ppm)"): no-break spaces inside them while wrapping
            text = ", ".join((f"{v:.6g}" if isinstance(v, float) else str(v)).replace(" ", "\xa0") for v in value)
        else:
            text = str(value)
        wrapped = [line.replace("\xa0", " ") for line in
                   textwrap.wrap(f"{pad}{key}: {text}", INFO_LINE_CHARS, subsequent_indent=pad + "    ")]
        if len(wrapped) > INFO_LINES_PER_KEY:
            wrapped = wrapped[:INFO_LINES_PER_KEY - 1] + [pad + "    ... (axs info --json prints all of it)"]
        lines += wrapped
    return lines


def run_info(args: argparse.Namespace) -> int:
    import json

    from axs.predict import describe_model

    try:
        info = describe_model(args.model)
    except (OSError, ValueError, KeyError) as err:
        _err(f"axs info: cannot read the model: {err}")
        return 2
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print("\n".join(format_info(info)))
    return 0


#: The full cross-validated accuracy table ``axs calibrate`` writes beside the exported model.
ACCURACY_FILE = "cv_accuracy.csv"
#: Elements in the accuracy table ``axs calibrate`` prints.
ELEMENTS_LISTED = 10

CALIBRATE_HELP = "train one model on your own standards (spectra + assays) and export it for axs predict"

CALIBRATE_DESCRIPTION = textwrap.dedent("""\
    Calibrate one model on a raw dataset in the documented format (docs/data-format.md:
    manifest.csv, the spectrum files it lists, assays.csv, assay_limits.csv, optionally
    samples.csv), without the pipeline: every file is read and checked first, then k-fold
    cross-validation gives the out-of-fold predictions of every sample and of every single
    measurement, which calibrate the applicability flags and prediction intervals; then the
    model is fitted on every labelled sample and exported to MODEL_DIR (the model file and
    field.json). A short cross-validated accuracy table is printed (relative MSE: the MSE over
    that of predicting the training folds' mean; below 1 the model has learned something).
    Afterwards: axs predict MODEL_DIR SPECTRA -o predictions.csv.

    Exit status: 0 exported; 1 the data could not be read (the message names file, line and
    field; nothing is written); 2 bad usage or a bad MODEL_DIR.""")

CALIBRATE_EPILOG = textwrap.dedent("""\
    examples:
      axs calibrate my-lab-data --model lasso_scatter -o models/lasso_scatter
      axs calibrate my-lab-data --model cnn --folds 5 --seed 3 -o models/cnn --force""")


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR",
                        help="raw dataset folder (manifest.csv, spectra, assays.csv, assay_limits.csv)")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="model of the registry with its default hyperparameters: lr, lasso, pymca, fcnn, "
                             "cnn, axs, axs_plus, or <model>_scatter (LASSO and LASSO-scatter are the fastest: "
                             "minutes for a few hundred samples; the networks take hours)")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="MODEL_DIR",
                        help="folder to export the model to (created; replaced only with --force)")
    parser.add_argument("-f", "--force", action="store_true", help="replace MODEL_DIR if it exists")
    parser.add_argument("--folds", type=int, default=10, metavar="K",
                        help="cross-validation folds (2 <= K <= samples; default %(default)s)")
    parser.add_argument("--fold-seed", type=int, default=0, metavar="N", help="seed of the folds (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="model seed (fold j's model gets seed + j; default %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="hyperparameters",
                        help="override a default hyperparameter of the model (YAML value), e.g. --set alpha=0.01 "
                             "--set epochs=200; repeatable (the defaults: axs.models.DEFAULTS)")


def run_calibrate(args: argparse.Namespace) -> int:
    from axs.errors import DataError

    def usage(message: str) -> int:
        print(f"axs calibrate: {message}", file=sys.stderr)
        return 2

    if not args.data_dir.is_dir():
        return usage(f"{args.data_dir}: not a folder; expected a raw dataset (docs/data-format.md)")
    out, data = args.out.resolve(), args.data_dir.resolve()
    if out == data or data in out.parents or out in data.parents:
        return usage(f"{args.out}: is or holds the data folder {args.data_dir}; choose another MODEL_DIR")
    if args.out.exists() and not args.force:
        return usage(f"{args.out}: already exists; pass --force to replace it")
    if args.out.exists() and not args.out.is_dir():
        return usage(f"{args.out}: is a file; expected a folder name")
    place = out.parent
    while not place.exists():
        place = place.parent
    if not os.access(place, os.W_OK | os.X_OK):
        return usage(f"{args.out}: cannot be written, no permission to write in {place}")
    from axs.models import MODEL_NAMES
    if args.model not in MODEL_NAMES:
        return usage(f"--model: expected one of {', '.join(MODEL_NAMES)}, got {args.model!r}")
    import yaml

    hyperparameters = {}
    for item in args.hyperparameters:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return usage(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            hyperparameters[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            return usage(f"--set {item}: the value is not YAML ({err})")
    from axs.calibrate import calibrate

    try:
        table, figures = calibrate(args.data_dir, args.model, args.out, n_folds=args.folds,
                                   fold_seed=args.fold_seed, seed=args.seed, hyperparameters=hyperparameters)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as err:     # folds out of range, an unknown or ill-typed hyperparameter
        return usage(str(err))
    from axs.files import write_csv
    write_csv(table, args.out / ACCURACY_FILE)
    learned = table[table["relative_mse"] < 1]
    print(f"{args.model} on {args.data_dir}: {args.folds}-fold cross-validated accuracy, the {ELEMENTS_LISTED} "
          f"elements at most it predicts best (relative MSE < 1 beats the training folds' mean; every element in "
          f"{args.out / ACCURACY_FILE}):")
    print(learned.head(ELEMENTS_LISTED).to_string(index=False, float_format=lambda v: f"{v:.4g}")
          if len(learned) else "  none")
    if len(learned) > ELEMENTS_LISTED:
        print(f"also better than the mean: {' '.join(learned['element'].iloc[ELEMENTS_LISTED:])}")
    rest = table.loc[~table["element"].isin(learned["element"]), "element"].tolist()
    if rest:
        print(f"not better than the mean ({len(rest)}): {' '.join(rest)}")
    single = figures.get("applicability_flag_rate_heldout_single")
    print(f"held-out spectra flagged by the applicability checks: {figures['applicability_flag_rate_heldout']:.3f}"
          + (f" (single measurements: {single:.3f})" if single is not None else ""))
    print(f"exported to {args.out}; predict with: axs predict {args.out} SPECTRA -o predictions.csv")
    return 0


#: name -> (help, description, epilog, add_arguments, run)
SUBCOMMANDS = {
    "predict": (PREDICT_HELP, PREDICT_DESCRIPTION, PREDICT_EPILOG, add_predict_arguments, run_predict),
    "info": (INFO_HELP, INFO_DESCRIPTION, INFO_EPILOG, add_info_arguments, run_info),
    "calibrate": (CALIBRATE_HELP, CALIBRATE_DESCRIPTION, CALIBRATE_EPILOG, add_calibrate_arguments, run_calibrate),
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
    # TensorFlow is imported only for network models; when it is, its C++ and Python logs stay quiet
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("tensorflow", "absl", "h5py", "distributed"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        _err("axs: interrupted; nothing written")
        return 130
    except Exception as err:   # the last guard: a message, not a traceback (AXS_TRACEBACK=1 shows it)
        if os.environ.get("AXS_TRACEBACK"):
            raise
        _err(f"axs {args.command}: unexpected {type(err).__name__}: {err} (nothing written; please report it, "
              "with AXS_TRACEBACK=1 for the details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
