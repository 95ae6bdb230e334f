"""Concentrations of new spectra from a saved model: what ``axs predict`` does, for files and archives alike.

The steps, each a function that a caller (the CLI, :mod:`axs.archive`, a lab's
own script) can call or extend:

1. :func:`load_bundle`: the model file and its ``field.json``,
   resolved, validated and bound once;
2. :func:`spectrum_paths`: the files named, folders replaced by their spectrum
   files (done once, by the CLI, which also checks ``-o`` against them);
3. :func:`read_measurements`: every spectrum of every file, or a DataError
   per file that cannot be read (one bad file never stops the others);
4. :func:`sample_spectra`: the orientations of each sample grouped (header, or
   ``<sample>_o<k>.<ext>``), each put on the model's energy grid in counts per
   second (:func:`rates_on_grid`: moved with the count-conserving
   :func:`axs.energy_grid.rebin_counts` when on another grid, zero-filled above
   the tube voltage, a DataError when it does not cover the model's range); the
   model normalises each measurement and averages them, as in training;
5. :func:`predict_spectra`: every spectrum predicted in one batched call of the
   model, after setting aside those it cannot predict (counts beyond float32,
   no counts in a scatter-normalised model's scatter window, a model that
   raises or returns infinities): those keep empty values, ``applicable``
   False and a flag saying why (:data:`axs.applicability.NOT_PREDICTED`). With
   the model's field.json, the applicability flags and intervals. Concentrations
   stay in wt% until the table is written; archive mode calls this same function
   per chunk;
6. :func:`concentrations_table`: one row per sample, ``sample_id``,
   ``n_spectra``, ``files``, one ``<element>_<unit>`` column per element in the
   unit the assay lab reports it in (``pct`` weight percent or ``ppm``), with
   ``theta=True`` (AXS models and the direct fit) the ``theta_<element>`` columns, then ``flags``,
   and with a field.json ``applicable`` and ``<element>_lo``/``<element>_hi``.
   A prediction below 0 is reported as 0, as the interval's lower end is
   (:func:`clip_at_zero`); :func:`write_table` escapes cells a spreadsheet
   would run as a formula.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from axs.applicability import FLAG_NAMES
from axs.bundle import FieldBundle, load_field, model_file, model_outputs
from axs.elements import UNIT_TO_PCT, assay_unit
from axs.energy_grid import counts_per_second, grid_fit, same_grid  # noqa: F401 (grid rules shared with prepare)
from axs.errors import DataError
from axs.files import atomic_path
from axs.importers import FORMATS, group_by_sample, read_spectra, tube_kv as header_tube_kv
from axs.intervals import DEFAULT_LEVEL
from axs.model_files import load_skops_model, model_file_kind
from axs.normalisation import stack_measurements
from axs.spectrum_files import Spectrum

#: Largest count rate every model computes with (float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Largest spectrum file read, on disk and after gzip decompression (a 65,536-channel text spectrum is ~1 MB).
MAX_FILE_BYTES = 64 * 2**20

#: Most channels a spectrum may have (EDXRF MCAs have at most 16,384).
MAX_CHANNELS = 65536

#: First characters of a CSV cell that spreadsheets run as a formula (OWASP's list, tab and CR included).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class PredictionRun:
    """The outcome of predicting a set of files: the table, and what went wrong per file or per spectrum.

    ``errors``: files or spectra left out; ``not_predicted``: samples that have a
    row but no concentrations (their ``flags`` say why).
    """

    table: pd.DataFrame
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_predicted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.not_predicted


def load_predictor(path: str | Path):
    """The model saved at ``path``: a file written by a model's ``save`` or a folder holding one
    (:func:`axs.bundle.model_file`), loaded without running code from it (:mod:`axs.model_files`): a skops
    archive (LR, LASSO, the PyMca peer) without TensorFlow, a Keras archive through
    :func:`axs.models.load_model`, TensorFlow's start-up log held back; the direct fit (``fp``, a skops archive
    whose fits run in TensorFlow) with that log held back too. DataError for anything else."""
    path = model_file(path)
    if model_file_kind(path) == "skops":
        model = load_skops_model(path)
        if has_theta(model):          # a skops model that models the spectrum: the direct fit
            _import_tensorflow_quietly()
        return model
    _import_tensorflow_quietly()
    from axs.models import load_model

    return load_model(path)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow (through :mod:`axs.neural`) with the process's stderr held back: its C++ layer logs
    (absl, oneDNN) before any log level can be set. What it wrote is shown only if the import fails."""
    import os
    import sys
    import tempfile

    if "tensorflow" in sys.modules:
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):   # no real stderr (pytest capture, notebooks): nothing to hide
        import axs.neural  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            import axs.neural  # noqa: F401
        except BaseException:
            os.dup2(saved, fd)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


@dataclass
class Bundle:
    """A loaded model (``file``, ``model``) and its ``field`` (None when no field.json lies beside it)."""

    file: Path
    model: object
    field: FieldBundle | None


def load_bundle(path: str | Path) -> Bundle:
    """The model at ``path`` (a model file or a bundle folder) and its bound field.json: the one reader of both.

    field.json is validated before the model is loaded, so a bad one costs no model load;
    the model loads without running code from its file (:func:`load_predictor`).
    DataError naming the file for anything wrong.
    """
    file = model_file(path)
    field = load_field(file)
    model = load_predictor(file)
    return Bundle(file, model, field.bind(model, file) if field is not None else None)


@functools.lru_cache(maxsize=4)
def cached_bundle(path: str):
    """:func:`load_bundle`, once per process (dask workers call this for every chunk)."""
    return load_bundle(path)


def model_grid(model) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(energies_kev, elements)`` the model was trained on; ValueError if it does not say."""
    energies = getattr(model, "energies_kev", None)
    elements = getattr(model, "elements", None)
    if energies is None or elements is None:
        raise ValueError(f"{type(model).__name__}: the model does not record its energy grid "
                         "(energies_kev) and element list (elements)")
    return np.asarray(energies, dtype=np.float64), tuple(elements)


def rates_on_grid(spectrum: Spectrum, energies_kev: np.ndarray, source: str | Path = "spectrum",
                  tube_kv: float | None = None) -> tuple[np.ndarray, str | None]:
    """Counts per second per channel of ``spectrum`` on the grid ``energies_kev``, and a note if moved.

    Resampling is the training data's (:func:`axs.energy_grid.counts_per_second`);
    channels above the end of a spectrum that ends short only above its tube's
    voltage get zero counts (:func:`grid_fit`). The tube voltage is the
    spectrum's ``tube`` header field, else ``tube_kv``.

    DataError naming ``source`` when the spectrum's energy range does not
    cover the grid (within one channel) and the tube voltage does not explain
    the missing end.
    """
    src = spectrum.energies_kev
    counts = np.asarray(spectrum.counts, dtype=np.float64)
    kv = header_tube_kv(spectrum) or tube_kv
    how = grid_fit(src, energies_kev, kv)
    if how == "same":
        return counts / spectrum.rate_time_s, None
    span = f"{src[0]:.3f}-{src[-1]:.3f} keV"
    model_span = f"{energies_kev[0]:.3f}-{energies_kev[-1]:.3f} keV"
    if how == "not_covered":
        hint = ("" if kv is not None else "; if the tube's voltage is below the model's range, give it "
                "(a 'tube: ... kV' header or axs predict --tube-kv) and the end above it is zero-filled")
        raise DataError(source, f"energy range {span} does not cover the model's {model_span}{hint}",
                        field="energy calibration")
    rates = counts_per_second(counts, src, spectrum.rate_time_s, energies_kev)
    if how == "zero_fill":
        note = (f"{source}: zero-filled from {src[-1]:.3f} to {energies_kev[-1]:.3f} keV, where its "
                f"{kv:g} kV tube cannot excite any line (resampled from {len(src)} channels, {span})")
    else:
        note = (f"{source}: resampled from {len(src)} channels ({span}) onto the "
                f"model's {len(energies_kev)} channels ({model_span})")
    return rates, note


def spectrum_paths(arguments: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Files named, with each folder replaced by its spectrum files (known endings, sorted); and the files of
    those folders that were skipped, each with the reason. A folder with no spectrum file is a DataError
    naming what it holds."""
    paths, skipped = [], []
    endings = ", ".join(FORMATS)
    for argument in map(Path, arguments):
        if not argument.is_dir():
            paths.append(argument)
            continue
        found = []
        for p in sorted(argument.iterdir()):
            if p.is_dir():
                continue   # sub-folders are not searched; a FIFO or a broken link is reported when read
            if any(p.name.lower().endswith(e) for e in FORMATS):
                found.append(p)
            else:
                skipped.append(f"{p}: skipped, not a spectrum file (name does not end in {endings})")
        if not found:
            held = sorted(p.name for p in argument.iterdir())
            raise DataError(argument, "folder holds no spectrum file (names ending in " + endings + "); "
                            + (f"skipped: {', '.join(held)}" if held else "it is empty"))
        paths += found
    return paths, skipped


def collect_inputs(arguments: Sequence[str | Path]) -> tuple[list[Path], list[str], list[DataError]]:
    """:func:`spectrum_paths` argument by argument: ``(files, skipped, errors)``, a folder without spectra
    being one DataError among the others rather than the end of the run."""
    files, skipped, errors = [], [], []
    for argument in arguments:
        try:
            found, skipped_here = spectrum_paths([argument])
        except DataError as err:
            errors.append(err)
            continue
        files += found
        skipped += skipped_here
    return files, skipped, errors


def check_input_file(path: Path) -> None:
    """DataError unless ``path`` is a regular file of at most :data:`MAX_FILE_BYTES`, also once decompressed
    (``.gz``): a FIFO would block the reader, ``/dev/zero`` or a gzip bomb would fill the memory."""
    import stat

    try:
        info = path.stat()
    except OSError as err:
        raise DataError(path, f"cannot be read ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode)
                or stat.S_ISBLK(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a file")
        raise DataError(path, f"is {kind}, not a regular file; spectra are read from regular files only")
    if info.st_size > MAX_FILE_BYTES:
        raise DataError(path, f"is {info.st_size / 2**20:.0f} MiB; a spectrum file is at most "
                        f"{MAX_FILE_BYTES // 2**20} MiB")
    if path.name.lower().endswith(".gz"):
        import gzip
        import zlib

        try:
            with gzip.open(path, "rb") as stream:
                size = len(stream.read(MAX_FILE_BYTES + 1))
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(path, f"cannot be read as gzip ({err})") from None
        if size > MAX_FILE_BYTES:
            raise DataError(path, f"decompresses to more than {MAX_FILE_BYTES // 2**20} MiB; a spectrum file "
                            "is smaller (refused, as a gzip bomb would be)")


def check_channels(path: Path, spectrum: Spectrum) -> None:
    """DataError unless ``spectrum`` has between 2 and :data:`MAX_CHANNELS` channels."""
    n = len(spectrum.counts)
    if not 2 <= n <= MAX_CHANNELS:
        raise DataError(path, f"expected a spectrum of 2 to {MAX_CHANNELS} channels, got {n}", field="channels")


def read_measurements(paths: Sequence[str | Path], live_time_s: float | None = None,
                      energy_unit: str = "keV", *, phase: int | None = None, model_kv: float | None = None
                      ) -> Iterator[tuple[Path, Spectrum] | DataError]:
    """Every spectrum in the files ``paths``, as ``(path, spectrum)`` (``path#k`` for the k-th of a file
    holding several), or one DataError for a file that cannot be read: per file, in order."""
    for path in map(Path, paths):
        try:
            check_input_file(path)
            spectra = read_spectra(path, live_time_s, energy_unit, phase=phase, model_kv=model_kv)
            for spectrum in spectra:
                check_channels(path, spectrum)
        except DataError as err:
            yield err
            continue
        except OSError as err:
            yield DataError(path, f"cannot be read ({err.strerror or err})")
            continue
        for k, spectrum in enumerate(spectra):
            yield (Path(f"{path}#{k + 1}") if len(spectra) > 1 else path), spectrum


@dataclass
class Sample:
    """One sample's spectra on the model's grid: each measurement (m, channels) and their mean (counts/s), and
    the files and spectra it came from. The model reads the measurements (each normalised, then combined, as
    in training: :func:`axs.normalisation.model_spectra`); the applicability checks read the mean, like the
    training samples' averages they were calibrated on."""

    sample_id: str
    measurements_cps: np.ndarray
    files: list[str]
    spectra: list[Spectrum]

    @property
    def rates_cps(self) -> np.ndarray:
        with np.errstate(over="ignore"):   # counts beyond float64 are flagged by predict_spectra
            return np.mean(self.measurements_cps, axis=0)


def sample_spectra(measured: list[tuple[Path, Spectrum]], energies_kev: np.ndarray, tube_kv: float | None,
                   errors: list[DataError], warnings: list[str]) -> list[Sample]:
    """The samples of ``measured``: orientations grouped (:func:`axs.importers.group_by_sample`), put on
    the grid ``energies_kev`` (:func:`rates_on_grid`). A spectrum that cannot be put on the
    grid, or repeats an orientation, is appended to ``errors`` and left out; notes go to ``warnings``."""
    samples = []
    for sample, members in group_by_sample(measured, errors).items():
        rates, used, spectra = [], [], []
        for path, spectrum in members:
            try:
                row, warning = rates_on_grid(spectrum, energies_kev, path, tube_kv)
            except DataError as err:
                errors.append(err)
                continue
            rates.append(row)
            used.append(str(path))
            spectra.append(spectrum)
            if warning:
                warnings.append(warning)
        if rates:
            samples.append(Sample(sample, np.stack(rates), used, spectra))
    return samples


@dataclass
class Predictions:
    """What :func:`predict_spectra` says about n spectra; concentrations and interval ends in wt%.

    ``flags[i]``: ``;``-joined flag names (:data:`axs.applicability.FLAG_NAMES`),
    only the :data:`~axs.applicability.NOT_PREDICTED` ones without a field.json;
    ``applicable``, ``lower_pct``, ``upper_pct``: None without a field.json.
    ``problems[i]``: why spectrum i was not predicted, in words ('' if it was).
    """

    concentrations_pct: np.ndarray
    flags: list[str]
    problems: list[str]
    applicable: np.ndarray | None = None
    lower_pct: np.ndarray | None = None
    upper_pct: np.ndarray | None = None

    @property
    def predicted(self) -> np.ndarray:
        return np.array([not p for p in self.problems], dtype=bool)


def unpredictable(model, X: np.ndarray) -> list[tuple[str, str]]:
    """``(flag, why)`` per spectrum of X (counts/s, float64) that ``model`` cannot predict, ``("", "")`` for the
    others: counts/s that are not finite in float32 (``count_overflow``), or a scatter-normalised model and no
    counts in the scatter window (``no_scatter_counts``, :func:`axs.normalisation.scatter_counts`).
    X (n, m, channels), each sample's measurements padded with all-NaN rows: a sample is unpredictable when
    one of its measurements is (the first one's reason)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 3:
        sample, measurement = np.nonzero(~np.isnan(X).all(axis=2))
        out = [("", "")] * len(X)
        for i, reason in zip(sample, unpredictable(model, X[sample, measurement])):
            if reason[0] and not out[i][0]:
                out[i] = reason
        return out
    out = [("", "")] * len(X)
    with np.errstate(over="ignore", invalid="ignore"):
        overflow = ~np.all(np.isfinite(X) & (np.abs(X) <= FLOAT32_MAX), axis=1)
    normalisation = dict(getattr(model, "hyperparameters", {})).get("normalisation", "none")
    empty = np.zeros(len(X), dtype=bool)
    if normalisation == "scatter" and len(X):
        from axs.normalisation import scatter_counts

        with np.errstate(over="ignore", invalid="ignore"):
            empty = ~(scatter_counts(np.where(overflow[:, None], 0.0, X), model.energies_kev) > 0)
    for i in np.flatnonzero(overflow):
        out[i] = ("count_overflow", "counts per second beyond float32's range (3.4e38) or not finite")
    for i in np.flatnonzero(empty & ~overflow):
        out[i] = ("no_scatter_counts", "no counts in the scatter window the model divides by (an empty or "
                  "peak-only spectrum)")
    return out


def _model_outputs_isolated(model, X: np.ndarray, reconstruction: bool):
    """:func:`axs.bundle.model_outputs`; if the batch raises, spectrum by spectrum, so one bad spectrum does
    not take the others with it. ``(predicted, error or None, failures: {row: message})``."""
    try:
        predicted, error = model_outputs(model, X, reconstruction)
        failures = {}
    except (ValueError, ArithmeticError) as batch_error:
        predicted = np.full((len(X), len(model.elements)), np.nan)
        error = np.full(len(X), np.nan) if reconstruction else None
        failures = {}
        for i in range(len(X)):
            try:
                p, e = model_outputs(model, X[i: i + 1], reconstruction)
            except (ValueError, ArithmeticError) as err:
                failures[i] = f"the model raised {type(err).__name__}: {err}"
                continue
            predicted[i] = p[0]
            if reconstruction:
                error[i] = e[0]
        if not failures:   # the batch failed, every spectrum alone did not: say so rather than hide it
            raise batch_error
    bad = np.isinf(predicted).any(axis=1) | np.isnan(predicted).all(axis=1)
    for i in np.flatnonzero(bad):
        failures.setdefault(int(i), "the model returned infinite or no concentrations")
    return predicted, error, failures


def predict_spectra(model, X: np.ndarray, field: FieldBundle | None = None, level: float = DEFAULT_LEVEL,
                    header_flags: Sequence[Sequence[str]] | None = None, n_spectra=1,
                    measurements: np.ndarray | None = None) -> Predictions:
    """Predict spectra X (n, channels; counts/s on the model's grid) with ``model``; with its ``field``, the
    applicability flags (``header_flags`` per spectrum from the files' headers) and ``level`` intervals.

    ``measurements`` (n, m, channels; :func:`axs.normalisation.stack_measurements`): the measurements X
    averages, one sample per row. The model then reads them, each normalised before they are combined as in
    training, while the checks read X, as the training averages they were calibrated on; None: X alone.

    The one prediction path of files and archives. Spectra the model cannot
    predict (:func:`unpredictable`, or the model raising on them alone) get NaN,
    ``applicable`` False and the flag; the others are predicted in one batch.
    """
    X = np.asarray(X, dtype=np.float64)
    model_X = X if measurements is None else np.asarray(measurements, dtype=np.float64)
    n, n_elements = len(X), len(model.elements)
    flags, problems = map(list, zip(*unpredictable(model, model_X))) if n else ([], [])
    concentrations = np.full((n, n_elements), np.nan)
    rows = np.flatnonzero([not f for f in flags])
    reconstruction = field is not None and field.uses_reconstruction
    if len(rows):
        predicted, error, failures = _model_outputs_isolated(model, model_X[rows].astype(np.float32), reconstruction)
        for k, message in failures.items():
            flags[rows[k]], problems[rows[k]] = "prediction_failed", message
        kept = np.array([k not in failures for k in range(len(rows))], dtype=bool)
        concentrations[rows[kept]] = predicted[kept]
        rows, predicted = rows[kept], predicted[kept]
        error = error[kept] if error is not None else None
    out = Predictions(concentrations, flags, problems)
    if field is None:
        return out
    out.applicable = np.zeros(n, dtype=bool)
    out.lower_pct, out.upper_pct = np.full((n, n_elements), np.nan), np.full((n, n_elements), np.nan)
    if len(rows):
        checks = field.check(model, X[rows].astype(np.float32), predicted,
                             [header_flags[i] for i in rows] if header_flags is not None else None, level, error,
                             n_spectra=np.broadcast_to(np.asarray(n_spectra), (len(X),))[rows])
        out.applicable[rows] = checks.applicable
        out.lower_pct[rows], out.upper_pct[rows] = checks.lower_pct, checks.upper_pct
        for i, f in zip(rows, checks.flags):
            out.flags[i] = f
    for i in np.flatnonzero([bool(p) for p in problems]):   # header flags of spectra not predicted, too
        extra = [h for h in (header_flags[i] if header_flags is not None else ()) if h != out.flags[i]]
        out.flags[i] = ";".join(sorted({out.flags[i], *extra}, key=FLAG_NAMES.index))
    return out


def clip_at_zero(values_pct: np.ndarray) -> np.ndarray:
    """Concentrations below 0 reported as 0 (NaN kept): a mass fraction is not negative, and the interval's
    lower end is cut at 0 (:func:`axs.intervals.conformal_intervals`), so the value stays inside its interval."""
    return np.where(np.asarray(values_pct) < 0, 0.0, values_pct)


def per_pct(elements) -> np.ndarray:
    """(elements,) factors from wt% to each element's assay unit (:func:`axs.elements.assay_unit`): the one
    conversion of predicted wt%, for tables and archives alike."""
    return np.array([1.0 / UNIT_TO_PCT[assay_unit(e)] for e in elements])


def concentrations_table(sample_ids: list[str], predictions: Predictions, elements,
                         extra: dict[str, list] | None = None, theta: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per sample: ``sample_id``, the ``extra`` columns, ``<element>_<unit>``, the ``theta`` columns,
    ``flags``, then with a field.json ``applicable`` and ``<element>_lo``/``<element>_hi``.

    The one place wt% becomes each element's assay unit (:func:`axs.elements.assay_unit`); values below 0
    are reported as 0 (:func:`clip_at_zero`).
    """
    to_unit = per_pct(elements)
    columns = {"sample_id": [printable(i) for i in sample_ids],
               **{k: [printable(v) for v in values] for k, values in (extra or {}).items()}}
    values = clip_at_zero(predictions.concentrations_pct) * to_unit
    for e, element in enumerate(elements):
        columns[f"{element}_{assay_unit(element)}"] = values[:, e]
    if theta is not None:
        columns.update({name: theta[name].to_numpy() for name in theta})
    if predictions.applicable is not None:
        columns["applicable"] = predictions.applicable
    columns["flags"] = predictions.flags
    if predictions.lower_pct is not None:
        lower, upper = predictions.lower_pct * to_unit, predictions.upper_pct * to_unit
        for e, element in enumerate(elements):
            columns[f"{element}_lo"], columns[f"{element}_hi"] = lower[:, e], upper[:, e]
    return pd.DataFrame(columns)


def predict_files(model, paths: list[str | Path], live_time_s: float | None = None, *,
                  energy_unit: str = "keV", tube_kv: float | None = None, theta: bool = False,
                  field: FieldBundle | None = None, level: float = DEFAULT_LEVEL, phase: int | None = None
                  ) -> PredictionRun:
    """Predict every sample in the spectra files ``paths`` (folders are replaced by their spectrum files,
    :func:`spectrum_paths`) with ``model``: the steps of the module doc.

    ``model`` is a loaded model (anything with ``predict``, ``energies_kev``
    and ``elements``); ``live_time_s`` is used for files that do not give one,
    ``energy_unit`` for files that do not state theirs (:mod:`axs.importers`),
    ``tube_kv`` for files that do not give their tube voltage
    (:func:`rates_on_grid`). ``theta`` adds the ``theta_<element>`` columns
    (models of a spectrum only, :func:`theta_columns`). ``field``: the model's
    :class:`axs.bundle.FieldBundle` (bound, :func:`load_bundle`),
    which adds the ``applicable`` and ``<element>_lo``/``_hi`` columns and
    the checks of ``flags`` (intervals at ``level``; a sample with fewer spectra than the training samples
    had is judged with the single-measurement calibration, :meth:`axs.bundle.FieldBundle.single_rows`).
    ``phase``: the phase to read of multi-phase files (Bruker ``.pdz``); by default the one at the
    training tube's voltage (:func:`axs.importers.select_phase`).
    """
    energies_kev, elements = model_grid(model)
    model_kv = next((kv for _, kv in (field.checker.tubes if field is not None else []) if np.isfinite(kv)), None)
    if theta:
        require_theta(model)
    files, skipped, errors = collect_inputs(paths)
    warnings: list[str] = []
    measured = []
    for item in read_measurements(files, live_time_s, energy_unit, phase=phase, model_kv=model_kv):
        (errors if isinstance(item, DataError) else measured).append(item)
    samples = sample_spectra(measured, energies_kev, tube_kv, errors, warnings)
    X = np.stack([s.rates_cps for s in samples]) if samples else np.empty((0, len(energies_kev)))
    measurements = stack_measurements([s.measurements_cps for s in samples]) if samples else None
    header_flags = None
    if field is not None:
        header_flags = [sorted({f for s in sample.spectra for f in field.checker.header_flags(
            s.counts, s.energies_kev, s.metadata.get("tube"))}) for sample in samples]
    predictions = predict_spectra(model, X, field, level, header_flags, [len(s.files) for s in samples],
                                  measurements)
    theta_table = theta_columns(model, X if measurements is None else measurements,
                                predictions.predicted) if theta else None
    table = concentrations_table([s.sample_id for s in samples], predictions, elements,
                                 {"n_spectra": [len(s.files) for s in samples],
                                  "files": [";".join(s.files) for s in samples]}, theta_table)
    not_predicted = [f"{s.sample_id} ({';'.join(s.files)}): not predicted, {why}"
                     for s, why in zip(samples, predictions.problems) if why]
    return PredictionRun(table, [str(e) for e in errors], warnings, skipped, not_predicted)


def has_theta(model) -> bool:
    """Whether ``model`` models the spectrum (the registry's ``reconstructs``: AXS, AXS+ and the direct fit), so
    that it has theta: element amounts (eq. 4's multipliers; the direct fit's fitted amounts)."""
    from axs.model_registry import reconstructs

    return reconstructs(getattr(model, "name", ""))


def require_theta(model) -> None:
    """ValueError unless ``model`` has theta (:func:`has_theta`)."""
    if not has_theta(model):
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(f"--theta: the model is {name!r}, which models no spectrum; theta, the element "
                         "amounts of a spectrum model, exists only for AXS, AXS+ and the direct fit (fp)")


def theta_columns(model, X: np.ndarray, rows: np.ndarray | None = None) -> pd.DataFrame:
    """AXS: the Encoder's theta (eq. 4) of spectra ``X`` (counts/s on the model's grid), one
    ``theta_<element>`` column per simulator element (in counts per unit line shape, eq. 6; the direct fit: its
    fitted amounts, :meth:`axs.fp.FPModel.theta`); X (n, channels)
    or each sample's measurements (n, m, channels), as the model's ``predict`` reads them;
    only the spectra where ``rows`` (bool) is True, NaN for the others."""
    require_theta(model)
    names = [f"theta_{e}" for e in model.simulator_elements]
    rows = np.ones(len(X), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    values = np.full((len(X), len(names)), np.nan)
    if rows.any():
        values[rows] = model.theta(np.asarray(X, dtype=np.float64)[rows].astype(np.float32))
    return pd.DataFrame(values, columns=names)


def printable(value):
    """``value``, with the bytes of a file name that are not UTF-8 (which Python keeps as surrogates, and
    which neither a CSV nor pandas' strings can hold) replaced by U+FFFD; anything but text unchanged."""
    if not isinstance(value, str):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def safe_cell(cell):
    """``cell`` as it may go into a CSV: text a spreadsheet would run as a formula gets a leading ``'``
    (OWASP's CSV-injection advice); numbers and other text unchanged."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` as CSV to ``path`` atomically (a failed run leaves no partial file); text cells that
    would start a formula (sample ids and file names come from the files) are escaped (:func:`safe_cell`)."""
    text = table.select_dtypes(include=["object", "string"]).columns
    safe = table.assign(**{c: table[c].map(safe_cell) for c in text})
    with atomic_path(path) as tmp:
        safe.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def describe_model(path: str | Path) -> dict:
    """What ``axs info`` prints about the saved model at ``path`` (a file or a folder holding one).

    Keys: ``model`` (file, name, class, seed), ``energy_grid``, ``elements`` (with
    assay units), ``hyperparameters``, ``training_data`` (what the saved
    scalers record about the training spectra), ``tube``, ``theta_elements``
    (decoder models), then ``field.json``: the bundle's content as it is
    (:func:`load_bundle` read, validated and bound it). DataError if
    the model or its ``field.json`` cannot be read or do not belong together.
    """
    loaded = load_bundle(path)
    model = loaded.model
    energies_kev, elements = model_grid(model)
    gain = np.diff(energies_kev)
    info: dict = {
        "model": {"file": str(loaded.file), "name": getattr(model, "name", type(model).__name__),
                  "class": f"{type(model).__module__}.{type(model).__name__}",
                  "seed": getattr(model, "seed", None)},
        "energy_grid": {"channels": len(energies_kev), "first_kev": float(energies_kev[0]),
                        "last_kev": float(energies_kev[-1]), "gain_kev_min": float(gain.min()),
                        "gain_kev_max": float(gain.max())},
        "elements": [f"{e} ({assay_unit(e)})" for e in elements],
        "hyperparameters": dict(getattr(model, "hyperparameters", {})),
        "training_data": training_summary(model),
        "tube": "not recorded in the model file",
    }
    if has_theta(model):
        info["theta_elements"] = list(model.simulator_elements)
    if "excitation_kev" in info["hyperparameters"]:
        info["tube"] = f"{info['hyperparameters']['excitation_kev']:g} kV (the PyMca fit's excitation energy)"
    if loaded.field is None:
        info["field.json"] = "none beside the model file (no applicability thresholds or interval calibration)"
        return info
    content = loaded.field.to_dict()
    if loaded.field.training.get("tube"):
        info["tube"] = loaded.field.training["tube"]
    info["field.json"] = content
    return info


def training_summary(model) -> dict:
    """What a saved model records about its training spectra and targets (its fitted scalers)."""
    network = getattr(model, "network", None)
    if network is not None:
        mean = np.asarray(network.input_mean.numpy(), dtype=np.float64)
        summary = {"mean_spectrum_total_cps": float(mean.sum()),
                   "spectrum_scale_cps": float(network.spectrum_scale.numpy())}
        if getattr(model, "history", None):
            summary["epochs_run"] = len(next(iter(model.history.values())))
        return summary
    if hasattr(model, "x_scaler"):
        return {"mean_spectrum_total_cps": float(np.sum(model.x_scaler.mean_)),
                "samples": int(model.x_scaler.n_samples_seen_)}
    if getattr(model, "calibration", None):
        calibrated = [e for e, c in model.calibration.items() if c["groups"]]
        return {"peak_groups": len(model.groups), "elements_calibrated_on_peaks": len(calibrated)}
    if getattr(model, "regressions", None):
        return {"elements_with_a_line": len(model.regressions)}
    return {}
