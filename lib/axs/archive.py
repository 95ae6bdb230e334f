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
assay unit (coordinate ``unit``: ``pct`` or ``ppm``), ``grid_status
(spectrum)`` int8, and ``sample_id``/``orientation`` when the input has them.
``grid_status``: 0 on the model's grid, 1 resampled onto it, 2 zero-filled
above the tube voltage ``tube_kv`` (:func:`axs.predict.grid_fit`), and, with
NaN concentrations, -1 not covering the model's energy range, -2 counts that
are negative or not finite, -3 a live time that is not positive: the checks
:mod:`axs.importers` applies to files. :func:`predict_archive` names every
refused spectrum by index and sample id. One row per spectrum: in the field each measurement is a
prediction; averaging orientations is :mod:`axs.predict`'s job for files.

How: the archive is opened lazily with xarray and dask, chunked along
``spectrum`` (``chunk_spectra`` spectra, all channels), and each chunk is put
on the model's grid (:func:`axs.predict.grid_fit`'s rules, vectorised per
distinct calibration in the chunk) and predicted by the model loaded once per
worker process (:func:`axs.predict.cached_predictor`). Results stream into the
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

from axs.elements import UNIT_TO_PCT, assay_unit
from axs.energy_grid import rebin_counts
from axs.errors import DataError
from axs.files import atomic_path
from axs.predict import cached_predictor, grid_fit, model_grid
from axs.spectrum_files import energy_axis

REQUIRED = ("counts", "live_time_s", "energy_offset_kev", "energy_gain_kev")
PASSED_THROUGH = ("sample_id", "orientation")
ARCHIVE_SUFFIXES = (".nc", ".zarr")

#: grid_status values.
ON_GRID, RESAMPLED, ZERO_FILLED, NOT_COVERED, BAD_COUNTS, BAD_LIVE_TIME = 0, 1, 2, -1, -2, -3
STATUS_MEANINGS = {ON_GRID: "on_model_grid", RESAMPLED: "resampled", ZERO_FILLED: "zero_filled_above_tube_kv",
                   NOT_COVERED: "not_covered", BAD_COUNTS: "negative_or_non_finite_counts",
                   BAD_LIVE_TIME: "live_time_not_positive"}
#: What a refused spectrum's status means, as the CLI reports it.
REFUSED = {NOT_COVERED: "energy range does not cover the model's", BAD_COUNTS: "negative or non-finite counts",
           BAD_LIVE_TIME: "live time not positive"}


def is_archive(path: str | Path) -> bool:
    """Whether ``path`` names a spectra archive (``*.nc`` or ``*.zarr``) rather than spectrum files."""
    return Path(path).suffix.lower() in ARCHIVE_SUFFIXES


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


def _predict_block(counts, live, calibration, model_path: str, tube_kv: float | None) -> np.ndarray:
    """(n, elements + 1) float32: concentrations in assay units, then grid_status."""
    model = cached_predictor(model_path)
    energies_kev, elements = model_grid(model)
    rates, status = rates_block(counts, live[:, 0], calibration, energies_kev, tube_kv)
    values = np.full((len(rates), len(elements)), np.nan, dtype=np.float32)
    good = status >= 0
    if good.any():
        to_unit = np.array([1.0 / UNIT_TO_PCT[assay_unit(e)] for e in elements])
        values[good] = np.asarray(model.predict(rates if good.all() else rates[good])) * to_unit
    return np.concatenate([values, status[:, None].astype(np.float32)], axis=1)


def predictions_dataset(model_path: str | Path, ds: xr.Dataset, tube_kv: float | None = None) -> xr.Dataset:
    """The lazy output Dataset for archive ``ds`` (module doc); nothing is computed yet."""
    model_path = str(model_path)
    _, elements = model_grid(cached_predictor(model_path))
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
                          model_path=model_path, tube_kv=tube_kv, dtype=np.float32,
                          chunks=(chunks[0], (len(elements) + 1,)))
    out = xr.Dataset(
        {"concentration": (("spectrum", "element"), block[:, :-1],
                           {"long_name": "predicted concentration", "units": "see unit(element)"}),
         "grid_status": (("spectrum",), block[:, -1].astype(np.int8),
                         {"flag_values": list(STATUS_MEANINGS),
                          "flag_meanings": " ".join(STATUS_MEANINGS.values())})},
        # variable-length strings: portable in both netCDF and Zarr v3
        coords={"element": np.array(elements, dtype=object),
                "unit": ("element", np.array([assay_unit(e) for e in elements], dtype=object))},
        attrs={"model": model_path, "source": "axs predict (archive mode)"})
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
            encoding = {"concentration": {"zlib": True, "complevel": 4, "shuffle": True}}
            if chunk:
                encoding["concentration"]["chunksizes"] = (chunk, ds.sizes["element"])
            ds.to_netcdf(staging, engine="netcdf4", encoding=encoding)


def predict_archive(model_path: str | Path, archive_paths: list[str | Path], out_path: str | Path, *,
                    chunk_spectra: int = 8192, scheduler: str | None = None, tube_kv: float | None = None,
                    replace: bool = False) -> dict:
    """Predict every spectrum of the archive into the store ``out_path``; a summary of what happened.

    ``scheduler``: address of a running ``dask.distributed`` scheduler, or
    None for dask's local threads. ``tube_kv``: the tube voltage, for spectra
    ending short of the model's range (:func:`axs.predict.grid_fit`).
    ``replace``: overwrite an existing ``out_path`` (else FileExistsError).

    The summary: ``spectra`` and the count of each grid_status name
    (``on_grid``, ``resampled``, ``zero_filled``, ``not_covered``,
    ``bad_counts``, ``bad_live_time``), and ``refused``: one line per refused
    spectrum naming its index, sample id (when the archive has one) and why.
    DataError for an archive of zero spectra (nothing is written).
    """
    ds = open_archive(archive_paths, chunk_spectra)
    if ds.sizes["spectrum"] == 0:
        ds.close()
        raise DataError(", ".join(map(str, archive_paths)), "archive holds zero spectra: nothing to predict",
                        field="counts")
    client = None
    if scheduler:
        from distributed import Client
        client = Client(scheduler)
    context = contextlib.nullcontext() if client else dask.config.set(scheduler="threads")
    try:
        with context:
            write_store(predictions_dataset(model_path, ds, tube_kv), out_path, replace=replace)
    finally:
        if client is not None:
            client.close()
        ds.close()
    with (xr.open_zarr(out_path) if Path(out_path).suffix.lower() == ".zarr"
          else xr.open_dataset(out_path, engine="netcdf4")) as written:
        status = written["grid_status"].values
        refused = np.flatnonzero(status < 0)
        ids = written["sample_id"].values[refused] if "sample_id" in written else [None] * len(refused)
    names = {ON_GRID: "on_grid", RESAMPLED: "resampled", ZERO_FILLED: "zero_filled", NOT_COVERED: "not_covered",
             BAD_COUNTS: "bad_counts", BAD_LIVE_TIME: "bad_live_time"}
    summary: dict = {"spectra": int(status.size)}
    summary.update({name: int((status == code).sum()) for code, name in names.items()})
    summary["refused"] = [f"spectrum {i}" + (f" (sample_id {sid})" if sid is not None else "")
                          + f": {REFUSED[int(status[i])]}" for i, sid in zip(refused, ids)]
    return summary
