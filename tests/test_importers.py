"""Importers: PyMca .mca (SPEC-style and Amptek, one or several spectra), two-column CSV, EMSA/MSA, sample grouping,
energy units, the tube voltage, and every bad input."""

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.errors import DataError
from axs.importers import (group_by_sample, read_any_spectrum, read_csv_spectrum, read_mca, read_spectra,
                           sample_from_name, spectrum_format, tube_kv)
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


@pytest.mark.parametrize("text, message", [
    ("<<PMCA SPECTRUM>>\nLIVE_TIME - 2\n1\n2\n", "opens an Amptek MCA file, but no <<DATA>> line follows"),
    ("<<junk\n", "opens an Amptek MCA file, but no <<DATA>> line follows"),
    ("$SPEC_ID:\nrock 7\n$DATA:\n0 1\n5 6\n", "is a QXAS header: not a format axs reads")])
def test_a_file_pymca_would_read_for_ever_is_refused_before_it_is_read(tmp_path, text, message):
    # PyMca reads an Amptek file until a <<DATA>> line and a QXAS one until a $DATA: line, and at the end
    # of the file loops for ever, appending to a list: a damaged Amptek file took CI's memory.
    path = tmp_path / "core_1_o1.mca"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        read_mca(path)


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


# -- formats of the field: several spectra per MCA, EMSA/MSA, eV energies, rounding, decimal commas ----------

def emsa_file(path: Path, counts=COUNTS, xunits="eV", xperchan="40.0", offset="-20.0", extra=("#LIVETIME   : 30.0",
              "#BEAMKV     : 40.0")):
    """An EMSA/MAS file (ISO 22029) written by hand: required keywords, then Y data 5 values per line."""
    head = ["#FORMAT      : EMSA/MAS Spectral Data File", "#VERSION     : 1.0", "#TITLE       : core_031 spot 2",
            "#DATE        : 26-NOV-2026", "#TIME        : 12:00", "#OWNER       : axs tests",
            f"#NPOINTS     : {len(counts)}", "#NCOLUMNS    : 1", f"#XUNITS      : {xunits}",
            "#YUNITS      : counts", "#DATATYPE    : Y", f"#XPERCHAN    : {xperchan}", f"#OFFSET      : {offset}",
            "#SIGNALTYPE  : XRF", *extra, "#SPECTRUM    : Spectral Data Starts Here"]
    values = [f"{c:g}" for c in counts]
    body = [", ".join(values[i:i + 5]) for i in range(0, len(values), 5)]
    path.write_text("\n".join(head + body + ["#ENDOFDATA   : "]) + "\n", encoding="latin-1")
    return path


def test_emsa_file_read_with_rosettasciio(tmp_path):
    s = read_any_spectrum(emsa_file(tmp_path / "core_031_o2.msa"))
    assert_allclose(s.counts, COUNTS)
    assert_allclose([s.energy_offset_kev, s.energy_gain_kev], [-0.02, 0.04])   # eV in the file
    assert (s.sample_id, s.orientation, s.live_time_s) == ("core_031", 2, 30.0)
    assert tube_kv(s) == 40.0
    s = read_any_spectrum(emsa_file(tmp_path / "x.emsa", xunits="keV", xperchan="0.04", offset="-0.02", extra=()),
                          live_time_s=12.0)
    assert_allclose([s.energy_offset_kev, s.energy_gain_kev], [-0.02, 0.04])
    assert s.live_time_s == 12.0 and tube_kv(s) is None
    with pytest.raises(DataError, match=r"x.emsa: field 'LIVETIME': live time missing"):
        read_any_spectrum(tmp_path / "x.emsa")
    with pytest.raises(DataError, match=r"field 'XUNITS': expected energies in keV or eV, got 'nm'"):
        read_any_spectrum(emsa_file(tmp_path / "y.msa", xunits="nm"))
    (tmp_path / "z.msa").write_text("#FORMAT : EMSA/MAS Spectral Data File\n#SPECTRUM : starts\n1, 2, 3\n")
    with pytest.raises(DataError, match=r"z.msa: cannot be read as an EMSA/MAS file"):
        read_any_spectrum(tmp_path / "z.msa")


def test_multi_spectrum_mca_is_read_whole(tmp_path):
    path = tmp_path / "scan.mca"
    path.write_text("#F scan\n\n#S 1 first\n#C sample_id: rock_a\n#@MCA %16C\n#@CHANN 4 0 3 1\n#@CTIME 10 10 10\n"
                    "#@CALIB 0 0.04 0\n@A 1 2 3 4\n\n#S 2 second\n#@MCA %16C\n#@CHANN 4 0 3 1\n#@CTIME 10 9 10\n"
                    "#@CALIB 0 0.04 0\n@A 5 6 7 8\n@A 9 9 9 9\n")
    spectra = read_spectra(path)
    assert [s.sample_id for s in spectra] == ["rock_a", "scan#2", "scan#3"]
    assert_allclose([s.counts for s in spectra], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]])
    assert [s.live_time_s for s in spectra] == [10.0, 9.0, 9.0]
    with pytest.raises(DataError, match=r"scan.mca: holds 3 spectra; expected one"):
        read_any_spectrum(path)


def test_energies_in_ev_are_refused_unless_declared(tmp_path):
    energies_ev = 2000.0 * np.arange(len(COUNTS))    # 20 channels of 2 keV, up to 38 000 'keV'
    path = csv_file(tmp_path / "ev.csv", energies_ev)
    with pytest.raises(DataError, match=r"ev.csv: field 'energy_kev': energies look like eV, not keV .*"
                                        r"--energy-unit eV"):
        read_csv_spectrum(path)
    s = read_csv_spectrum(path, energy_unit="eV")
    assert_allclose(s.energies_kev[-1], energies_ev[-1] / 1000)
    mca = spec_mca(tmp_path / "ev.mca", calib="-20 2000 0")
    with pytest.raises(DataError, match=r"field '@CALIB': energies look like eV"):
        read_mca(mca)
    [s] = read_mca(mca, energy_unit="eV")
    assert_allclose([s.energy_offset_kev, s.energy_gain_kev], [-0.02, 2.0])
    with pytest.raises(ValueError, match=r"energy_unit: expected one of keV, eV, got 'MeV'"):
        read_csv_spectrum(path, energy_unit="MeV")


def test_energies_rounded_to_one_ev_are_accepted(tmp_path):
    i = np.arange(1024)
    exact = -0.01555 + 0.0400118 * i
    rounded = [f"{e:.3f}" for e in exact]               # 1 eV: up to 0.0125 of a 40 eV channel off
    path = tmp_path / "rounded.csv"
    path.write_text("# live_time_s: 1\n" + "\n".join(f"{e},{c}" for e, c in zip(rounded, i % 7)) + "\n")
    s = read_csv_spectrum(path)
    assert_allclose(s.energies_kev, exact, atol=6e-4)
    # a departure beyond the rounding is still refused
    bumped = rounded[:500] + [f"{float(rounded[500]) + 0.004:.3f}"] + rounded[501:]
    path.write_text("# live_time_s: 1\n" + "\n".join(f"{e},{c}" for e, c in zip(bumped, i % 7)) + "\n")
    with pytest.raises(DataError, match=r"not a polynomial calibration"):
        read_csv_spectrum(path)


@pytest.mark.parametrize("rows", [["0,00;1", "0,04;2", "0,08;3"], ["0,00\t1", "0,04\t2"], ["0,00,1", "0,04,2"]])
def test_decimal_commas_are_named(tmp_path, rows):
    path = tmp_path / "comma.csv"
    path.write_text("\n".join(["# live_time_s: 1", "energy_kev;counts"] + rows) + "\n")
    with pytest.raises(DataError, match=r"comma.csv:3: .*decimal comma.*decimal point"):
        read_csv_spectrum(path)


def test_tube_voltage_from_headers(tmp_path):
    path = csv_file(tmp_path / "t.csv", 0.04 * np.arange(len(COUNTS)), head=("# live_time_s: 1", "# tube: Rh 40 kV"))
    assert tube_kv(read_csv_spectrum(path)) == 40.0
    [s] = read_mca(spec_mca(tmp_path / "t.mca", comments=("tube: Ag 35.5 kV",)))
    assert tube_kv(s) == 35.5
    assert tube_kv(Spectrum("a", 1, COUNTS, 1.0, 0.0, 0.04, metadata={"tube": "unknown"})) is None
