"""The prepare stage's library: a validated dataset from raw files, and clear errors on bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from axs import dataset, evaluation, files
from axs.assays import ABOVE, BELOW
from axs.errors import DataError
from axs.spectrum_files import Spectrum, read_spectrum
from pipeline_fixtures import tree_digest


@pytest.fixture
def raw(raw_data) -> Path:
    """A copy of the session's raw dataset (conftest.py): tests of bad input damage it."""
    return raw_data


def _prepare(raw: Path, out: Path, **kw):
    return dataset.prepare(raw, out, n_folds=kw.pop("n_folds", 3), fold_seed=kw.pop("fold_seed", 0), **kw)


# --------------------------------------------------------------------------- good input

def test_dataset_averages_orientations_in_counts_per_second(raw, tmp_path):
    ds = _prepare(raw, tmp_path / "out")
    assert ds.sizes == {"sample": 6, "orientation": 2, "channel": 1024, "element": 48}
    # core_002 has the nominal calibration in both orientations, which is also the common grid.
    spectra = [read_spectrum(raw / f"spectra/core_002_o{o}.txt") for o in (1, 2)]
    expected = np.mean([s.counts / s.live_time_s for s in spectra], axis=0)
    np.testing.assert_allclose(ds["spectrum_cps"].sel(sample="core_002"), expected, rtol=1e-12)
    # each measurement is kept apart too: what models read (dataset.model_input)
    for o, s in zip((1, 2), spectra):
        np.testing.assert_allclose(ds["measurement_cps"].sel(sample="core_002", orientation=o),
                                   s.counts / s.live_time_s, rtol=1e-12)
    assert dataset.model_input(ds).shape == (6, 2, 1024)
    np.testing.assert_allclose(ds["energy_kev"], spectra[0].energies_kev)
    assert int(ds["n_orientations"].sel(sample="core_002")) == 2
    assert float(ds["live_time_s"].sel(sample="core_002")) == pytest.approx(41.0)
    # each measurement's own live time, in single_spectra's row order (the reports' per-orientation chi^2)
    for o, s in zip((1, 2), spectra):
        assert float(ds["measurement_live_time_s"].sel(sample="core_002", orientation=o)) == s.live_time_s
    X_single, position = dataset.single_spectra(ds)
    live = evaluation.single_live_times(ds)
    assert live.shape == position.shape
    row = np.flatnonzero(position == list(ds["sample"].values).index("core_002"))
    np.testing.assert_allclose(X_single[row] * live[row, None], [s.counts for s in spectra], rtol=1e-12)
    assert evaluation.single_live_times(ds.drop_vars("measurement_live_time_s")).shape == position.shape


def test_rebinning_to_the_common_grid_keeps_the_counts(raw, tmp_path):
    ds = _prepare(raw, tmp_path / "out")
    drifted = read_spectrum(raw / "spectra/core_001_o2.txt")
    assert drifted.energy_gain_kev != pytest.approx(0.04)
    steady = read_spectrum(raw / "spectra/core_001_o1.txt")
    total = 0.5 * (steady.counts.sum() / steady.live_time_s + drifted.counts.sum() / drifted.live_time_s)
    # The drifted grid reaches past the common grid's top, so only its last channels fall off.
    assert float(ds["spectrum_cps"].sel(sample="core_001").sum()) == pytest.approx(total, rel=2e-3)


def test_censored_assays_follow_the_documented_rule_and_are_flagged(raw, tmp_path):
    ds = _prepare(raw, tmp_path / "out")
    ag = ds.sel(sample="core_002", element="Ag")
    assert int(ag["censored"]) == BELOW
    assert float(ag["concentration_pct"]) == pytest.approx(0.5 * 0.5e-4)     # DL/2, DL = 0.5 ppm
    li = ds.sel(sample="core_003", element="Li")
    assert int(li["censored"]) == ABOVE
    assert float(li["concentration_pct"]) == pytest.approx(1.0)              # UL = 10000 ppm = 1 wt%
    assert int((ds["censored"] != 0).sum()) == 2
    assert "DL/2" in ds.attrs["censoring"]
    assert ds["unit"].sel(element="Fe").item() == "pct" and ds["unit"].sel(element="Li").item() == "ppm"


def test_folds_are_seeded_and_balanced(raw, tmp_path):
    a = _prepare(raw, tmp_path / "a", n_folds=3, fold_seed=1)["fold"].to_numpy()
    b = _prepare(raw, tmp_path / "b", n_folds=3, fold_seed=1)["fold"].to_numpy()
    c = _prepare(raw, tmp_path / "c", n_folds=3, fold_seed=2)["fold"].to_numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(a).tolist() == [2, 2, 2]


def test_written_dataset_is_identical_bytes_and_reads_back(raw, tmp_path):
    ds = _prepare(raw, tmp_path / "a")
    _prepare(raw, tmp_path / "b")
    assert (tmp_path / "a/dataset.nc").read_bytes() == (tmp_path / "b/dataset.nc").read_bytes()
    back = dataset.load_dataset(tmp_path / "a/dataset.nc")
    xr.testing.assert_identical(back, ds)


def test_max_cores_selects_the_first_samples(raw, tmp_path):
    ds = _prepare(raw, tmp_path / "out", max_cores=4, n_folds=2)
    assert ds["sample"].to_numpy().tolist() == ["core_001", "core_002", "core_003", "core_004"]


def test_unlabelled_archive_is_rebinned_and_averaged(raw, tmp_path):
    energies = dataset.common_energy_kev([read_spectrum(raw / "spectra/core_002_o1.txt")])
    counts = np.array([[1, 2, 3, 4], [3, 2, 1, 0], [5, 5, 5, 5]], dtype=np.int32)
    counts = np.pad(counts, ((0, 0), (0, 1020)))
    (raw / "unlabelled").mkdir()
    xr.Dataset({"counts": (("spectrum", "channel"), counts),
                "sample_id": ("spectrum", ["u1", "u1", "u2"]), "orientation": ("spectrum", [1, 2, 1]),
                "live_time_s": ("spectrum", [1.0, 2.0, 5.0]),
                "energy_offset_kev": ("spectrum", [0.0] * 3), "energy_gain_kev": ("spectrum", [0.04] * 3)},
               ).to_netcdf(raw / "unlabelled/pool_000.nc", engine="netcdf4")
    pool = dataset.read_unlabelled(raw, energies)
    assert pool["sample"].to_numpy().tolist() == ["u1", "u2"]
    np.testing.assert_allclose(pool["spectrum_cps"].sel(sample="u1")[:4], [1.25, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(pool["spectrum_cps"].sel(sample="u2")[:4], [1.0] * 4)
    # per measurement: u2 has no orientation 2 (NaN), so model_input leaves it out of u2's mean
    np.testing.assert_allclose(pool["measurement_cps"].sel(sample="u1", orientation=2)[:4], [1.5, 1.0, 0.5, 0.0])
    assert np.isnan(pool["measurement_cps"].sel(sample="u2", orientation=2)).all()
    _prepare(raw, tmp_path / "out")
    assert (tmp_path / "out/unlabelled.nc").exists()


# --------------------------------------------------------------------------- bad input

def _edit_spectrum(raw: Path, name: str, edit) -> Path:
    """Change one spectrum file with ``edit(lines) -> lines`` and record its new SHA-256 in the manifest,
    so that the error under test (not the checksum) is what stops the stage."""
    path = raw / "spectra" / name
    old = files.sha256_of(path)
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
    manifest = raw / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(old, files.sha256_of(path)))
    return path


def _edit_csv(path: Path, edit) -> None:
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))


def _header_end(lines):
    return next(i for i, line in enumerate(lines) if not line.startswith("#"))


def _drop_core_005_spectra(raw):
    _edit_csv(raw / "manifest.csv", lambda ls: [l for l in ls if ",core_005," not in l])
    for f in (raw / "spectra").glob("core_005_*"):
        f.unlink()


BAD_INPUTS = {
    # name: (edit(raw), file named in the message, regex for line/field and what was expected)
    "wrong channel count": (
        lambda raw: _edit_spectrum(raw, "core_002_o1.txt", lambda ls: [
            l.replace("# channels: 1024", "# channels: 1000") for l in ls][: _header_end(ls) + 1000]),
        "spectra/core_002_o1.txt", r"field 'channels': expected 1024 channels, got 1000"),
    "non-numeric count": (
        lambda raw: _edit_spectrum(raw, "core_003_o2.txt", lambda ls: ls[:30] + ["12a\n"] + ls[31:]),
        "spectra/core_003_o2.txt:31", r"field 'counts': expected a number, got '12a'"),
    "negative count": (
        lambda raw: _edit_spectrum(raw, "core_003_o1.txt", lambda ls: ls[:40] + ["-3\n"] + ls[41:]),
        "spectra/core_003_o1.txt:41", r"field 'counts': expected a non-negative count"),
    "NaN count": (
        lambda raw: _edit_spectrum(raw, "core_004_o1.txt", lambda ls: ls[:50] + ["nan\n"] + ls[51:]),
        "spectra/core_004_o1.txt:51", r"field 'counts': expected a finite number, got 'nan'"),
    "missing header field": (
        lambda raw: _edit_spectrum(raw, "core_002_o2.txt", lambda ls: [
            l for l in ls if not l.startswith("# live_time_s")]),
        "spectra/core_002_o2.txt", r"field 'live_time_s': header field missing"),
    "decreasing energy calibration": (
        lambda raw: _edit_spectrum(raw, "core_004_o2.txt", lambda ls: [
            "# energy_gain_kev: -0.02\n" if l.startswith("# energy_gain_kev") else l for l in ls]),
        "spectra/core_004_o2.txt", r"field 'energy_gain_kev': energy calibration must increase"),
    "empty spectrum file": (
        lambda raw: _edit_spectrum(raw, "core_005_o1.txt", lambda ls: []),
        "spectra/core_005_o1.txt", r"file is empty"),
    "spectrum differs from its checksum": (
        lambda raw: (raw / "spectra/core_002_o1.txt").write_text(
            (raw / "spectra/core_002_o1.txt").read_text().replace("# tube: Rh 40 kV", "# tube: W 40 kV")),
        "spectra/core_002_o1.txt", r"field 'sha256': content differs from its SHA-256 in manifest.csv line 4"),
    "spectrum not in the manifest": (
        lambda raw: (raw / "spectra/core_009_o1.txt").write_text((raw / "spectra/core_001_o1.txt").read_text()),
        "spectra/core_009_o1.txt", r"field 'file': spectrum file is not listed in manifest.csv"),
    "manifest sample disagrees with header": (
        lambda raw: _edit_csv(raw / "manifest.csv", lambda ls: [
            l.replace(",core_002,", ",core_009,") if "core_002_o1" in l else l for l in ls]),
        "spectra/core_002_o1.txt", r"field 'sample_id': header says 'core_002' but manifest.csv line 4"),
    "duplicate sample and orientation in manifest": (
        lambda raw: _edit_csv(raw / "manifest.csv", lambda ls: ls + [
            ls[1].replace("core_001_o1.txt", "copy.txt")]),
        "manifest.csv:14", r"field 'sample_id': duplicate sample and orientation \('core_001', 1\)"),
    "duplicate sample id in assays": (
        lambda raw: _edit_csv(raw / "assays.csv", lambda ls: ls + [ls[2]]),
        "assays.csv:8", r"field 'sample_id': duplicate sample id 'core_002' \(first on line 3\)"),
    "spectrum without an assay": (
        lambda raw: _edit_csv(raw / "assays.csv", lambda ls: [l for l in ls if not l.startswith("core_005,")]),
        "manifest.csv:10", r"field 'sample_id': sample 'core_005' has a spectrum but no row in assays.csv"),
    "assay without a spectrum": (
        _drop_core_005_spectra,
        "assays.csv:6", r"field 'sample_id': sample 'core_005' has an assay but no spectrum"),
    "unknown element column": (
        lambda raw: _edit_csv(raw / "assays.csv", lambda ls: [ls[0].replace("Ag_ppm", "Xx_ppm")] + ls[1:]),
        "assays.csv:1", r"field 'Xx_ppm': expected a column '<element>_<unit>'"),
    "unparseable censored value": (
        lambda raw: _edit_csv(raw / "assays.csv", lambda ls: ls[:3] + [
            re.sub(r"^(core_003),[^,]*,", r"\1,<D L,", ls[3])] + ls[4:]),
        "assays.csv:4", r"field 'Ag_ppm': expected a number, '<DL' or '>UL', got '<D L'"),
    "mixed units for one element": (
        lambda raw: _edit_csv(raw / "assays.csv", lambda ls: [ls[0].replace("Fe_pct", "Fe_ppm")] + ls[1:]),
        "assays.csv:1", r"field 'Fe_ppm': column 'Fe_ppm' is in ppm but assay_limits.csv gives Fe limits in pct"),
    "empty assay table": (
        lambda raw: (raw / "assays.csv").write_text(""),
        "assays.csv", r"file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=lambda c: c.replace(" ", "-"))
def test_bad_input_names_file_and_place_and_writes_nothing(raw, tmp_path, case):
    edit, where, what = BAD_INPUTS[case]
    edit(raw)
    before = tree_digest(raw)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        _prepare(raw, out)
    message = str(info.value)
    assert message.startswith(str(raw / where)), message
    assert re.search(what, message), message
    assert not out.exists() or not any(out.iterdir())
    assert tree_digest(raw) == before      # nothing written into data/


def test_there_are_at_least_twelve_bad_input_cases():
    assert len(BAD_INPUTS) >= 12


# --------------------------------------------------------------------------- data as labs have it

def write_lab_data(root: Path, n: int = 8, n_channels: int = 2020) -> Path:
    """A small raw dataset as a lab might deliver it: one orientation per sample, spectra in counts
    per second with no live time, 2020 channels, elements outside the stand-in's 48 (Si, Cl), blank
    cells, a censored zero, and a samples.csv with two families."""
    from axs.files import sha256_of
    from axs.spectrum_files import Spectrum, write_spectrum
    rng = np.random.default_rng(7)
    (root / "spectra").mkdir(parents=True)
    rows = ["file,sample_id,orientation,sha256"]
    for i in range(n):
        sample = f"S{i:02d}"
        spectrum = Spectrum(sample_id=sample, orientation=1, counts=rng.gamma(2.0, 0.7, n_channels),
                            live_time_s=None, energy_offset_kev=0.02, energy_gain_kev=0.02, units="cps",
                            metadata={"tube": "Rh"})
        write_spectrum(root / f"spectra/{sample}.txt", spectrum)
        rows.append(f"spectra/{sample}.txt,{sample},1,{sha256_of(root / f'spectra/{sample}.txt')}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    lines = ["sample_id,Si_pct,Cl_ppm,Fe_pct"]
    for i in range(n):
        cl = "" if i % 2 else f"{100 + 10 * i}"                  # Cl analysed for half the samples
        fe = "<DL" if i == 3 else f"{1.5 + 0.1 * i:.2f}"
        lines.append(f"S{i:02d},{30 + i},{cl},{fe}")
    (root / "assays.csv").write_text("\n".join(lines) + "\n")
    (root / "assay_limits.csv").write_text("element,unit,lower_limit,upper_limit\nFe,pct,0.01,\n")
    (root / "samples.csv").write_text("sample_id,family\n" + "".join(
        f"S{i:02d},{'mudrock' if i < n // 2 else 'obsidian'}\n" for i in range(n)))
    return root


def test_lab_data_with_gaps_cps_one_orientation_and_other_elements(tmp_path):
    raw = write_lab_data(tmp_path / "data")
    ds = _prepare(raw, tmp_path / "out", n_folds=8)                   # k = n works
    assert ds.sizes == {"sample": 8, "orientation": 1, "channel": 2020, "element": 3}
    assert list(ds["element"].to_numpy()) == ["Si", "Cl", "Fe"]       # the assay table's order
    np.testing.assert_allclose(ds["energy_kev"][[0, -1]], [0.02, 40.40])
    s01 = read_spectrum(raw / "spectra/S01.txt")
    assert s01.units == "cps" and s01.live_time_s is None and s01.rate_time_s == 1.0
    np.testing.assert_allclose(ds["spectrum_cps"].sel(sample="S01"), s01.counts, rtol=1e-9)
    assert np.isnan(ds["live_time_s"]).all() and (ds["n_orientations"] == 1).all()
    cl = ds.sel(element="Cl")
    assert np.isnan(cl["concentration_pct"].sel(sample="S01")) and bool(cl["missing"].sel(sample="S01"))
    assert float(cl["concentration_pct"].sel(sample="S02")) == pytest.approx(120e-4)
    assert int(ds["missing"].sum()) == 4
    assert float(ds["concentration_pct"].sel(sample="S03", element="Fe")) == pytest.approx(0.005)
    assert list(ds["family"].to_numpy()) == ["mudrock"] * 4 + ["obsidian"] * 4
    back = dataset.load_dataset(tmp_path / "out/dataset.nc")
    assert back["missing"].dtype == bool and list(back["family"].to_numpy()) == list(ds["family"].to_numpy())
    with pytest.raises(ValueError, match="n_folds <= number of samples \\(8\\), got 9"):
        _prepare(raw, tmp_path / "out2", n_folds=9)



def test_rates_written_from_whole_counts_give_their_live_time_back(tmp_path):
    """A file in cps without a live time whose rates are whole counts over one (the measured set's Tracer
    spectra) gets it back (:func:`axs.spectrum_files.whole_count_live_time`), so its reconstructions' chi2 can
    be computed; rates that never were counts stay NaN."""
    from axs.files import sha256_of
    from axs.spectrum_files import write_spectrum
    raw = write_lab_data(tmp_path / "data")
    rng = np.random.default_rng(11)
    manifest = (raw / "manifest.csv").read_text()
    for sample, seconds in (("S01", 344.8), ("S05", 517.7)):
        path = raw / f"spectra/{sample}.txt"
        old = sha256_of(path)
        rates = rng.poisson(rng.uniform(0.5, 3e3, 2020)) / seconds
        write_spectrum(path, Spectrum(sample, 1, rates, None, 0.02, 0.02, units="cps", metadata={"tube": "Rh"}))
        manifest = manifest.replace(old, sha256_of(path))
    (raw / "manifest.csv").write_text(manifest)
    ds = _prepare(raw, tmp_path / "out", n_folds=2)
    live = ds["live_time_s"].to_series()
    assert live["S01"] == pytest.approx(344.8, rel=1e-9) and live["S05"] == pytest.approx(517.7, rel=1e-9)
    assert live.drop(["S01", "S05"]).isna().all()
    assert float(ds["measurement_live_time_s"].sel(sample="S01", orientation=1)) == pytest.approx(344.8, rel=1e-9)

def test_without_samples_csv_the_family_is_empty(tmp_path):
    raw = write_lab_data(tmp_path / "data")
    (raw / "samples.csv").unlink()
    assert set(dataset.build_dataset(raw)["family"].to_numpy()) == {""}


@pytest.mark.parametrize("edit,where,what", [
    (lambda raw: (raw / "samples.csv").write_text("sample_id,family\nS00,mud\n"),
     "samples.csv", r"field 'sample_id': sample 'S01' has no row \(7 samples lack one\)"),
    (lambda raw: (raw / "samples.csv").write_text("sample_id,rock\nS00,mud\n"),
     "samples.csv:1", r"field 'family': expected this column in the header"),
    (lambda raw: _edit_csv(raw / "samples.csv", lambda ls: ls + ["S99,mud\n"]),
     "samples.csv:10", r"field 'sample_id': sample 'S99' has no spectrum and no assay"),
    (lambda raw: _edit_csv(raw / "samples.csv", lambda ls: ls[:2] + ["S01,\n"] + ls[3:]),
     "samples.csv:3", r"field 'family': expected a value, got an empty cell"),
    (lambda raw: _edit_csv(raw / "assays.csv", lambda ls: ls[:4] + [ls[4].replace("<DL", "0<")] + ls[5:]),
     "assays.csv:5", r"field 'Fe_pct': expected a number, '<DL' or '>UL', got '0<'"),
    (lambda raw: (raw / "assay_limits.csv").write_text("element,unit,lower_limit,upper_limit\nFe,pct,,\n"),
     "assay_limits.csv", r"field 'Fe': a censored Fe assay needs a finite lower limit"),
    (lambda raw: (raw / "assay_limits.csv").write_text("element,unit,lower_limit,upper_limit\n"),
     "assays.csv:5", r"field 'Fe_pct': '<DL' needs Fe's limits, which the limits file lacks"),
])
def test_bad_lab_data_names_file_and_place(tmp_path, edit, where, what):
    raw = write_lab_data(tmp_path / "data")
    edit(raw)
    with pytest.raises(DataError) as info:
        _prepare(raw, tmp_path / "out", n_folds=4)
    assert str(info.value).startswith(str(raw / where)), str(info.value)
    assert re.search(what, str(info.value)), str(info.value)
    assert not (tmp_path / "out").exists()


def test_cps_spectrum_header_rules(tmp_path):
    from axs.spectrum_files import Spectrum, format_spectrum
    text = format_spectrum(Spectrum("S1", 1, np.array([0.5, 1.25]), None, 0.0, 0.02, units="cps"))
    assert "# units: cps" in text and "live_time_s" not in text
    (tmp_path / "a.txt").write_text(text.replace("# units: cps", "# units: cpm"))
    with pytest.raises(DataError, match=r"a.txt:4: field 'units': expected one of counts, cps, got 'cpm'"):
        read_spectrum(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text(text.replace("# units: cps\n", ""))
    with pytest.raises(DataError, match=r"b.txt: field 'live_time_s': header field missing"):
        read_spectrum(tmp_path / "b.txt")
