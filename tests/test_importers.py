"""Importers: PyMca .mca (SPEC-style and Amptek), two-column CSV, sample grouping, and every bad input."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.errors import DataError
from axs.importers import (group_by_sample, read_any_spectrum, read_csv_spectrum, read_mca,
                           sample_from_name, spectrum_format)
from axs.spectrum_files import Spectrum, write_spectrum

COUNTS = np.array([0, 3, 7, 12, 40, 9, 2, 0, 1, 5, 8, 4, 3, 2, 1, 0, 0, 6, 2, 1], dtype=float)


def spec_mca(path: Path, counts=COUNTS, calib="-0.02 0.04 0", ctime="30.0 29.5 30.0", comments=()):
    lines = ["#F " + path.name, "#D Thu Nov 26 2026", "", "#S 1 spectrum"]
    lines += [f"#C {c}" for c in comments]
    lines += ["#@MCA %16C", f"#@CHANN {len(counts)} 0 {len(counts) - 1} 1"]
    if ctime is not None:
        lines.append(f"#@CTIME {ctime}")
    if calib is not None:
        lines.append(f"#@CALIB {calib}")
    values = [str(int(c)) if float(c).is_integer() else str(c) for c in counts]
    rows = [" ".join(values[i:i + 16]) for i in range(0, len(values), 16)]
    lines.append("@A " + "\\\n ".join(rows))
    path.write_text("\n".join(lines) + "\n")
    return path


def amptek_mca(path: Path, counts=COUNTS, live="29.1"):
    head = ["<<PMCA SPECTRUM>>", "TAG - live_data", "DESCRIPTION - field", "GAIN - 2",
            "PRESET_TIME - 30", f"LIVE_TIME - {live}", "REAL_TIME - 30",
            "<<CALIBRATION>>", "LABEL - keV", "0 -0.02", "100 3.98", "<<DATA>>"]
    path.write_text("\n".join(head + [str(int(c)) for c in counts] + ["<<END>>"]) + "\n")
    return path


def csv_file(path: Path, energies, counts=COUNTS, head=("# sample_id: core_9", "# live_time_s: 20"),
             columns="energy_kev,counts"):
    body = [f"{e:.12g},{c:g}" for e, c in zip(energies, counts)]
    path.write_text("\n".join(list(head) + ([columns] if columns else []) + body) + "\n")
    return path


def test_spec_mca_reads_counts_calibration_live_time_and_identity(tmp_path):
    [s] = read_mca(spec_mca(tmp_path / "x.mca", comments=("sample_id: core_001", "orientation: 3")))
    assert_allclose(s.counts, COUNTS)
    assert (s.energy_offset_kev, s.energy_gain_kev, s.energy_quadratic_kev) == (-0.02, 0.04, 0.0)
    assert s.live_time_s == 29.5  # '#@CTIME preset live real'
    assert (s.sample_id, s.orientation) == ("core_001", 3)


def test_amptek_mca_and_filename_convention(tmp_path):
    [s] = read_mca(amptek_mca(tmp_path / "core_017_o2.mca"))
    assert (s.sample_id, s.orientation, s.live_time_s) == ("core_017", 2, 29.1)
    # two-point calibration (0 -> -0.02 keV, 100 -> 3.98 keV)
    assert_allclose([s.energy_offset_kev, s.energy_gain_kev], [-0.02, 0.04])
    assert_allclose(s.counts, COUNTS)


def test_csv_two_columns_fits_the_calibration(tmp_path):
    i = np.arange(len(COUNTS))
    energies = 0.1 + 0.05 * i + 1e-5 * i ** 2
    s = read_csv_spectrum(csv_file(tmp_path / "rock_o4.csv", energies))
    assert_allclose(s.energies_kev, energies, atol=1e-9)
    assert_allclose(s.counts, COUNTS)
    assert (s.sample_id, s.orientation, s.live_time_s) == ("core_9", 4, 20.0)


def test_csv_without_header_row_and_live_time_from_caller(tmp_path):
    energies = 0.04 * np.arange(len(COUNTS))
    path = csv_file(tmp_path / "plain.csv", energies, head=(), columns=None)
    s = read_any_spectrum(path, live_time_s=10.0)
    assert (s.sample_id, s.orientation, s.live_time_s) == ("plain", 1, 10.0)


def test_read_any_dispatches_on_name(tmp_path):
    own = Spectrum("core_5", 1, COUNTS, 30.0, 0.0, 0.04)
    write_spectrum(tmp_path / "core_5_o1.txt", own)
    assert read_any_spectrum(tmp_path / "core_5_o1.txt").sample_id == "core_5"
    assert spectrum_format("a.TXT.gz") == "axs" and spectrum_format("b.mca") == "mca"
    assert sample_from_name("dir/core_017_o12.txt.gz") == ("core_017", 12)
    assert sample_from_name("lonely.csv") == ("lonely", 1)


def test_grouping_orders_orientations_and_rejects_duplicates(tmp_path):
    def sp(sample, k):
        return Spectrum(sample, k, COUNTS, 1.0, 0.0, 0.04)
    groups = group_by_sample([(Path("a2"), sp("a", 2)), (Path("b1"), sp("b", 1)), (Path("a1"), sp("a", 1))])
    assert list(groups) == ["a", "b"]
    assert [s.orientation for _, s in groups["a"]] == [1, 2]
    with pytest.raises(DataError, match=r"^a1bis: field 'orientation': sample 'a' orientation 1 already given by a1"):
        group_by_sample([(Path("a1"), sp("a", 1)), (Path("a1bis"), sp("a", 1))])
    errors = []
    kept = group_by_sample([(Path("a1"), sp("a", 1)), (Path("a1bis"), sp("a", 1))], errors)
    assert [str(p) for p, _ in kept["a"]] == ["a1"] and len(errors) == 1 and errors[0].path == "a1bis"


@pytest.mark.parametrize("make, message", [
    (lambda p: spec_mca(p, calib=None), r"field '@CALIB': energy calibration missing"),
    (lambda p: spec_mca(p, calib="0 -0.04 0"), r"field '@CALIB': energy calibration must increase"),
    (lambda p: spec_mca(p, ctime=None), r"field '@CTIME': live time missing"),
    (lambda p: spec_mca(p, ctime="30 0 30"), r"field '@CTIME': expected a positive live time"),
    (lambda p: spec_mca(p, counts=np.r_[COUNTS[:5], -3, COUNTS[6:]]),
     r"field 'counts': expected finite non-negative counts, channel 5"),
    (lambda p: amptek_mca(p, live="abc"), r"field 'LIVE_TIME': expected a number"),
    (lambda p: p.write_text(""), r"file is missing or empty"),
    (lambda p: p.write_text("just some words\nand more\n"), r"no MCA data found|cannot be read"),
])
def test_bad_mca(tmp_path, make, message):
    path = tmp_path / "bad.mca"
    make(path)
    with pytest.raises(DataError, match=message) as err:
        read_mca(path)
    assert str(err.value).startswith(str(path))


@pytest.mark.parametrize("rows, message", [
    (["0.0,1", "0.04,2", "0.08"], r":5: expected 2 columns"),
    (["0.0,1", "0.04,x", "0.08,3"], r":4: field 'counts': expected a number, got 'x'"),
    (["0.0,1", "0.04,-2", "0.08,3"], r":4: field 'counts': expected a non-negative count"),
    (["0.0,1", "0.04,nan", "0.08,3"], r":4: field 'counts': expected a finite number"),
    (["0.0,1", "0.08,2", "0.04,3"], r":5: field 'energy_kev': energies must increase"),
    (["0.0,1", "0.04,2", "0.08,3", "0.5,4", "0.52,4", "0.9,1"],
     r"field 'energy_kev': energies are not a polynomial calibration"),
    (["0.0 1", "0.04 2"], r":3: expected 2 columns"),
    ([], r"file has no data rows"),
])
def test_bad_csv(tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(["# live_time_s: 1", "energy_kev,counts"] + rows) + "\n")
    with pytest.raises(DataError, match=message):
        read_csv_spectrum(path)


def test_csv_without_live_time_needs_one(tmp_path):
    path = csv_file(tmp_path / "x.csv", 0.04 * np.arange(len(COUNTS)), head=())
    with pytest.raises(DataError, match=r"field 'live_time_s': live time missing.*--live-time-s"):
        read_csv_spectrum(path)


def test_unknown_extension(tmp_path):
    with pytest.raises(DataError, match=r"unknown spectrum format: expected a name ending in \.txt"):
        read_any_spectrum(tmp_path / "spectrum.h5")
