"""Concentrations of new spectra from a saved model: what ``axs predict`` does with files.

Steps, for spectra files in any format of :mod:`axs.importers`:

1. read every file; a file that cannot be read is reported and left out;
2. group the orientations of each sample (header, or ``<sample>_o<k>.<ext>``);
3. put each spectrum on the model's energy grid: counts per second
   (counts / live time); a spectrum on another grid (other channel count or
   calibration) is moved onto the model's grid with the count-conserving
   :func:`axs.energy_grid.rebin_counts`, with a warning; one that ends short of
   the model's grid only where its tube cannot emit (above the tube voltage,
   from the file's ``tube`` header or the caller's ``tube_kv``) is zero-filled
   there, with a note; any other spectrum whose energy range does not cover
   the model's grid (:func:`axs.energy_grid.covers`) is an error;
4. average the orientations of each sample (as the training data were
   averaged, paper section 2);
5. predict all samples in one batched call of the model (the neural models run
   a ``tf.function``-compiled graph over batches, never ``keras.Model.predict``
   per spectrum);
6. one row per sample: ``sample_id``, ``n_spectra``, ``files``, then one
   column per element named ``<element>_<unit>`` with the concentration in the
   unit the assay lab reports it in (``pct`` weight percent or ``ppm``); with
   ``theta=True`` (AXS only) then one ``theta_<element>`` column per simulator
   element: the Encoder's multipliers theta of eq. 4.

Errors are collected per file (:class:`PredictionRun`) so one bad file never
stops the others; files of a folder that are not spectra are named in
:attr:`PredictionRun.skipped`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from axs.elements import UNIT_TO_PCT, assay_unit
from axs.dataset import counts_per_second
from axs.energy_grid import channel_edges_kev, covers
from axs.errors import DataError
from axs.files import atomic_path
from axs.importers import FORMATS, group_by_sample, read_spectra, tube_kv as header_tube_kv
from axs.model_files import MODEL_SUFFIXES
from axs.spectrum_files import Spectrum

#: Two grids are the same when their channel energies agree within this share of a channel.
SAME_GRID_TOLERANCE_CHANNELS = 1e-3


@dataclass
class PredictionRun:
    """The outcome of predicting a set of files."""

    table: pd.DataFrame
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_predictor(path: str | Path):
    """The model saved at ``path``: a file written by a model's ``save`` or a folder holding one.

    A folder holding exactly one ``*.keras`` or ``*.skops`` file stands for
    that file (other files beside it, such as ``field.json``, are ignored);
    files go to :func:`axs.models.load_model` (every model of the registry,
    the PyMca peer included), which never unpickles. DataError naming the
    path for anything that is not a model.
    """
    path = model_path(path)
    from axs.models import load_model
    return load_model(path)


def model_path(path: str | Path) -> Path:
    """The model file ``path`` stands for (itself, or the one model file in the folder); DataError otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no saved model there")
    if path.is_dir():
        inside = sorted(p for p in path.iterdir() if p.suffix in MODEL_SUFFIXES)
        if len(inside) != 1:
            old = sorted(p.name for p in path.glob("*.joblib"))
            hint = (f" ({', '.join(old)}: joblib pickles are no longer loaded, re-save the model)" if old else "")
            raise DataError(path, f"expected one saved model (*.keras or *.skops) in the folder, "
                            f"found {len(inside)}{hint}")
        path = inside[0]
    return path


@functools.lru_cache(maxsize=4)
def cached_predictor(path: str):
    """:func:`load_predictor`, once per process (dask workers call this for every chunk)."""
    return load_predictor(path)


def model_grid(model) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(energies_kev, elements)`` the model was trained on; ValueError if it does not say."""
    energies = getattr(model, "energies_kev", None)
    elements = getattr(model, "elements", None)
    if energies is None or elements is None:
        raise ValueError(f"{type(model).__name__}: the model does not record its energy grid "
                         "(energies_kev) and element list (elements)")
    return np.asarray(energies, dtype=np.float64), tuple(elements)


def same_grid(energies_a_kev: np.ndarray, energies_b_kev: np.ndarray) -> bool:
    """Whether two channel-energy grids are the same within :data:`SAME_GRID_TOLERANCE_CHANNELS`."""
    if len(energies_a_kev) != len(energies_b_kev):
        return False
    width = float(np.median(np.diff(energies_b_kev)))
    return bool(np.max(np.abs(energies_a_kev - energies_b_kev)) <= SAME_GRID_TOLERANCE_CHANNELS * width)


def grid_fit(energies_src_kev: np.ndarray, energies_kev: np.ndarray, tube_kv: float | None = None) -> str:
    """How a spectrum on ``energies_src_kev`` goes onto the model's grid ``energies_kev``.

    ``'same'`` (:func:`same_grid`), ``'resample'`` (covers it within one
    channel, :func:`axs.energy_grid.covers`), ``'zero_fill'`` (covers its low
    end and ends short only above the tube voltage ``tube_kv``, less one
    channel, where the tube cannot excite any line) or ``'not_covered'``.
    """
    src = np.asarray(energies_src_kev, dtype=np.float64)
    if same_grid(src, energies_kev):
        return "same"
    if not np.all(np.diff(src) > 0):
        return "not_covered"
    if covers(src, energies_kev):
        return "resample"
    width = float(np.median(np.diff(energies_kev)))
    src_edges, dst_edges = channel_edges_kev(src), channel_edges_kev(energies_kev)
    low_covered = src_edges[0] <= dst_edges[0] + width
    reach_kev = min(tube_kv, dst_edges[-1]) - width * (1 + 1e-9) if tube_kv is not None else np.inf
    if low_covered and src_edges[-1] >= reach_kev:
        return "zero_fill"
    return "not_covered"


def rates_on_grid(spectrum: Spectrum, energies_kev: np.ndarray, source: str | Path = "spectrum",
                  tube_kv: float | None = None) -> tuple[np.ndarray, str | None]:
    """Counts per second per channel of ``spectrum`` on the grid ``energies_kev``, and a note if moved.

    Resampling is the training data's (:func:`axs.dataset.counts_per_second`);
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
            if not p.is_file():
                continue
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


def concentrations_table(sample_ids: list[str], concentrations_pct: np.ndarray, elements,
                         extra: dict[str, list] | None = None) -> pd.DataFrame:
    """One row per sample: ``sample_id``, the ``extra`` columns, then ``<element>_<unit>`` columns.

    ``concentrations_pct`` (samples, elements) is in weight percent; each
    element is converted to its assay unit (:func:`axs.elements.assay_unit`).
    """
    columns = {"sample_id": list(sample_ids), **(extra or {})}
    for e, element in enumerate(elements):
        unit = assay_unit(element)
        columns[f"{element}_{unit}"] = concentrations_pct[:, e] / UNIT_TO_PCT[unit]
    return pd.DataFrame(columns)


def predict_files(model, arguments: list[str | Path], live_time_s: float | None = None, *,
                  energy_unit: str = "keV", tube_kv: float | None = None, theta: bool = False,
                  field=None, level: float = 0.9) -> PredictionRun:
    """Predict every sample in the spectra files (and folders) ``arguments`` with ``model``.

    ``model`` is a loaded model (anything with ``predict``, ``energies_kev``
    and ``elements``); ``live_time_s`` is used for files that do not give one,
    ``energy_unit`` for files that do not state theirs (:mod:`axs.importers`),
    ``tube_kv`` for files that do not give their tube voltage
    (:func:`rates_on_grid`). ``theta`` adds the ``theta_<element>`` columns
    (AXS models only, :func:`theta_columns`). ``field``: the model's
    :class:`axs.bundle.FieldBundle`, which adds the ``applicable``, ``flags``,
    ``<element>_lo`` and ``<element>_hi`` columns (intervals at ``level``).
    """
    energies_kev, elements = model_grid(model)
    if theta:
        require_theta(model)
    errors: list[DataError] = []
    warnings: list[str] = []
    read = []
    skipped: list[str] = []
    for argument in arguments:
        try:
            paths, skipped_here = spectrum_paths([argument])
        except DataError as err:
            errors.append(err)
            continue
        skipped += skipped_here
        for path in paths:
            try:
                spectra = read_spectra(path, live_time_s, energy_unit)
            except DataError as err:
                errors.append(err)
                continue
            except OSError as err:
                errors.append(DataError(path, f"cannot be read ({err.strerror or err})"))
                continue
            for k, spectrum in enumerate(spectra):
                read.append((Path(f"{path}#{k + 1}") if len(spectra) > 1 else path, spectrum))
    samples, rows, files = [], [], []
    for sample, members in group_by_sample(read, errors).items():
        rates, used = [], []
        for path, spectrum in members:
            try:
                row, warning = rates_on_grid(spectrum, energies_kev, path, tube_kv)
            except DataError as err:
                errors.append(err)
                continue
            rates.append(row)
            used.append(str(path))
            if warning:
                warnings.append(warning)
        if rates:
            samples.append(sample)
            rows.append(np.mean(rates, axis=0))
            files.append(used)
    X = np.stack(rows).astype(np.float32) if rows else np.empty((0, len(energies_kev)), np.float32)
    predicted = (np.asarray(model.predict(X), dtype=np.float64) if rows else np.empty((0, len(elements))))
    table = concentrations_table(samples, predicted, elements,
                                 {"n_spectra": [len(f) for f in files], "files": [";".join(f) for f in files]})
    if theta:
        table = pd.concat([table, theta_columns(model, X)], axis=1)
    if field is not None:  # applicability flags and intervals (axs.bundle)
        spectrum_of = {str(p): s for p, s in read}
        table = field.annotate(model, table, np.asarray(X).reshape(len(table), len(energies_kev)),
                               [[spectrum_of[f] for f in used] for used in files], level)
    return PredictionRun(table, [str(e) for e in errors], warnings, skipped)


def require_theta(model) -> None:
    """ValueError unless ``model`` has a decoder (AXS, AXS+), so that its theta (eq. 4) means element multipliers."""
    if getattr(getattr(model, "network", None), "simulator", None) is None:
        raise ValueError(f"--theta: the model is {getattr(model, 'name', type(model).__name__)!r}, without "
                         "the XRF Simulator decoder; theta, the per-element multipliers of eq. 4, exists only "
                         "for AXS and AXS+ models")


def theta_columns(model, X: np.ndarray) -> pd.DataFrame:
    """AXS: the Encoder's theta (eq. 4) of spectra ``X`` (counts/s on the model's grid), one
    ``theta_<element>`` column per simulator element (in counts per unit line shape, eq. 6)."""
    require_theta(model)
    names = [f"theta_{e}" for e in model.simulator_elements]
    values = model.theta(X) if len(X) else np.empty((0, len(names)))
    return pd.DataFrame(values, columns=names)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` as CSV to ``path`` atomically (a failed run leaves no partial file)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


#: The file the applicability and interval calibration of a model lives in, beside the model file.
FIELD_FILE = "field.json"


def describe_model(path: str | Path) -> dict:
    """What ``axs info`` prints about the saved model at ``path`` (a file or a folder holding one).

    Keys: ``model`` (file, kind, class), ``energy_grid``, ``elements`` (with
    assay units), ``hyperparameters``, ``training_data`` (what the saved
    scalers record about the training spectra), ``tube``, then every key of
    the ``field.json`` beside the model file as it is (applicability
    thresholds, interval calibration...). DataError if the model or its
    ``field.json`` cannot be read.
    """
    import json

    file = model_path(path)
    model = load_predictor(file)
    energies_kev, elements = model_grid(model)
    gain = np.diff(energies_kev)
    info: dict = {
        "model": {"file": str(file), "name": getattr(model, "name", type(model).__name__),
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
    if getattr(model, "name", None) == "axs":
        info["theta_elements"] = list(model.simulator_elements)
    if "excitation_kev" in info["hyperparameters"]:
        info["tube"] = f"{info['hyperparameters']['excitation_kev']:g} kV (the PyMca fit's excitation energy)"
    beside = file.parent / FIELD_FILE
    if beside.is_file():
        try:
            field_info = json.loads(beside.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(beside, f"cannot be read as JSON ({err})") from None
        if not isinstance(field_info, dict):
            raise DataError(beside, f"expected a JSON object, got {type(field_info).__name__}")
        if "tube" in field_info:
            info["tube"] = field_info.pop("tube")
        info.update({f"{FIELD_FILE}: {k}": v for k, v in field_info.items()})
    else:
        info[FIELD_FILE] = "none beside the model file (no applicability thresholds or interval calibration)"
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
