"""Archive-scale prediction: a store of millions of spectra in, a store of concentrations out, chunk by chunk.

Input: a "spectra archive", one or more netCDF files (``*.nc``, concatenated
along ``spectrum`` in the order given) or one Zarr store (``*.zarr``) with

=====================  =====================  ===========================================
variable               dims                   meaning
=====================  =====================  ===========================================
``counts``             (spectrum, channel)    counts per channel (integers)
``live_time_s``        (spectrum,)            live time, s
``energy_offset_kev``  (spectrum,)            energy of channel 0, keV
``energy_gain_kev``    (spectrum,)            keV per channel
``energy_quadratic_kev`` (spectrum,)          optional quadratic term, keV
``sample_id``,         (spectrum,)            optional, copied to the output
``orientation``
=====================  =====================  ===========================================

(the schema of the stand-in's ``data/unlabelled/pool_*.nc``).

Output: a store of the same kind (``*.nc`` or ``*.zarr``, by the output
name) with ``concentration (spectrum, element)`` float32 in each element's
assay unit (coordinate ``unit``: ``pct`` or ``ppm``; below 0 reported as 0,
:func:`axs.predict.clip_at_zero`), ``flags (spectrum)`` int32, a bit mask
of :data:`axs.applicability.FLAG_NAMES` (bit k set: flag k; attributes
``flag_masks``/``flag_meanings``, the CF convention), ``grid_status
(spectrum)`` int8, and ``sample_id``/``orientation`` when the input has them.
With the model's field.json also ``applicable (spectrum)`` int8 (1 yes, 0 no)
and ``lower``/``upper (spectrum, element)``, the ends of the ``level``
prediction intervals. Every spectrum goes through
:func:`axs.predict.predict_spectra`, the function that predicts files: the
same applicability checks (the header checks of a file are the energy-range
check here; archives carry no tube), the same intervals, and a spectrum the
model cannot predict (an all-zero spectrum for a scatter-normalised model,
counts beyond float32) gets NaN and its flag instead of sinking the chunk.
``grid_status``: 0 on the model's grid, 1 resampled onto it, 2 zero-filled
above the tube voltage ``tube_kv`` (:func:`axs.predict.grid_fit`), and, with
NaN concentrations and ``applicable`` 0, -1 not covering the model's energy
range, -2 counts that are negative or not finite, -3 a live time that is not
positive: the checks :mod:`axs.importers` applies to files.
:func:`predict_archive` names every refused or unpredicted spectrum by index
and sample id. One row per spectrum: in the field each measurement is a
prediction; averaging orientations is :mod:`axs.predict`'s job for files.

How: the archive is opened lazily with xarray and dask, chunked along
``spectrum`` (``chunk_spectra`` spectra, all channels), and each chunk is put
on the model's grid (:func:`axs.predict.grid_fit`'s rules, vectorised per
distinct calibration in the chunk) and predicted by the model loaded once per
worker process with its field.json (:func:`axs.predict.cached_bundle`). Results stream into the
output store as chunks finish, so memory stays at a few chunks per worker
whatever the archive's size. With ``scheduler`` (a ``dask.distributed``
address such as ``tcp://10.0.0.5:8786``) the same graph runs on that cluster;
the model path, archive and output must then be reachable from every worker.
The output is written under a temporary name and renamed when complete, so
a failed run leaves no store behind; an existing output is replaced only with
``replace=True``. An archive of zero spectra is a DataError.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from axs.applicability import FLAG_NAMES, NOT_PREDICTED
from axs.elements import assay_unit
from axs.energy_grid import rebin_counts
from axs.errors import DataError
from axs.files import atomic_path
from axs.intervals import DEFAULT_LEVEL
from axs.predict import cached_bundle, clip_at_zero, grid_fit, model_grid, per_pct, predict_spectra
from axs.spectrum_files import energy_axis

REQUIRED = ("counts", "live_time_s", "energy_offset_kev", "energy_gain_kev")
PASSED_THROUGH = ("sample_id", "orientation")
ARCHIVE_SUFFIXES = (".nc", ".zarr")

#: Seconds to wait for a dask.distributed scheduler before giving up.
CONNECT_TIMEOUT_S = 5

#: grid_status values.
ON_GRID, RESAMPLED, ZERO_FILLED, NOT_COVERED, BAD_COUNTS, BAD_LIVE_TIME = 0, 1, 2, -1, -2, -3
STATUS_MEANINGS = {ON_GRID: "on_model_grid", RESAMPLED: "resampled", ZERO_FILLED: "zero_filled_above_tube_kv",
                   NOT_COVERED: "not_covered", BAD_COUNTS: "negative_or_non_finite_counts",
                   BAD_LIVE_TIME: "live_time_not_positive"}
#: What a refused spectrum's status means, as the CLI reports it.
REFUSED = {NOT_COVERED: "energy range does not cover the model's", BAD_COUNTS: "negative or non-finite counts",
           BAD_LIVE_TIME: "live time not positive"}


def open_archive(paths: list[str | Path], chunk_spectra: int = 8192) -> xr.Dataset:
    """The archive as a lazy Dataset chunked ``chunk_spectra`` spectra at a time; DataError if malformed."""
    paths = [Path(p) for p in paths]
    kinds = {p.suffix.lower() for p in paths}
    if not paths or not kinds <= set(ARCHIVE_SUFFIXES) or len(kinds) > 1:
        raise DataError(", ".join(map(str, paths)) or "(none)",
                        "expected netCDF files (*.nc) or one Zarr store (*.zarr)")
    for path in paths:
        if not path.exists():
            raise DataError(path, "archive not found")
    try:
        if kinds == {".zarr"}:
            if len(paths) > 1:
                raise DataError(paths[1], "expected one Zarr store")
            ds = xr.open_zarr(paths[0])
        else:
            ds = xr.open_mfdataset(paths, engine="netcdf4", combine="nested", concat_dim="spectrum",
                                   data_vars="minimal", coords="minimal", compat="override",
                                   chunks={"spectrum": chunk_spectra})
    except DataError:
        raise
    except Exception as err:  # netCDF4/zarr raise many types for unreadable stores
        raise DataError(paths[0], f"cannot be opened as a spectra archive ({err})") from None
    for name in REQUIRED:
        if name not in ds:
            raise DataError(paths[0], "archive variable missing", field=name)
    if ds["counts"].dims != ("spectrum", "channel"):
        raise DataError(paths[0], f"expected dims ('spectrum', 'channel'), got {ds['counts'].dims}",
                        field="counts")
    for name in REQUIRED[1:]:
        if ds[name].dims != ("spectrum",):
            raise DataError(paths[0], f"expected dims ('spectrum',), got {ds[name].dims}", field=name)
    return ds.chunk({"spectrum": chunk_spectra, "channel": -1})


def rates_block(counts: np.ndarray, live_time_s: np.ndarray, calibration: np.ndarray,
                energies_kev: np.ndarray, tube_kv: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Counts per second (float32) on the grid ``energies_kev`` for a block of spectra, and each one's grid_status.

    ``counts`` (n, channels); ``live_time_s`` (n,); ``calibration`` (n, 3):
    offset, gain, quadratic in keV. Spectra sharing a calibration are moved
    together (:func:`axs.energy_grid.rebin_counts`), by the rules of
    :func:`axs.predict.grid_fit`. Negative or non-finite counts and
    non-positive live times give NaN rates and a negative status (module doc).
    """
    counts = np.asarray(counts)
    live = np.asarray(live_time_s, dtype=np.float64)
    distinct, which = np.unique(calibration, axis=0, return_inverse=True)
    which = which.ravel()
    fits = [grid_fit(energy_axis(counts.shape[1], *row), energies_kev, tube_kv) for row in distinct]
    if fits == ["same"]:
        # the usual case, kept to one float32 copy of the chunk
        out = counts.astype(np.float32)
        status = np.full(len(counts), ON_GRID, dtype=np.int8)
    else:
        out = np.full((len(counts), len(energies_kev)), np.nan, dtype=np.float32)
        status = np.full(len(counts), NOT_COVERED, dtype=np.int8)
        for k, (row, how) in enumerate(zip(distinct, fits)):
            rows = np.flatnonzero(which == k)
            if how == "same":
                out[rows], status[rows] = counts[rows], ON_GRID
            elif how != "not_covered":
                src = energy_axis(counts.shape[1], *row)
                out[rows] = rebin_counts(np.nan_to_num(counts[rows].astype(np.float64)), src, energies_kev)
                status[rows] = RESAMPLED if how == "resample" else ZERO_FILLED
    if np.issubdtype(counts.dtype, np.floating):
        bad_counts = ~np.all(np.isfinite(counts) & (counts >= 0), axis=1)
    else:
        bad_counts = np.any(counts < 0, axis=1)
    out[bad_counts], status[bad_counts] = np.nan, BAD_COUNTS
    bad_live = ~(np.isfinite(live) & (live > 0))
    out[bad_live], status[bad_live] = np.nan, BAD_LIVE_TIME
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= live[:, None].astype(np.float32)
    return out, status


def flag_bits(flags: list[str]) -> np.ndarray:
    """The ``;``-joined flag names of each spectrum as a bit mask (bit k: :data:`axs.applicability.FLAG_NAMES`[k])."""
    bits = np.zeros(len(flags), dtype=np.int64)
    for i, names in enumerate(flags):
        for name in filter(None, names.split(";")):
            bits[i] |= 1 << FLAG_NAMES.index(name)
    return bits


def flag_names(bits: int) -> str:
    """The inverse of :func:`flag_bits` for one spectrum: ``;``-joined flag names."""
    return ";".join(name for k, name in enumerate(FLAG_NAMES) if int(bits) >> k & 1)


def _header_flags(field, counts: np.ndarray, calibration: np.ndarray, status: np.ndarray) -> list[list[str]]:
    """The header checks a file gets, for an archive's spectra: the energy range of each spectrum moved onto
    the grid (one on the grid has no counts outside it); archives record no tube."""
    flags: list[list[str]] = [[] for _ in range(len(counts))]
    for i in np.flatnonzero((status == RESAMPLED) | (status == ZERO_FILLED)):
        flags[i] = field.checker.header_flags(counts[i], energy_axis(counts.shape[1], *calibration[i]), None)
    return flags


def _predict_block(counts, live, calibration, model_path: str, tube_kv: float | None, level: float) -> np.ndarray:
    """(n, 3 elements + 3) float32: concentrations in assay units, interval ends (NaN without a field.json),
    then grid_status, applicable and the flag bits (exact in float32: fewer than 24 flags)."""
    loaded = cached_bundle(model_path)
    model, field = loaded.model, loaded.field
    energies_kev, elements = model_grid(model)
    rates, status = rates_block(counts, live[:, 0], calibration, energies_kev, tube_kv)
    n, n_elements = len(rates), len(elements)
    out = np.full((n, 3 * n_elements + 3), np.nan, dtype=np.float32)
    out[:, 3 * n_elements] = status
    out[:, 3 * n_elements + 1] = 0
    out[:, 3 * n_elements + 2] = 0
    good = np.flatnonzero(status >= 0)
    if len(good):
        header = _header_flags(field, counts[good], calibration[good], status[good]) if field is not None else None
        predictions = predict_spectra(model, rates[good], field, level, header)
        to_unit = per_pct(elements)
        out[good, :n_elements] = clip_at_zero(predictions.concentrations_pct) * to_unit
        if field is not None:
            out[good, n_elements: 2 * n_elements] = predictions.lower_pct * to_unit
            out[good, 2 * n_elements: 3 * n_elements] = predictions.upper_pct * to_unit
            out[good, 3 * n_elements + 1] = predictions.applicable
        else:
            out[good, 3 * n_elements + 1] = predictions.predicted
        out[good, 3 * n_elements + 2] = flag_bits(predictions.flags)
    return out


def predictions_dataset(model_path: str | Path, ds: xr.Dataset, tube_kv: float | None = None,
                        level: float = DEFAULT_LEVEL) -> xr.Dataset:
    """The lazy output Dataset for archive ``ds`` (module doc); nothing is computed yet."""
    model_path = str(model_path)
    loaded = cached_bundle(model_path)
    _, elements = model_grid(loaded.model)
    n_elements = len(elements)
    n_channels = ds.sizes["channel"]
    counts = ds["counts"].data
    if not isinstance(counts, da.Array):
        counts = da.from_array(counts, chunks=(8192, n_channels))
    chunks = (counts.chunks[0],)
    quadratic = (ds["energy_quadratic_kev"].data if "energy_quadratic_kev" in ds
                 else da.zeros(ds.sizes["spectrum"], chunks=chunks))
    calibration = da.stack([da.asarray(ds["energy_offset_kev"].data), da.asarray(ds["energy_gain_kev"].data),
                            da.asarray(quadratic)], axis=1).rechunk((chunks[0], 3)).astype(np.float64)
    live = da.asarray(ds["live_time_s"].data).rechunk(chunks)[:, None].astype(np.float64)
    block = da.map_blocks(_predict_block, counts.rechunk((chunks[0], n_channels)), live, calibration,
                          model_path=model_path, tube_kv=tube_kv, level=level, dtype=np.float32,
                          chunks=(chunks[0], (3 * n_elements + 3,)))
    variables = {
        "concentration": (("spectrum", "element"), block[:, :n_elements],
                          {"long_name": "predicted concentration", "units": "see unit(element)"}),
        "grid_status": (("spectrum",), block[:, 3 * n_elements].astype(np.int8),
                        {"flag_values": list(STATUS_MEANINGS), "flag_meanings": " ".join(STATUS_MEANINGS.values())}),
        "flags": (("spectrum",), block[:, 3 * n_elements + 2].astype(np.int32),
                  {"flag_masks": [1 << k for k in range(len(FLAG_NAMES))], "flag_meanings": " ".join(FLAG_NAMES),
                   "long_name": "applicability flags and reasons a spectrum was not predicted (axs.applicability)"}),
    }
    if loaded.field is not None:
        variables["applicable"] = (("spectrum",), block[:, 3 * n_elements + 1].astype(np.int8),
                                   {"flag_values": [0, 1], "flag_meanings": "flagged_or_not_predicted applicable"})
        for name, k in (("lower", 1), ("upper", 2)):
            variables[name] = (("spectrum", "element"), block[:, k * n_elements: (k + 1) * n_elements],
                               {"long_name": f"{name} end of the {level:g} prediction interval",
                                "units": "see unit(element)"})
    out = xr.Dataset(
        variables,
        # variable-length strings: portable in both netCDF and Zarr v3
        coords={"element": np.array(elements, dtype=object),
                "unit": ("element", np.array([assay_unit(e) for e in elements], dtype=object))},
        attrs={"model": model_path, "source": "axs predict (archive mode)",
               "field_json": "checked" if loaded.field is not None else "none beside the model: not checked",
               **({"interval_level": level} if loaded.field is not None else {})})
    for name in PASSED_THROUGH:
        if name in ds:
            passed = ds[name].variable.chunk({"spectrum": chunks[0]})
            passed.encoding = {}  # the input store's chunking need not fit the output's
            out[name] = passed
    return out


def write_store(ds: xr.Dataset, path: str | Path, replace: bool = False) -> None:
    """Write ``ds`` to ``path`` (``.zarr`` or ``.nc``), computing chunk by chunk; renamed into place at the end.

    An existing ``path`` is a FileExistsError unless ``replace``."""
    path = Path(path)
    if path.suffix.lower() not in ARCHIVE_SUFFIXES:
        raise ValueError(f"{path}: output store must end in .nc or .zarr")
    chunk = ds["concentration"].data.chunksize[0] if isinstance(ds["concentration"].data, da.Array) else None
    with atomic_path(path, replace=replace) as staging:
        if path.suffix.lower() == ".zarr":
            ds.to_zarr(staging, mode="w-")
        else:
            encoding = {name: {"zlib": True, "complevel": 4, "shuffle": True}
                        for name in ("concentration", "lower", "upper") if name in ds}
            if chunk:
                for name in encoding:
                    encoding[name]["chunksizes"] = (chunk, ds.sizes["element"])
            ds.to_netcdf(staging, engine="netcdf4", encoding=encoding)


def predict_archive(model_path: str | Path, archive_paths: list[str | Path], out_path: str | Path, *,
                    chunk_spectra: int = 8192, scheduler: str | None = None, tube_kv: float | None = None,
                    replace: bool = False, level: float = DEFAULT_LEVEL) -> dict:
    """Predict every spectrum of the archive into the store ``out_path``; a summary of what happened.

    ``model_path``: the model file (its field.json beside it adds the checks and
    ``level`` intervals). ``scheduler``: address of a running
    ``dask.distributed`` scheduler, or None for dask's local threads.
    ``tube_kv``: the tube voltage, for spectra ending short of the model's range
    (:func:`axs.predict.grid_fit`). ``replace``: overwrite an existing
    ``out_path`` (else FileExistsError).

    The summary: ``spectra`` and the count of each grid_status name
    (``on_grid``, ``resampled``, ``zero_filled``, ``not_covered``,
    ``bad_counts``, ``bad_live_time``); ``refused``: one line per refused
    spectrum naming its index, sample id (when the archive has one) and why;
    ``not_predicted``: the same for spectra on the grid that the model could not
    predict (their flag); ``flagged``: spectra not applicable (None without a
    field.json); ``flag_counts``: spectra per flag name. DataError for an
    archive of zero spectra, OSError for a scheduler that cannot be reached
    (nothing is written).
    """
    ds = open_archive(archive_paths, chunk_spectra)
    if ds.sizes["spectrum"] == 0:
        ds.close()
        raise DataError(", ".join(map(str, archive_paths)), "archive holds zero spectra: nothing to predict",
                        field="counts")
    client = None
    try:
        if scheduler:
            from distributed import Client
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError) as err:   # distributed raises these for bad addresses
                raise OSError(f"--scheduler {scheduler}: cannot reach the dask scheduler ({type(err).__name__}: "
                              f"{err})") from None
        context = contextlib.nullcontext() if client else dask.config.set(scheduler="threads")
        with context:
            write_store(predictions_dataset(model_path, ds, tube_kv, level), out_path, replace=replace)
    finally:
        if client is not None:
            client.close()
        ds.close()
    with (xr.open_zarr(out_path) if Path(out_path).suffix.lower() == ".zarr"
          else xr.open_dataset(out_path, engine="netcdf4")) as written:
        status = written["grid_status"].values
        bits = written["flags"].values
        applicable = written["applicable"].values if "applicable" in written else None
        ids = written["sample_id"].values if "sample_id" in written else None
    names = {ON_GRID: "on_grid", RESAMPLED: "resampled", ZERO_FILLED: "zero_filled", NOT_COVERED: "not_covered",
             BAD_COUNTS: "bad_counts", BAD_LIVE_TIME: "bad_live_time"}

    def who(i):
        return f"spectrum {i}" + (f" (sample_id {ids[i]})" if ids is not None else "")

    not_predicted_mask = sum(1 << FLAG_NAMES.index(f) for f in NOT_PREDICTED)
    summary: dict = {"spectra": int(status.size)}
    summary.update({name: int((status == code).sum()) for code, name in names.items()})
    summary["refused"] = [f"{who(i)}: {REFUSED[int(status[i])]}" for i in np.flatnonzero(status < 0)]
    summary["not_predicted"] = [f"{who(i)}: not predicted ({flag_names(bits[i] & not_predicted_mask)})"
                                for i in np.flatnonzero(bits & not_predicted_mask)]
    summary["flagged"] = None if applicable is None else int((applicable[status >= 0] == 0).sum())
    summary["flag_counts"] = {name: int((bits >> k & 1).sum()) for k, name in enumerate(FLAG_NAMES)
                              if (bits >> k & 1).any()}
    return summary
