"""Archive mode: netCDF and Zarr spectra archives predicted chunk by chunk, on a local two-worker dask cluster;
the checks files get (bad counts, live times, energy range), zero spectra, the output policy and exit codes."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from axs.archive import (BAD_COUNTS, BAD_LIVE_TIME, NOT_COVERED, ON_GRID, RESAMPLED, ZERO_FILLED, open_archive,
                         predict_archive, rates_block)
from axs.cli import main
from axs.elements import ASSAY_ELEMENTS
from axs.errors import DataError
from axs.peakfit import PeakFitModel
from axs.predict import clip_at_zero, load_predictor
from synthetic_spectra import ENERGIES_KEV, synthetic_set

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
    out = clip_at_zero(model.predict(rows))   # below 0 reported as 0, as in file mode
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
    assert summary == {"spectra": N_SPECTRA, "on_grid": N_SPECTRA - 2, "resampled": 1, "zero_filled": 0,
                       "not_covered": 1, "bad_counts": 0, "bad_live_time": 0,
                       "refused": ["spectrum 5 (sample_id core_001): energy range does not cover the model's"],
                       "not_predicted": [], "flagged": None, "flag_counts": {}}
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
    # an existing output is refused (usage, as in file mode) unless --force; an uncovered spectrum makes it 1
    assert main(["predict", str(saved_model), str(tmp_path / "pool.zarr"), "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(tmp_path / "pool.zarr"), "-o", str(out), "--force",
                 "--chunk-spectra", "3"]) == 0
    with xr.open_zarr(out) as result:
        assert result.sizes["spectrum"] == 8
    archive_dataset().to_zarr(tmp_path / "mixed.zarr")
    assert main(["predict", str(saved_model), str(tmp_path / "mixed.zarr"), "-o", str(tmp_path / "m.zarr")]) == 1
    err = capsys.readouterr().err
    assert "1 spectra could not be predicted (not covering the model's energy range: 1" in err
    assert "error: spectrum 5 (sample_id core_001): energy range does not cover" in err


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
    assert list(status) == [ON_GRID, BAD_LIVE_TIME] and np.isnan(rates[1]).all()
    # cut at 39.98 keV: zero-filled only with a tube voltage that explains the missing end
    short = np.arange(4 * 1001, dtype=float).reshape(4, 1001)
    short[2, 7], short[3, 9] = -1.0, np.nan
    calibration = np.tile([-0.02, 0.04, 0.0], (4, 1))
    _, status = rates_block(short, np.ones(4), calibration, ENERGIES_KEV)
    assert list(status) == [NOT_COVERED, NOT_COVERED, BAD_COUNTS, BAD_COUNTS]
    rates, status = rates_block(short, np.ones(4), calibration, ENERGIES_KEV, tube_kv=40.0)
    assert list(status) == [ZERO_FILLED, ZERO_FILLED, BAD_COUNTS, BAD_COUNTS]
    assert_allclose(rates[1, :1001], short[1]) and np.all(rates[1, 1001:] == 0)
    assert np.isnan(rates[2:]).all()


def test_archives_get_the_checks_of_files(tmp_path, saved_model, capsys):
    """Negative and NaN counts are refused and named by index and sample id; the others are predicted."""
    ds = archive_dataset(seed=8).isel(spectrum=slice(0, 12))
    ds["counts"] = ds["counts"].astype(np.float64)
    ds["counts"][2, 100] = -4.0
    ds["counts"][9, 5] = np.nan
    ds["energy_offset_kev"][:] = -0.02
    ds["energy_gain_kev"][:] = 0.04
    ds.to_netcdf(tmp_path / "pool.nc", engine="netcdf4")
    out = tmp_path / "out.nc"
    assert main(["predict", str(saved_model), str(tmp_path / "pool.nc"), "-o", str(out), "--chunk-spectra", "5"]) == 1
    err = capsys.readouterr().err
    assert "error: spectrum 2 (sample_id core_000): negative or non-finite counts" in err
    assert "error: spectrum 9 (sample_id core_002): negative or non-finite counts" in err
    assert "2 spectra could not be predicted" in err and "bad counts: 2" in err
    with xr.open_dataset(out, engine="netcdf4") as result:
        status = result["grid_status"].values
        values = result["concentration"].values
    assert status[2] == BAD_COUNTS and status[9] == BAD_COUNTS and np.isnan(values[[2, 9]]).all()
    assert np.isfinite(np.delete(values, [2, 9], axis=0)).all()


def test_archive_usage_errors_and_zero_spectra(tmp_path, saved_model, capsys):
    ds = archive_dataset().isel(spectrum=slice(0, 4))
    ds.to_netcdf(tmp_path / "pool.nc", engine="netcdf4")
    ds.to_zarr(tmp_path / "pool.zarr")
    # zero spectra: an error, exit 1 as in file mode when nothing is predicted, and nothing written
    ds.isel(spectrum=slice(0, 0)).to_netcdf(tmp_path / "empty.nc", engine="netcdf4")
    assert main(["predict", str(saved_model), str(tmp_path / "empty.nc"), "-o", str(tmp_path / "e.nc")]) == 1
    assert "archive holds zero spectra" in capsys.readouterr().err and not (tmp_path / "e.nc").exists()
    # the output may never be an input, nor inside an input store; bad suffix; unloadable model: exit 2
    for out in (tmp_path / "pool.nc", tmp_path / "pool.zarr" / "out.zarr"):
        assert main(["predict", str(saved_model), str(tmp_path / "pool.nc"), str(tmp_path / "pool.nc")
                     if out.suffix == ".nc" else str(tmp_path / "pool.zarr"), "-o", str(out), "--force"]) == 2
        assert "is one of the inputs" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(tmp_path / "pool.nc"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "expected a .nc or .zarr output for archives" in capsys.readouterr().err
    (tmp_path / "model.txt").write_text("not a model")
    assert main(["predict", str(tmp_path / "model.txt"), str(tmp_path / "pool.nc"), "-o", str(tmp_path / "o.nc")]) == 2
    assert "cannot load the model" in capsys.readouterr().err and not (tmp_path / "o.nc").exists()
    assert main(["predict", str(saved_model), str(tmp_path / "pool.nc"), "-o", str(tmp_path / "o.nc"), "--theta"]) == 2
    assert "--theta: only for spectrum files" in capsys.readouterr().err
