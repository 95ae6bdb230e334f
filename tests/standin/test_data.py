"""The stand-in data writer: layout and formats, seeded reproducibility, subsets, atomic writes, and the shipped data.

Writer tests replace the physics simulator by a tiny deterministic one (a
smooth continuum plus one Fe peak; Poisson noise still comes from each core's stream), so
they test the files and the seeding, not the physics (tests/test_standin_physics*.py).
The tests marked ``shipped`` regenerate cores with the real simulator and
compare them with ``data/`` byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from axs.pipeline import paths
from axs.assays import read_assays
from axs.dataset import read_manifest
from axs.files import sha256_of
from axs.spectrum_files import read_spectrum
from standin import generate as gen
from standin.__main__ import main

instrument = pytest.importorskip("standin.instrument", reason="the stand-in simulator is not built yet")


class TinySimulator:
    """Stand-in for the physics simulator in writer tests: deterministic and fast."""

    def __init__(self, config):
        self.config = config
        self.n_channels = config.n_channels

    def expected_counts(self, mass_fractions, geometry):
        e = geometry.offset_kev[:, None] + geometry.gain_kev[:, None] * np.arange(self.n_channels)
        fe = mass_fractions[:, 25:26] * 2e4 * np.exp(-0.5 * ((e - 6.4) / 0.07) ** 2)
        return (5.0 * np.exp(-e / 8.0) + fe) * geometry.live_time_s[:, None]


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(gen, "_make_simulator", lambda: TinySimulator(gen.instrument_config()))


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_formats_read_back(tiny, tmp_path):
    out = gen.generate(tmp_path / "data", seed=3, n_labelled=3, n_unlabelled=5)
    manifest = read_manifest(out / "manifest.csv")
    assert list(manifest["sample_id"].unique()) == ["core_001", "core_002", "core_003"]
    assert manifest.groupby("sample_id")["orientation"].apply(list).tolist() == [[1, 2, 3, 4]] * 3
    for row in manifest.itertuples():
        assert sha256_of(out / row.file) == row.sha256
        spectrum = read_spectrum(out / row.file, n_channels=1024)
        assert (spectrum.sample_id, spectrum.orientation) == (row.sample_id, row.orientation)
        assert spectrum.metadata["tube"].startswith("Rh ")
    assays = read_assays(out / "assays.csv", out / "assay_limits.csv")
    assert list(assays.values_pct.index) == ["core_001", "core_002", "core_003"]
    assert assays.values_pct.shape[1] == 48

    with xr.open_dataset(out / "unlabelled" / "pool_000.nc", engine="netcdf4") as pool:
        assert pool["counts"].dims == ("spectrum", "channel") and pool["counts"].dtype == np.int32
        assert pool["counts"].encoding["zlib"]
        assert pool["sample_id"].to_numpy().tolist()[:5] == ["pool_0001"] * 4 + ["pool_0002"]
        assert pool["orientation"].to_numpy().tolist()[:5] == [1, 2, 3, 4, 1]
        for name in ("live_time_s", "energy_offset_kev", "energy_gain_kev"):
            assert pool[name].dims == ("spectrum",)
    with xr.open_dataset(out / "truth" / "truth.nc", engine="netcdf4") as truth:
        assert truth["surface_pct"].dims == ("sample", "orientation", "element")
        assert truth["sample"].to_numpy().tolist() == [f"core_00{i}" for i in (1, 2, 3)] + \
            [f"pool_000{i}" for i in range(1, 6)]
        np.testing.assert_allclose(truth["bulk_pct"].sum("element"), 100.0, rtol=1e-9)
        assert set(truth["element"].to_numpy()) >= {"Li", "Be", "Ta", "O", "Si"}
    generated = json.loads((out / "GENERATED.json").read_text())
    assert generated["seed"] == 3 and "--seed 3" in generated["command"]
    assert "xraylib" in generated["versions"] and "spekpy" in generated["versions"]
    assert "spodumene_pegmatite" in (out / "README.md").read_text()


def test_same_seed_same_bytes_other_seed_differs_any_job_count(tiny, tmp_path, monkeypatch):
    runs = {}
    for name, seed, jobs in (("a", 5, 1), ("b", 5, 2), ("c", 6, 1)):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)     # same relative --out, so the recorded command is equal too
        runs[name] = tree(gen.generate("data", seed=seed, n_labelled=2, n_unlabelled=3, jobs=jobs))
    assert runs["a"] == runs["b"]
    differing = {k for k in runs["a"] if runs["a"][k] != runs["c"].get(k)}
    assert {"spectra/core_001_o1.txt", "assays.csv", "unlabelled/pool_000.nc", "truth/truth.nc"} <= differing


def test_a_subset_regenerates_the_same_cores(tiny, tmp_path):
    full = gen.generate(tmp_path / "full", seed=9, n_labelled=4, n_unlabelled=4)
    part = gen.generate(tmp_path / "part", seed=9, n_labelled=4, n_unlabelled=4,
                        labelled_subset=[3], unlabelled_subset=[2, 4])
    assert sorted(p.name for p in (part / "spectra").iterdir()) == [f"core_003_o{k}.txt" for k in (1, 2, 3, 4)]
    for k in (1, 2, 3, 4):
        name = f"spectra/core_003_o{k}.txt"
        assert (part / name).read_bytes() == (full / name).read_bytes()
    assert (part / "assays.csv").read_text().splitlines()[1] == (full / "assays.csv").read_text().splitlines()[3]
    with xr.open_dataset(full / "unlabelled" / "pool_000.nc") as f, \
            xr.open_dataset(part / "unlabelled" / "pool_000.nc") as p:
        rows = f["sample_id"].isin(["pool_0002", "pool_0004"]).to_numpy()
        for name in ("counts", "sample_id", "orientation", "live_time_s", "energy_gain_kev"):
            np.testing.assert_array_equal(p[name].to_numpy(), f[name].to_numpy()[rows])
    with xr.open_dataset(full / "truth" / "truth.nc") as f, xr.open_dataset(part / "truth" / "truth.nc") as p:
        xr.testing.assert_identical(p["surface_pct"], f["surface_pct"].sel(sample=p["sample"]))


def test_refuses_to_overwrite_and_force_replaces(tiny, tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["generate", "--labelled", "1", "--unlabelled", "1", "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep"
    assert main(["generate", "--labelled", "1", "--unlabelled", "1", "--out", str(out), "--force"]) == 0
    assert not (out / "mine.txt").exists() and (out / "manifest.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]      # no temporary folder left


def test_a_failure_leaves_nothing_behind(monkeypatch, tmp_path):
    class Failing(TinySimulator):
        def expected_counts(self, mass_fractions, geometry):
            raise RuntimeError("detector fault")
    monkeypatch.setattr(gen, "_make_simulator", lambda: Failing(gen.instrument_config()))
    with pytest.raises(RuntimeError, match="detector fault"):
        gen.generate(tmp_path / "data", n_labelled=2, n_unlabelled=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_unparseable_core_numbers(tiny, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--only-labelled", "1,x", "--out", str(tmp_path / "d")])
    assert exit_info.value.code == 2
    assert "expected core numbers like 1,2,5-7, got '1,x'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv,message", [
    (["--only-labelled", "0"], "labelled core numbers must lie in 1..177, got [0]"),
    (["--unlabelled", "10", "--only-unlabelled", "9-11"], "unlabelled core numbers must lie in 1..10, got [11]"),
])
def test_cli_rejects_core_numbers_out_of_range(tiny, tmp_path, capsys, argv, message):
    assert main(["generate", *argv, "--out", str(tmp_path / "d")]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_spectra_writes_the_same_truth_and_assays_and_nothing_measured(tiny, tmp_path):
    full = gen.generate(tmp_path / "full", seed=3, n_labelled=3, n_unlabelled=2)
    bare = gen.generate(tmp_path / "bare", seed=3, n_labelled=3, n_unlabelled=2, spectra=False)
    assert sorted(tree(bare)) == ["GENERATED.json", "README.md", "assay_limits.csv", "assays.csv", "truth/truth.nc"]
    for name in ("assays.csv", "assay_limits.csv"):
        assert (bare / name).read_bytes() == (full / name).read_bytes()
    with xr.open_dataset(full / "truth" / "truth.nc") as a, xr.open_dataset(bare / "truth" / "truth.nc") as b:
        assert a.identical(b)
    generated = json.loads((bare / "GENERATED.json").read_text())
    assert generated["spectra"] is False and "--no-spectra" in generated["command"]
    assert "Truth and assays only" in (bare / "README.md").read_text()
    assert json.loads((full / "GENERATED.json").read_text())["changes"] == generated["changes"] != []


def test_field_geometry_stays_in_its_ranges():
    config = gen.instrument_config()
    g = gen.draw_geometry(np.random.default_rng(0), config, 4000)
    assert np.all((g.distance_cm >= 8) & (g.distance_cm <= 14))
    assert abs(np.mean(g.incidence_deg) - config.nominal_incidence_deg) < 0.3
    assert np.std(g.incidence_deg + g.takeoff_deg) < 2.0 < np.std(g.incidence_deg)   # tilt moves them oppositely
    low, high = gen.DEAD_TIME_RANGE
    assert np.all((g.live_time_s >= (1 - high) * gen.REAL_TIME_S) & (g.live_time_s <= (1 - low) * gen.REAL_TIME_S))
    assert np.median(g.dust_g_cm2) == pytest.approx(gen.DUST_MEDIAN_G_CM2, rel=0.1)
    # The recorded calibration is close to, but not exactly, the true one.
    assert 0 < np.max(np.abs(g.header_gain_kev / g.gain_kev - 1)) < 5e-4


# -- the shipped data (data/, restored by `make data`) -----------------------------------------------

def _shipped() -> Path:
    if not (paths.DATA / "GENERATED.json").exists():
        pytest.skip("data/ is not present; restore it with `make data` (dvc pull)")
    return paths.DATA


@pytest.mark.slow
def test_shipped_data_regenerates_byte_for_byte(tmp_path):
    data = _shipped()
    generated = json.loads((data / "GENERATED.json").read_text())
    n_lab, n_pool = generated["labelled_cores"], generated["unlabelled_cores"]
    labelled, pool = [1, n_lab], [1, n_pool]
    part = gen.generate(tmp_path / "part", seed=generated["seed"], n_labelled=n_lab, n_unlabelled=n_pool,
                        labelled_subset=labelled, unlabelled_subset=pool)
    for name in sorted(p.name for p in (part / "spectra").iterdir()):
        assert (part / "spectra" / name).read_bytes() == (data / "spectra" / name).read_bytes(), name
    shipped_rows = {line.split(",", 1)[0]: line for line in (data / "assays.csv").read_text().splitlines()}
    for line in (part / "assays.csv").read_text().splitlines():
        assert line == shipped_rows[line.split(",", 1)[0]]
    assert (part / "assay_limits.csv").read_bytes() == (data / "assay_limits.csv").read_bytes()
    for archive in sorted((part / "unlabelled").iterdir()):
        with xr.open_dataset(archive) as p, xr.open_dataset(data / "unlabelled" / archive.name) as s:
            rows = s["sample_id"].isin(p["sample_id"]).to_numpy()
            for name in p.data_vars:
                np.testing.assert_array_equal(p[name].to_numpy(), s[name].to_numpy()[rows], err_msg=name)
    with xr.open_dataset(part / "truth" / "truth.nc") as p, xr.open_dataset(data / "truth" / "truth.nc") as s:
        assert_equal_across_cpus(p, s.sel(sample=p["sample"]))


#: Relative tolerance for floats computed through BLAS/libm: another x86 CPU may round the last bit
#: differently (seen: 3e-16 in truth.nc's compositions on an AMD EPYC). Integers and text stay exact.
FLOAT_RTOL = 1e-12


def assert_equal_across_cpus(actual: xr.Dataset, expected: xr.Dataset) -> None:
    """Identical names, dims, coordinates and attributes; integers and strings exactly equal;
    floats equal within :data:`FLOAT_RTOL`."""
    assert set(actual.variables) == set(expected.variables)
    assert actual.attrs == expected.attrs
    for name in actual.variables:
        a, e = actual[name], expected[name]
        assert a.dims == e.dims and a.attrs == e.attrs, name
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a.to_numpy(), e.to_numpy(), rtol=FLOAT_RTOL, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(a.to_numpy(), e.to_numpy(), err_msg=name)


def test_shipped_data_is_complete():
    data = _shipped()
    manifest = read_manifest(data / "manifest.csv")
    assert len(manifest) == 177 * 4
    assert manifest["sample_id"].iloc[-1] == "core_177"
    assert max(p.stat().st_size for p in data.rglob("*") if p.is_file()) < 5e6   # DVC remote files < 5 MB
    pool = sorted((data / "unlabelled").glob("pool_*.nc"))
    n = 0
    for path in pool:
        with xr.open_dataset(path) as archive:
            n += archive.sizes["spectrum"]
    assert n >= 1000 * 4
    assays = read_assays(data / "assays.csv", data / "assay_limits.csv")
    assert (assays.censored["Li"] == 1).any()     # rich spodumene pegmatite above the Li upper limit


def test_shipped_reference_draw_regenerates_and_is_independent(tmp_path):
    reference = paths.DATA_REFERENCE
    if not (reference / "GENERATED.json").exists():
        pytest.skip("data-reference/ is not present; restore it with `make data` (dvc pull)")
    generated = json.loads((reference / "GENERATED.json").read_text())
    assert generated["spectra"] is False and generated["seed"] != json.loads(
        (_shipped() / "GENERATED.json").read_text())["seed"]
    n_lab = generated["labelled_cores"]
    part = gen.generate(tmp_path / "reference", seed=generated["seed"], n_labelled=n_lab,
                        n_unlabelled=generated["unlabelled_cores"], labelled_subset=[1, n_lab], unlabelled_subset=[],
                        spectra=False)
    shipped_rows = {line.split(",", 1)[0]: line for line in (reference / "assays.csv").read_text().splitlines()}
    for line in (part / "assays.csv").read_text().splitlines():
        assert line == shipped_rows[line.split(",", 1)[0]]
    with xr.open_dataset(part / "truth" / "truth.nc") as p, xr.open_dataset(reference / "truth" / "truth.nc") as s:
        assert_equal_across_cpus(p, s.sel(sample=p["sample"]))
