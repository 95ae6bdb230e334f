"""Archive mode: netCDF and Zarr spectra archives predicted chunk by chunk, on a local two-worker dask cluster."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from axs.archive import NOT_COVERED, ON_GRID, RESAMPLED, open_archive, predict_archive, rates_block
from axs.cli import main
from axs.elements import ASSAY_ELEMENTS
from axs.errors import DataError
from axs.peakfit import PeakFitModel
from axs.predict import load_predictor
from test_peakfit import ENERGIES_KEV, synthetic_set

LIVE_TIME_S = 20.0
N_SPECTRA = 40


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    X, Y = synthetic_set(16, seed=5)
    path = tmp_path_factory.mktemp("model") / "pymca.skops"
    PeakFitModel(ENERGIES_KEV, method="fast").fit(X, Y).save(path)
    return path


def archive_dataset(seed=6):
    """N_SPECTRA spectra in the stand-in's pool schema; spectrum 3 on a coarser grid, spectrum 5 too narrow."""
    X, _ = synthetic_set(N_SPECTRA, seed=seed)
    counts = np.round(X * LIVE_TIME_S).astype(np.int32)
    offset = np.full(N_SPECTRA, -0.02)
    gain = np.full(N_SPECTRA, 0.04)
    counts[3] = np.r_[counts[3].reshape(512, 2).sum(axis=1), np.zeros(512, np.int32)]
    offset[3], gain[3] = 0.0, 0.08           # 512 channels of 0.08 keV, then 512 beyond 41 keV
    gain[5] = 0.01                            # ends at 10 keV: does not cover the model's grid
    return xr.Dataset({
        "counts": (("spectrum", "channel"), counts),
        "sample_id": ("spectrum", np.array([f"core_{k // 4:03d}" for k in range(N_SPECTRA)], dtype=object)),
        "orientation": ("spectrum", np.arange(N_SPECTRA, dtype=np.int32) % 4 + 1),
        "live_time_s": ("spectrum", np.full(N_SPECTRA, LIVE_TIME_S)),
        "energy_offset_kev": ("spectrum", offset),
        "energy_gain_kev": ("spectrum", gain),
    })


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local:
        yield local


def expected_concentrations(saved_model, ds):
    model = load_predictor(saved_model)
    rows = ds["counts"].values.astype(float) / LIVE_TIME_S
    out = model.predict(rows)
    to_unit = np.array([1e4 if e not in ("Al", "Ca", "Fe", "K", "Mg", "Na", "S", "Ti") else 1.0
                        for e in ASSAY_ELEMENTS])
    return out * to_unit


def test_netcdf_archive_on_a_two_worker_cluster(tmp_path, saved_model, cluster):
    ds = archive_dataset()
    ds.isel(spectrum=slice(0, 25)).to_netcdf(tmp_path / "pool_000.nc", engine="netcdf4")
    ds.isel(spectrum=slice(25, None)).to_netcdf(tmp_path / "pool_001.nc", engine="netcdf4")
    out = tmp_path / "predictions.nc"
    summary = predict_archive(saved_model, [tmp_path / "pool_000.nc", tmp_path / "pool_001.nc"], out,
                              chunk_spectra=16, scheduler=cluster.scheduler_address)
    assert summary == {"spectra": N_SPECTRA, "on_grid": N_SPECTRA - 2, "resampled": 1, "not_covered": 1}
    with xr.open_dataset(out, engine="netcdf4") as result:
        assert result["concentration"].dims == ("spectrum", "element")
        assert list(result["element"].values) == list(ASSAY_ELEMENTS)
        assert result["unit"].sel(element="Fe").item() == "pct" and result["unit"].sel(element="Sr").item() == "ppm"
        assert list(result["sample_id"].values) == list(ds["sample_id"].values)
        status = result["grid_status"].values
        assert status[3] == RESAMPLED and status[5] == NOT_COVERED and status[0] == ON_GRID
        values = result["concentration"].values
    assert np.isnan(values[5]).all() and np.isfinite(values[3]).all()
    # chunked predictions equal one call of the model on the spectra on the model's grid, within the
    # PyMca fast fit's dependence on its stack (the first spectrum of each chunk is its reference)
    expected = expected_concentrations(saved_model, ds)
    ok = np.setdiff1d(np.arange(N_SPECTRA), [3, 5])
    assert_allclose(values[ok], expected[ok], rtol=1e-3, atol=1e-6)


def test_zarr_archive_through_the_cli(tmp_path, saved_model, capsys):
    ds = archive_dataset(seed=7).isel(spectrum=[0, 1, 2, 4, 6, 7, 8, 9])  # all on the model's grid
    ds.to_zarr(tmp_path / "pool.zarr")
    out = tmp_path / "out.zarr"
    assert main(["predict", str(saved_model), str(tmp_path / "pool.zarr"), "-o", str(out),
                 "--chunk-spectra", "3"]) == 0
    assert "8 spectra" in capsys.readouterr().err
    with xr.open_zarr(out) as result:
        assert result["concentration"].shape == (8, len(ASSAY_ELEMENTS))
        assert_allclose(result["concentration"].values, expected_concentrations(saved_model, ds),
                        rtol=1e-3, atol=1e-6)
    # an existing output is never overwritten; an uncovered spectrum makes the exit status 1
    assert main(["predict", str(saved_model), str(tmp_path / "pool.zarr"), "-o", str(out)]) == 1
    archive_dataset().to_zarr(tmp_path / "mixed.zarr")
    assert main(["predict", str(saved_model), str(tmp_path / "mixed.zarr"), "-o", str(tmp_path / "m.zarr")]) == 1
    assert "1 spectra do not cover" in capsys.readouterr().err


def test_bad_archives(tmp_path):
    with pytest.raises(DataError, match="archive not found"):
        open_archive([tmp_path / "none.nc"])
    archive_dataset().drop_vars("live_time_s").to_netcdf(tmp_path / "a.nc", engine="netcdf4")
    with pytest.raises(DataError, match=r"a.nc: field 'live_time_s': archive variable missing"):
        open_archive([tmp_path / "a.nc"])
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(DataError, match=r"junk.nc: cannot be opened as a spectra archive"):
        open_archive([tmp_path / "junk.nc"])


def test_rates_block_matches_per_spectrum_rules():
    counts = np.arange(2 * 1024, dtype=float).reshape(2, 1024)
    calibration = np.array([[-0.02, 0.04, 0.0], [-0.02, 0.04, 0.0]])
    rates, status = rates_block(counts, np.array([2.0, 0.0]), calibration, ENERGIES_KEV)
    assert_allclose(rates[0], counts[0] / 2.0)
    assert list(status) == [ON_GRID, NOT_COVERED] and np.isnan(rates[1]).all()
