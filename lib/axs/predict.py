"""Concentrations of new spectra from a saved model: what ``axs predict`` does with files.

Steps, for spectra files in any format of :mod:`axs.importers`:

1. read every file; a file that cannot be read is reported and left out;
2. group the orientations of each sample (header, or ``<sample>_o<k>.<ext>``);
3. put each spectrum on the model's energy grid: counts per second
   (counts / live time); a spectrum on another grid (other channel count or
   calibration) is moved onto the model's grid with the count-conserving
   :func:`axs.energy_grid.rebin_counts`, with a warning; one whose energy range
   does not cover the model's grid (:func:`axs.energy_grid.covers`) is an error;
4. average the orientations of each sample (as the training data were
   averaged, paper section 2);
5. predict all samples in one batched call of the model (the neural models run
   a ``tf.function``-compiled graph over batches, never ``keras.Model.predict``
   per spectrum);
6. one row per sample: ``sample_id``, ``n_spectra``, ``files``, then one
   column per element named ``<element>_<unit>`` with the concentration in the
   unit the assay lab reports it in (``pct`` weight percent or ``ppm``).

Errors are collected per file (:class:`PredictionRun`) so one bad file never
stops the others.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from axs.elements import UNIT_TO_PCT, assay_unit
from axs.dataset import counts_per_second
from axs.energy_grid import covers
from axs.errors import DataError
from axs.files import atomic_path
from axs.importers import FORMATS, group_by_sample, read_any_spectrum
from axs.spectrum_files import Spectrum

#: Two grids are the same when their channel energies agree within this share of a channel.
SAME_GRID_TOLERANCE_CHANNELS = 1e-3


@dataclass
class PredictionRun:
    """The outcome of predicting a set of files."""

    table: pd.DataFrame
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_predictor(path: str | Path):
    """The model saved at ``path``: a file written by a model's ``save`` or a folder holding one.

    A folder holding exactly one ``*.keras`` or ``*.joblib`` file stands for
    that file; files go to :func:`axs.models.load_model` (every model of the
    registry, the PyMca peer included).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved model there")
    if path.is_dir():
        inside = sorted(p for p in path.iterdir() if p.suffix in (".keras", ".joblib"))
        if len(inside) != 1:
            raise ValueError(f"{path}: expected one saved model (*.keras or *.joblib) in the folder, "
                             f"found {len(inside)}")
        path = inside[0]
    from axs.models import load_model
    return load_model(path)


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


def rates_on_grid(spectrum: Spectrum, energies_kev: np.ndarray, source: str | Path = "spectrum"
                  ) -> tuple[np.ndarray, str | None]:
    """Counts per second per channel of ``spectrum`` on the grid ``energies_kev``, and a warning if resampled.

    Resampling is the training data's (:func:`axs.dataset.counts_per_second`).

    DataError naming ``source`` when the spectrum's energy range does not
    cover the grid (within one channel).
    """
    src = spectrum.energies_kev
    counts = np.asarray(spectrum.counts, dtype=np.float64)
    if same_grid(src, energies_kev):
        return counts / spectrum.live_time_s, None
    if not covers(src, energies_kev):
        raise DataError(source, f"energy range {src[0]:.3f}-{src[-1]:.3f} keV does not cover the "
                        f"model's {energies_kev[0]:.3f}-{energies_kev[-1]:.3f} keV", field="energy calibration")
    warning = (f"{source}: resampled from {len(src)} channels ({src[0]:.3f}-{src[-1]:.3f} keV) onto the "
               f"model's {len(energies_kev)} channels ({energies_kev[0]:.3f}-{energies_kev[-1]:.3f} keV)")
    return counts_per_second(counts, src, spectrum.live_time_s, energies_kev), warning


def spectrum_paths(arguments: list[str | Path]) -> list[Path]:
    """Files named, with each folder replaced by its spectrum files (known endings, sorted)."""
    paths = []
    for argument in map(Path, arguments):
        if argument.is_dir():
            paths += sorted(p for p in argument.iterdir()
                            if p.is_file() and any(p.name.lower().endswith(e) for e in FORMATS))
        else:
            paths.append(argument)
    return paths


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


def predict_files(model, arguments: list[str | Path], live_time_s: float | None = None,
                  field=None, level: float = 0.9) -> PredictionRun:
    """Predict every sample in the spectra files (and folders) ``arguments`` with ``model``.

    ``model`` is a loaded model (anything with ``predict``, ``energies_kev``
    and ``elements``); ``live_time_s`` is used for files that do not give one.
    ``field``: the model's :class:`axs.bundle.FieldBundle`, which adds the
    ``applicable``, ``flags``, ``<element>_lo`` and ``<element>_hi`` columns
    (intervals at ``level``).
    """
    energies_kev, elements = model_grid(model)
    errors: list[DataError] = []
    warnings: list[str] = []
    read = []
    for path in spectrum_paths(arguments):
        try:
            read.append((path, read_any_spectrum(path, live_time_s)))
        except DataError as err:
            errors.append(err)
        except OSError as err:
            errors.append(DataError(path, f"cannot be read ({err.strerror or err})"))
    samples, rows, files = [], [], []
    for sample, members in group_by_sample(read, errors).items():
        rates, used = [], []
        for path, spectrum in members:
            try:
                row, warning = rates_on_grid(spectrum, energies_kev, path)
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
    if rows:
        predicted = np.asarray(model.predict(np.stack(rows).astype(np.float32)), dtype=np.float64)
    else:
        predicted = np.empty((0, len(elements)))
    table = concentrations_table(samples, predicted, elements,
                                 {"n_spectra": [len(f) for f in files], "files": [";".join(f) for f in files]})
    if field is not None:  # applicability flags and intervals (axs.bundle)
        spectrum_of = {str(p): s for p, s in read}
        table = field.annotate(model, table, np.asarray(rows).reshape(len(rows), len(energies_kev)),
                               [[spectrum_of[f] for f in used] for used in files], level)
    return PredictionRun(table, [str(e) for e in errors], warnings)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` as CSV to ``path`` atomically (a failed run leaves no partial file)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
