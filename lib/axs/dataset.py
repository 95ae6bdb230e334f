"""Raw data -> one validated, labelled dataset: the ``prepare`` stage's library.

Reads what an instrument and an assay lab deliver (``data/manifest.csv``, the
spectrum files it lists, ``data/assays.csv``, ``data/assay_limits.csv`` and the
optional ``data/samples.csv``; formats in docs/data-format.md), checks
everything against everything, and builds one :class:`xarray.Dataset`:

* ``measurement_cps(sample, orientation, channel)``: counts per second per
  channel of each measurement, ``counts / rate_time_s`` (the live time, or 1 s
  for files in ``units: cps``) after it has been moved (count-conserving,
  :func:`axs.energy_grid.rebin_counts`) onto one common energy grid
  ``energy_kev(channel)`` (channel centres, keV; any number of channels); NaN
  where a sample has no measurement in that orientation. What models read
  (:func:`model_input`): each measurement is normalised before a sample's
  orientations are combined (:func:`axs.normalisation.model_spectra`);
* ``spectrum_cps(sample, channel)``: the mean over a sample's orientations of
  ``measurement_cps``, for display (plots, the mean spectrum); models do not
  read it, since averaging raw spectra weighs closer orientations more;
* ``concentration_pct(sample, element)``: assays in weight percent, with
  censored values replaced by the documented rule :data:`CENSORING_RULE`,
  and NaN where the lab left the cell blank (not analysed; never filled);
* ``censored(sample, element)``: -1 below the detection limit, +1 above the
  upper limit, 0 measured (the flag travels with the data);
* ``missing(sample, element)``: True where the cell was blank;
* coordinate ``family(sample)``: the sample's rock or matrix family from
  ``samples.csv`` (``""`` for every sample when there is no such file);
* ``fold(sample)``: the seeded k-fold cross-validation fold of each sample;
* ``measurement_live_time_s(sample, orientation)``, ``live_time_s(sample)``: each measurement's live time and
  a sample's total, from the file's header, or for a file in cps without one read back from its whole counts
  (:func:`axs.spectrum_files.whole_count_live_time`; NaN where its rates show none): what turns a
  reconstruction's rates back into counts for its chi2;
* attribute ``tube``: the tubes named in the spectra headers (:func:`training_tubes`).

Elements keep the column order of ``assays.csv`` and may be any element
symbol (not only the stand-in's 48).

Nothing is written until every input has been read and checked, and then
only into the output folder, through a temporary file renamed into place.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import KFold

from axs.assays import ABOVE, BELOW, read_assays
from axs.energy_grid import (MAX_DRIFT_CHANNELS, counts_per_second, covers, drift_trim, grid_fit,  # noqa: F401
                             rebin_counts, uncovered_channels)
from axs.errors import DataError, parse_number
from axs.files import atomic_path, sha256_of
from axs.importers import tube_kv
from axs.spectrum_files import Spectrum, energy_axis, read_spectrum, whole_count_live_time

#: How censored assays become numbers (weight percent); recorded in the dataset's attributes.
CENSORING_RULE = ("below the detection limit ('<DL') -> half the detection limit (DL/2); "
                  "above the upper limit ('>UL') -> the upper limit (UL); "
                  "flagged in variable 'censored' (-1 below, +1 above, 0 measured)")

MANIFEST_COLUMNS = ("file", "sample_id", "orientation", "sha256")
SAMPLES_COLUMNS = ("sample_id", "family")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
NETCDF_ENGINE = "netcdf4"


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read ``manifest.csv`` (file, sample_id, orientation, sha256), one row per spectrum file.

    Returns a frame with a ``line`` column (1-based line in the file) for error
    messages. Rejects missing columns, empty cells, a non-integer orientation,
    a malformed SHA-256, a file listed twice and a (sample, orientation) pair
    listed twice.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file missing; expected the manifest of spectrum files")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise DataError(path, "file is empty")
        for column in MANIFEST_COLUMNS:
            if column not in reader.fieldnames:
                raise DataError(path, "expected this column in the header", line=1, field=column)
        rows = []
        for row in reader:
            line = reader.line_num
            for column in MANIFEST_COLUMNS:
                if not (row.get(column) or "").strip():
                    raise DataError(path, "expected a value, got an empty cell", line=line, field=column)
            orientation = parse_number(path, row["orientation"], line=line, field="orientation", kind=int)
            sha = row["sha256"].strip().lower()
            if not _SHA256.match(sha):
                raise DataError(path, f"expected 64 hexadecimal digits, got {row['sha256']!r}",
                                line=line, field="sha256")
            rows.append({"file": row["file"].strip(), "sample_id": row["sample_id"].strip(),
                         "orientation": orientation, "sha256": sha, "line": line})
    if not rows:
        raise DataError(path, "lists no spectrum files")
    manifest = pd.DataFrame(rows)
    for key, what in ((["file"], "file"), (["sample_id", "orientation"], "sample and orientation")):
        repeated = manifest[manifest.duplicated(key, keep="first")]
        if len(repeated):
            row = repeated.iloc[0]
            first = manifest[(manifest[key] == row[key]).all(axis=1)].iloc[0]["line"]
            value = tuple(row[k].item() if hasattr(row[k], "item") else row[k] for k in key)
            raise DataError(path, f"duplicate {what} {value if len(key) > 1 else value[0]!r} "
                            f"(first on line {first})", line=int(row["line"]), field=key[0])
    return manifest


def read_listed_spectra(data_dir: str | Path, manifest: pd.DataFrame,
                        manifest_path: str | Path) -> list[Spectrum]:
    """Read and cross-check every spectrum file the manifest lists.

    Each file must exist, match its SHA-256, agree with its manifest row on
    sample id and orientation, and have the same number of channels as the
    first file. Spectrum files under ``spectra/`` that the manifest does not
    list are rejected too (an unlisted measurement is a sign of a stale manifest).
    """
    data_dir = Path(data_dir)
    spectra: list[Spectrum] = []
    n_channels = None
    for row in manifest.itertuples():
        path = data_dir / row.file
        if not path.is_file():
            raise DataError(manifest_path, f"lists {row.file!r}, which does not exist",
                            line=row.line, field="file")
        if sha256_of(path) != row.sha256:
            raise DataError(path, f"content differs from its SHA-256 in {Path(manifest_path).name} "
                            f"line {row.line}", field="sha256")
        spectrum = read_spectrum(path, n_channels=n_channels)
        n_channels = len(spectrum.counts)
        for name, listed in (("sample_id", row.sample_id), ("orientation", row.orientation)):
            if getattr(spectrum, name) != listed:
                raise DataError(path, f"header says {getattr(spectrum, name)!r} but "
                                f"{Path(manifest_path).name} line {row.line} says {listed!r}", field=name)
        spectra.append(spectrum)
    listed = {(data_dir / f).resolve() for f in manifest["file"]}
    spectra_dir = data_dir / "spectra"
    if spectra_dir.is_dir():
        for path in sorted(spectra_dir.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.resolve() not in listed:
                raise DataError(path, f"spectrum file is not listed in {Path(manifest_path).name}",
                                field="file")
    return spectra


def common_energy_kev(spectra: list[Spectrum]) -> np.ndarray:
    """The common energy grid (channel centres, keV): the median calibration over all measurements.

    The median keeps one drifted measurement from moving the grid; every
    measurement is then rebinned onto it.
    """
    offset = float(np.median([s.energy_offset_kev for s in spectra]))
    gain = float(np.median([s.energy_gain_kev for s in spectra]))
    quadratic = float(np.median([s.energy_quadratic_kev for s in spectra]))
    return energy_axis(len(spectra[0].counts), offset, gain, quadratic)


def common_grid(spectra: list[Spectrum], paths: list[Path]) -> tuple[np.ndarray, str]:
    """The common energy grid every measurement goes onto, and a note on what it took ('' if nothing).

    The median calibration (:func:`common_energy_kev`), narrowed by the few
    channels (:data:`axs.energy_grid.MAX_DRIFT_CHANNELS` at most) that a
    measurement whose calibration drifted does not reach (:func:`axs.energy_grid.drift_trim`),
    so that it is rebinned like the others rather than refused. A measurement
    that ends short only above its tube voltage (header ``tube``) is
    zero-filled there: its tube cannot emit counts at those energies
    (the rule of ``axs predict``, :func:`axs.energy_grid.grid_fit`). Any other
    measurement that does not cover the grid is a DataError naming its file (``paths[k]``).
    """
    energies_kev = common_energy_kev(spectra)
    kvs = [tube_kv(s) for s in spectra]
    low, high = drift_trim([s.energies_kev for s in spectra], energies_kev, kvs)
    notes = []
    if low or high:
        drifted = [str(p) for s, p, kv in zip(spectra, paths, kvs)
                   if grid_fit(s.energies_kev, energies_kev, kv) == "not_covered"]
        energies_kev = energies_kev[low: len(energies_kev) - high]
        notes.append(f"common grid narrowed by {low} channel(s) at the low end and {high} at the high end, to "
                     f"{energies_kev[0]:.3f}-{energies_kev[-1]:.3f} keV, so that {len(drifted)} measurement(s) "
                     f"whose calibration drifted cover it and are rebinned: {', '.join(drifted)}")
    zero_filled = []
    for spectrum, path, kv in zip(spectra, paths, kvs):
        how = grid_fit(spectrum.energies_kev, energies_kev, kv)
        if how == "not_covered":
            short = uncovered_channels(spectrum.energies_kev, energies_kev)
            raise DataError(path, f"energy calibration ({spectrum.energies_kev[0]:.3f}-"
                            f"{spectrum.energies_kev[-1]:.3f} keV) does not span the common grid "
                            f"{energies_kev[0]:.3f}-{energies_kev[-1]:.3f} keV (short by {short[0]} channel(s) "
                            f"at the low end, {short[1]} at the high end; up to {MAX_DRIFT_CHANNELS} are absorbed, "
                            "and a spectrum ending short above its header's tube voltage is zero-filled)",
                            field="energy_offset_kev")
        if how == "zero_fill":
            zero_filled.append(f"{path} ({kv:g} kV)")
    if zero_filled:
        notes.append(f"{len(zero_filled)} measurement(s) end short above their tube voltage and are zero-filled "
                     f"there: {', '.join(zero_filled)}")
    return energies_kev, "; ".join(notes)


def impute_censored(values_pct: pd.DataFrame, censored: pd.DataFrame, lower_pct: pd.Series,
                    upper_pct: pd.Series, source: str | Path) -> pd.DataFrame:
    """Apply :data:`CENSORING_RULE`: ``<DL`` -> DL/2, ``>UL`` -> UL (weight percent).

    A censored cell whose element has no finite limit in ``assay_limits.csv``
    cannot be given a number and is rejected (naming ``source``, the limits file).
    """
    out = values_pct.copy()
    for flag, limit, factor in ((BELOW, lower_pct, 0.5), (ABOVE, upper_pct, 1.0)):
        mask = censored.to_numpy() == flag
        if not mask.any():
            continue
        bound = limit.reindex(values_pct.columns).to_numpy(dtype=np.float64)
        bad = mask & ~np.isfinite(bound)[None, :]
        if bad.any():
            element = values_pct.columns[np.argwhere(bad)[0][1]]
            raise DataError(source, f"a censored {element} assay needs a finite "
                            f"{'lower' if flag == BELOW else 'upper'} limit for {element}",
                            field=element)
        out = out.mask(mask, np.broadcast_to(bound * factor, mask.shape))
    return out


def read_samples(path: str | Path, samples: list[str]) -> np.ndarray:
    """The ``family`` of each of ``samples`` from ``samples.csv`` (``sample_id,family``; other columns
    are ignored), or ``""`` for all when the file does not exist.

    The family is a rock or matrix class (e.g. ``obsidian``) used to report
    scores per family; it is never a model input. Every sample needs exactly
    one row with a non-empty family, and every row must be a known sample.
    """
    path = Path(path)
    if not path.exists():
        return np.full(len(samples), "", dtype=object)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise DataError(path, "file is empty")
        for column in SAMPLES_COLUMNS:
            if column not in reader.fieldnames:
                raise DataError(path, "expected this column in the header", line=1, field=column)
        family: dict[str, str] = {}
        known = set(samples)
        for row in reader:
            line = reader.line_num
            sample, name = (row.get("sample_id") or "").strip(), (row.get("family") or "").strip()
            for column, value in (("sample_id", sample), ("family", name)):
                if not value:
                    raise DataError(path, "expected a value, got an empty cell", line=line, field=column)
            if sample in family:
                raise DataError(path, f"duplicate sample id {sample!r}", line=line, field="sample_id")
            if sample not in known:
                raise DataError(path, f"sample {sample!r} has no spectrum and no assay", line=line,
                                field="sample_id")
            family[sample] = name
    absent = [s for s in samples if s not in family]
    if absent:
        raise DataError(path, f"sample {absent[0]!r} has no row ({len(absent)} samples lack one)",
                        field="sample_id")
    return np.array([family[s] for s in samples], dtype=object)


def live_time_of(spectrum: Spectrum) -> float | None:
    """A measurement's live time in s: its header's, or for a file in cps without one, the live time its rates
    show (:func:`axs.spectrum_files.whole_count_live_time`); None where neither gives one."""
    if spectrum.live_time_s is not None:
        return float(spectrum.live_time_s)
    return whole_count_live_time(spectrum.counts) if spectrum.units == "cps" else None


def build_dataset(data_dir: str | Path) -> xr.Dataset:
    """Read, validate and assemble the labelled dataset from ``data_dir`` (see the module docstring).

    Every sample with spectra needs an assay row and every assay row needs
    spectra; elements keep the column order of ``assays.csv``; samples are
    sorted by id. Raises :class:`DataError` naming file, line or field on any
    malformed or inconsistent input.
    """
    data_dir = Path(data_dir)
    manifest_path = data_dir / "manifest.csv"
    assays_path, limits_path = data_dir / "assays.csv", data_dir / "assay_limits.csv"
    manifest = read_manifest(manifest_path)
    for path in (assays_path, limits_path):
        if not path.exists():
            raise DataError(path, "file missing")
    assays = read_assays(assays_path, limits_path)
    spectra = read_listed_spectra(data_dir, manifest, manifest_path)

    assayed = set(assays.values_pct.index)
    for row in manifest.itertuples():
        if row.sample_id not in assayed:
            raise DataError(manifest_path, f"sample {row.sample_id!r} has a spectrum but no row in "
                            f"{assays_path.name}", line=row.line, field="sample_id")
    measured = set(manifest["sample_id"])
    for position, sample in enumerate(assays.values_pct.index):
        if sample not in measured:
            raise DataError(assays_path, f"sample {sample!r} has an assay but no spectrum in "
                            f"{manifest_path.name}", line=position + 2, field="sample_id")

    energies_kev, grid_notes = common_grid(spectra, [data_dir / f for f in manifest["file"]])
    cps = np.empty((len(spectra), len(energies_kev)))
    for k, spectrum in enumerate(spectra):
        cps[k] = counts_per_second(spectrum.counts, spectrum.energies_kev, spectrum.rate_time_s,
                                   energies_kev)

    samples = sorted(measured)
    sample_index = pd.Index(manifest["sample_id"])
    orientations = sorted(set(manifest["orientation"]))
    per_measurement = np.full((len(samples), len(orientations), len(energies_kev)), np.nan)
    row_of = {s: k for k, s in enumerate(samples)}
    measurement_live = np.full((len(samples), len(orientations)), np.nan)
    seconds = [live_time_of(spectrum) for spectrum in spectra]
    for k, row in enumerate(manifest.itertuples()):
        cell = row_of[row.sample_id], orientations.index(row.orientation)
        per_measurement[cell] = cps[k]
        if seconds[k] is not None:
            measurement_live[cell] = seconds[k]
    averaged = np.stack([cps[sample_index == s].mean(axis=0) for s in samples])
    n_orientations = np.array([(sample_index == s).sum() for s in samples], dtype=np.int32)
    live_times = [[t for t, sid in zip(seconds, sample_index) if sid == s] for s in samples]
    live_time = np.array([np.nan if None in times else sum(times) for times in live_times])
    family = read_samples(data_dir / "samples.csv", samples)

    elements = list(assays.values_pct.columns)
    values = impute_censored(assays.values_pct, assays.censored, assays.lower_pct, assays.upper_pct,
                             limits_path).loc[samples, elements]
    return xr.Dataset(
        {
            "measurement_cps": (("sample", "orientation", "channel"), per_measurement,
                                {"units": "counts/s", "long_name": "counts per second per channel of each "
                                 "measurement, on the common energy grid; NaN where not measured"}),
            "spectrum_cps": (("sample", "channel"), averaged,
                             {"units": "counts/s", "long_name": "mean over orientations of counts per "
                              "second per channel, on the common energy grid (display only)"}),
            "concentration_pct": (("sample", "element"), values.to_numpy(dtype=np.float64),
                                  {"units": "wt%", "long_name": "assay, censored values imputed, "
                                   "NaN where not analysed"}),
            "censored": (("sample", "element"), assays.censored.loc[samples, elements].to_numpy(np.int8),
                         {"long_name": "-1 below detection limit, +1 above upper limit, 0 measured"}),
            "missing": (("sample", "element"), assays.missing.loc[samples, elements].to_numpy(bool),
                        {"long_name": "True where the assay cell was blank (not analysed)"}),
            "lower_limit_pct": (("element",), assays.lower_pct.reindex(elements).to_numpy(np.float64),
                                {"units": "wt%"}),
            "upper_limit_pct": (("element",), assays.upper_pct.reindex(elements).to_numpy(np.float64),
                                {"units": "wt%"}),
            "unit": (("element",), assays.units.reindex(elements).to_numpy(str),
                     {"long_name": "unit the lab reported the element in"}),
            "n_orientations": (("sample",), n_orientations),
            "live_time_s": (("sample",), live_time, {"units": "s", "long_name": "total live time "
                                                     "(NaN when a file in cps gives none and shows none)"}),
            "measurement_live_time_s": (("sample", "orientation"), measurement_live,
                                        {"units": "s", "long_name": "live time of each measurement (NaN where "
                                         "not measured, or a file in cps gives none and shows none)"}),
        },
        coords={"sample": samples, "element": elements, "channel": np.arange(len(energies_kev)),
                "orientation": np.asarray(orientations, dtype=np.int32),
                "family": (("sample",), family.astype(str), {"long_name": "rock or matrix family "
                                                              "(samples.csv); not a model input"}),
                "energy_kev": (("channel",), energies_kev, {"units": "keV"})},
        attrs={"censoring": CENSORING_RULE, "tube": training_tubes(spectra), "energy_grid_notes": grid_notes},
    )


def training_tubes(spectra: list[Spectrum]) -> str:
    """The distinct header ``tube`` fields of the spectra (``"Rh 40 kV"``), ``"; "``-joined ('' if none say).

    Kept in the dataset's attributes so that an exported model can check the
    tube of new spectra (:mod:`axs.applicability`)."""
    return "; ".join(sorted({s.metadata["tube"] for s in spectra if s.metadata.get("tube")}))


def select_cores(ds: xr.Dataset, max_cores: int | None) -> xr.Dataset:
    """The first ``max_cores`` samples (by id), or all when ``max_cores`` is None (smoke mode uses it)."""
    return ds if max_cores is None else ds.isel(sample=slice(0, int(max_cores)))


def single_spectra(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each measurement of a prepared dataset on its own: ``(X (m, channels) counts/s, sample_position (m,))``,
    ``sample_position[i]`` the index in ``ds.sample`` of measurement i's sample (for its assay and fold).

    The rows are the measured (sample, orientation) cells of ``measurement_cps``
    (NaN cells, orientations a sample lacks, are left out), sample by sample in
    orientation order. What a field user measures is usually one spectrum per
    sample, not the average of several orientations; the applicability checks
    and the intervals are calibrated on these too.
    """
    if "measurement_cps" not in ds:
        raise ValueError("single_spectra needs measurement_cps(sample, orientation, channel); "
                         "this dataset has only the per-sample mean spectrum_cps")
    cps = ds["measurement_cps"].transpose("sample", "orientation", "channel").to_numpy()
    sample_position, orientation_position = measured_cells(ds)
    return cps[sample_position, orientation_position], sample_position


def measured_cells(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(sample positions, orientation positions) of the measured cells of ``measurement_cps``, in the row order
    of :func:`single_spectra`."""
    cps = ds["measurement_cps"].transpose("sample", "orientation", "channel").to_numpy()
    return np.nonzero(~np.isnan(cps).all(axis=2))


def assign_folds(n_samples: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of each sample: scikit-learn's shuffled :class:`KFold` with ``random_state=seed``."""
    if not 2 <= n_folds <= n_samples:
        raise ValueError(f"need 2 <= n_folds <= number of samples ({n_samples}), got {n_folds}")
    fold = np.empty(n_samples, dtype=np.int32)
    for k, (_, test) in enumerate(KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n_samples))):
        fold[test] = k
    return fold


def read_unlabelled(data_dir: str | Path, energies_kev: np.ndarray, max_cores: int | None = None) -> xr.Dataset | None:
    """The unlabelled spectra archive (``data/unlabelled/pool_*.nc``) on the common grid, per measurement.

    Each file holds ``counts(spectrum, channel)``, ``sample_id``, ``orientation``,
    ``live_time_s``, ``energy_offset_kev`` and ``energy_gain_kev`` per spectrum.
    Returns ``measurement_cps(sample, orientation, channel)`` (float32) and
    ``spectrum_cps(sample, channel)`` like :func:`build_dataset`, the first
    ``max_cores`` samples by id, or None when there is no archive.
    """
    files = sorted((Path(data_dir) / "unlabelled").glob("pool_*.nc"))
    if not files:
        return None
    parts, orientation_parts = [], []
    for path in files:
        with xr.open_dataset(path, engine=NETCDF_ENGINE) as pool:
            for name in ("counts", "sample_id", "orientation", "live_time_s", "energy_offset_kev",
                         "energy_gain_kev"):
                if name not in pool:
                    raise DataError(path, "variable missing from the spectra archive", field=name)
            counts = pool["counts"].to_numpy().astype(np.float64)
            if counts.ndim != 2 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
                raise DataError(path, "expected finite non-negative counts(spectrum, channel)", field="counts")
            live = pool["live_time_s"].to_numpy().astype(np.float64)
            if np.any(~(live > 0)):
                raise DataError(path, "expected positive live times", field="live_time_s")
            offset = pool["energy_offset_kev"].to_numpy()
            gain = pool["energy_gain_kev"].to_numpy()
            quadratic = pool["energy_quadratic_kev"].to_numpy() if "energy_quadratic_kev" in pool \
                else np.zeros_like(offset)
            cps = np.empty((counts.shape[0], len(energies_kev)))
            for k in range(counts.shape[0]):
                src = energy_axis(counts.shape[1], offset[k], gain[k], quadratic[k])
                if np.any(np.diff(src) <= 0) or not covers(src, energies_kev):
                    raise DataError(path, f"spectrum {k}: energy calibration must increase and span the "
                                    "common grid", field="energy_gain_kev")
                cps[k] = counts_per_second(counts[k], src, live[k], energies_kev)
            parts.append(pd.DataFrame(cps, index=pool["sample_id"].to_numpy().astype(str)))
            orientation_parts.append(pool["orientation"].to_numpy().astype(np.int64))
    frame = pd.concat(parts)
    averaged = frame.groupby(level=0, sort=True).mean()
    if max_cores is not None:
        averaged = averaged.iloc[: int(max_cores)]
    samples = averaged.index.to_numpy(str)
    orientations = np.concatenate(orientation_parts)
    slots = sorted(set(orientations.tolist()))
    # float32: the pool is ~4000 measurements; counts/s need no more than 7 digits
    per_measurement = np.full((len(samples), len(slots), len(energies_kev)), np.nan, np.float32)
    row_of = {s: k for k, s in enumerate(samples)}
    for values, sample, orientation in zip(frame.to_numpy(), frame.index, orientations):
        if sample in row_of:
            per_measurement[row_of[sample], slots.index(orientation)] = values
    return xr.Dataset(
        {"measurement_cps": (("sample", "orientation", "channel"), per_measurement,
                             {"units": "counts/s", "long_name": "unlabelled: each measurement, NaN where none"}),
         "spectrum_cps": (("sample", "channel"), averaged.to_numpy(),
                          {"units": "counts/s", "long_name": "unlabelled: mean over orientations (display only)"})},
        coords={"sample": samples, "orientation": np.asarray(slots, dtype=np.int32),
                "channel": np.arange(len(energies_kev)),
                "energy_kev": (("channel",), energies_kev, {"units": "keV"})},
    )


def model_input(ds: xr.Dataset) -> np.ndarray:
    """The spectra a model reads from a prepared dataset: ``measurement_cps`` (sample, orientation, channel),
    counts/s, NaN where a sample lacks an orientation (:func:`axs.normalisation.model_spectra` normalises
    each measurement, then combines); ``spectrum_cps`` (sample, channel) for a dataset prepared without it."""
    if "measurement_cps" in ds:
        return ds["measurement_cps"].transpose("sample", "orientation", "channel").to_numpy()
    return ds["spectrum_cps"].transpose("sample", "channel").to_numpy()


def write_netcdf(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` to ``path`` (netCDF-4) through a temporary file renamed into place."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)


def with_folds(ds: xr.Dataset, n_folds: int, fold_seed: int) -> xr.Dataset:
    """``ds`` with its cross-validation ``fold(sample)`` (:func:`assign_folds`) and the settings in its attributes."""
    ds["fold"] = ("sample", assign_folds(ds.sizes["sample"], n_folds, fold_seed),
                  {"long_name": f"cross-validation fold (scikit-learn KFold, shuffled, seed {fold_seed})"})
    ds.attrs.update(n_folds=int(n_folds), fold_seed=int(fold_seed))
    return ds


def prepare(data_dir: str | Path, out_dir: str | Path, n_folds: int, fold_seed: int,
            max_cores: int | None = None, max_unlabelled_cores: int | None = None) -> xr.Dataset:
    """The ``prepare`` stage: validate everything, then write ``dataset.nc`` (and ``unlabelled.nc``).

    All reading and checking happens before the first write, so malformed
    input leaves ``out_dir`` untouched. Returns the labelled dataset with its folds.
    """
    ds = with_folds(select_cores(build_dataset(data_dir), max_cores), n_folds, fold_seed)
    unlabelled = read_unlabelled(data_dir, ds["energy_kev"].to_numpy(), max_unlabelled_cores)
    write_netcdf(ds, Path(out_dir) / "dataset.nc")
    if unlabelled is not None:
        write_netcdf(unlabelled, Path(out_dir) / "unlabelled.nc")
    return ds


def load_dataset(path: str | Path) -> xr.Dataset:
    """Read a dataset written by :func:`prepare` fully into memory (the file is closed on return)."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return ds.load()



#: Where a dataset may keep its ground truth (the stand-in's), relative to its data folder.
TRUTH_FILE = Path("truth") / "truth.nc"


def prepare_truth(data_dir: str | Path, samples, out_path: str | Path) -> bool:
    """Copy what the evaluation needs of the ground truth, if the data has one (the stand-in's
    ``truth/truth.nc``), to ``out_path``: each labelled sample's true surface composition averaged over
    its orientations (``surface_pct``, wt%), its rock type, and each measurement's true path
    (``distance_cm``, ``dust_g_cm2`` (sample, orientation)). Never an input to a model: only the
    references of :mod:`axs.references` (floor, oracle, family-aware) and the per-family reporting read it.
    Returns whether a truth file was found.
    """
    path = Path(data_dir) / TRUTH_FILE
    if not path.exists():
        return False
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as truth:
        labelled = truth.sel(sample=np.asarray(samples))
        out = xr.Dataset({"surface_pct": labelled["surface_pct"].mean("orientation").load()})
        for name in ("rock_type", "distance_cm", "dust_g_cm2"):
            if name in labelled:
                out[name] = labelled[name].load()
    write_netcdf(out, out_path)
    return True
